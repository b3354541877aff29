"""An erasure record of a tenant with its own template (issue 23, item 1) names that template's
floor tier and version, from the DELETE (``on_request``) and from the scorer's erasure request
(``behind_events``) alike; a tenant without one keeps the default's. Real Redis and broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from engagement import erasure
from engagement.kafka.admin import ensure_topics
from engagement.kafka.erasure_records import erasure_requests
from engagement.kafka.score_records import OutRecord
from engagement.kafka.topics import Topics
from engagement.model.records import ErasureRequest
from engagement.model.rules import TierRule
from engagement.model.templates import Templates, TemplateVersion
from engagement.store.templated_store import TemplatedStore
from tests.integration.engagement.test_erasure import topics_of
from tests.support.kafka import read_topic
from tests.unit.engagement.model.strategies import RULES, interaction

OWN = "acme"  # with a template of its own
PLAIN = "plain"  # scored with the default
OWN_RULES = RULES.model_copy(
    update={
        "version": "acme-7",
        "alert_tier": "eager",
        "tiers": (
            TierRule(name="dormant", enter=1, exit=1),
            TierRule(name="keen", enter=40, exit=35),
            TierRule(name="eager", enter=70, exit=65),
        ),
    }
)


@pytest.fixture
def store(redis_client: aioredis.Redis, redis_prefix: str) -> TemplatedStore:
    templates = Templates(RULES)
    templates.apply(TemplateVersion(OWN, OWN_RULES, "", "toml", "active", "t0", "t0"))
    return TemplatedStore(redis_client, prefix=redis_prefix, templates=templates)


@pytest.fixture
async def publish(kafka_bootstrap: str, topics: Topics) -> AsyncIterator[erasure.Publish]:
    """Acknowledged produce to this test's topics on the session broker."""
    await ensure_topics(kafka_bootstrap, topics, partitions=3, replication_factor=1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()

    async def send(records: Sequence[OutRecord]) -> None:
        acks = [await producer.send(r.topic, r.value, key=r.key) for r in records]
        await asyncio.gather(*acks)

    yield send
    await producer.stop()


async def erasure_record_of(
    kafka_bootstrap: str, topics: Topics, tenant: str, candidate: str
) -> dict[str, Any]:
    def erased(records: Sequence[Any]) -> list[dict[str, Any]]:
        values = [orjson.loads(r.value) for r in records if r.value]
        return [
            v
            for v in values
            if v["cause"]["type"] == "erasure"
            and (v["tenantId"], v["candidateId"]) == (tenant, candidate)
        ]

    changes = await read_topic(
        kafka_bootstrap, topics.scores_changed, until=lambda rs: bool(erased(rs))
    )
    return erased(changes)[-1]


async def test_the_delete_names_the_tenants_own_floor_tier_and_version(
    store: TemplatedStore, publish: erasure.Publish, topics: Topics, kafka_bootstrap: str
) -> None:
    # given a candidate of each tenant
    t0 = time.time() - 60
    await store.apply_batch(
        [interaction("m1", t0, tenant=OWN), interaction("m2", t0, tenant=PLAIN)]
    )
    # when each is erased through the read API's use case
    for tenant in (OWN, PLAIN):
        await erasure.on_request(
            store, tenant, "u1", now=datetime.now(UTC), publish=publish, topics=topics_of(topics)
        )
    # then each erasure record is in its tenant's template
    own = await erasure_record_of(kafka_bootstrap, topics, OWN, "u1")
    assert (own["tier"], own["rulesVersion"]) == ("dormant", "acme-7")
    plain = await erasure_record_of(kafka_bootstrap, topics, PLAIN, "u1")
    assert (plain["tier"], plain["rulesVersion"]) == ("cold", RULES.version)


async def test_the_scorers_erasure_request_names_the_tenants_own_template(
    store: TemplatedStore, publish: erasure.Publish, topics: Topics, kafka_bootstrap: str
) -> None:
    # given a candidate of the tenant with its own template, and the erasure request a DELETE
    # put behind its events
    t0 = time.time() - 60
    await store.apply_batch([interaction("m1", t0, tenant=OWN, user_id="u2")])
    now = datetime.now(UTC)
    erased = await store.erase(OWN, "u2", fence_at=now)
    [out] = erasure_requests(
        erased, interactions_topic=topics.interactions, sequence=5, now=now, source="test"
    )
    assert out.value is not None
    request = ErasureRequest.model_validate(orjson.loads(out.value))
    # when the scorer reaches it
    await erasure.behind_events(store, request, now=now, publish=publish, topics=topics_of(topics))
    # then the record it publishes again is in the tenant's template
    record = await erasure_record_of(kafka_bootstrap, topics, OWN, "u2")
    assert (record["tier"], record["rulesVersion"]) == ("dormant", "acme-7")
