"""A running notifier decides a tenant's crossings under the tenant's new template version once
it has read it from the rules topic, without a restart (issue 23, item 1); other tenants keep the
default. One notifier subprocess, real broker and Redis."""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from engagement.kafka.rules_topic import ensure_rules_topic, version_key, version_value
from engagement.kafka.topics import Topics
from engagement.model.rules import parse_template
from engagement.model.templates import TemplateVersion
from tests.conftest import SESSION_ID
from tests.integration.notifier.conftest import (
    RULES_TOML,
    create_topics,
    score_change,
    webhooks_toml,
)
from tests.support.kafka import read_topic

MODULE = uuid.uuid4().hex[:8]
TOPICS = Topics(f"tt{MODULE}.")
OWN, PLAIN = "t-own", "t-plain"
# the notifier's default template with another alert tier: entering warm is the alert
WARM_ALERTS = (
    RULES_TOML.format(half_life=30.0)
    .replace('version = "test-30.0"', 'version = "own-2"')
    .replace('alert_tier = "hot"', 'alert_tier = "warm"')
)


@pytest.fixture(scope="module")
async def notifier(kafka_bootstrap, receiver, make_notifier):
    await create_topics(kafka_bootstrap, TOPICS)
    hooks = webhooks_toml(receiver, {"all": {"tenants": [OWN, PLAIN]}})
    proc = make_notifier(
        prefix=TOPICS.prefix, redis_prefix=f"test:{SESSION_ID}tt{MODULE}:", webhooks=hooks
    )
    return await asyncio.to_thread(proc.start)


async def store_version(bootstrap: str, tenant: str, text: str) -> None:
    """The record PUT /v1/rules stores, on the rules topic (acknowledged)."""
    await ensure_rules_topic(bootstrap, TOPICS, 1)
    rules = parse_template(text, source="test")
    now = "2026-12-06T00:00:00+00:00"
    version = TemplateVersion(tenant, rules, text, "toml", "active", now, now)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(TOPICS.rules, version_value(version), key=version_key(version))
    finally:
        await producer.stop()


async def read_back(notifier, version: str) -> float:
    """Seconds until the notifier's log says it folded the version in (printed, not asserted;
    a minute without it fails, with the log)."""
    started = time.monotonic()
    while f"version {version} active" not in notifier.log_path.read_text(errors="replace"):
        assert notifier.proc.poll() is None, notifier.log_tail()
        assert time.monotonic() - started < 60, f"version never read:\n{notifier.log_tail()}"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def alert_of(bootstrap: str, tenant: str, candidate: str) -> dict:
    def theirs(records) -> list[dict]:
        values = [orjson.loads(r.value) for r in records]
        return [v for v in values if (v["tenantId"], v["candidateId"]) == (tenant, candidate)]

    records = await read_topic(
        bootstrap, TOPICS.candidate_alerts, timeout=60, until=lambda rs: bool(theirs(rs))
    )
    [alert] = theirs(records)
    return alert


async def test_a_new_version_decides_the_tenants_next_crossings_without_a_restart(
    notifier, feed_for, kafka_bootstrap
):
    feed = feed_for(TOPICS)
    pid = notifier.proc.pid
    # given the tenant's crossings decided under the default (entering hot is the alert)
    await feed.send(score_change(OWN, "before", 1, score=55, tier="warm", previous="cold"))
    assert (await alert_of(kafka_bootstrap, OWN, "before"))["type"] == "candidate.tier_changed"
    # when a version making warm the alert tier is stored, and the running notifier read it
    await store_version(kafka_bootstrap, OWN, WARM_ALERTS)
    took = await read_back(notifier, "own-2")
    print(f"\nnotifier in force with the new version {took:.2f} s after it was stored")
    # then the tenant's next crossing into warm is its alert, the other tenant's is not
    await feed.send(score_change(OWN, "after", 1, score=55, tier="warm", previous="cold"))
    await feed.send(score_change(PLAIN, "after", 1, score=55, tier="warm", previous="cold"))
    own = await alert_of(kafka_bootstrap, OWN, "after")
    assert (own["type"], own["tier"]) == ("candidate.hot", "warm")
    plain = await alert_of(kafka_bootstrap, PLAIN, "after")
    assert plain["type"] == "candidate.tier_changed", "the default for the others"
    assert notifier.proc.pid == pid, "the same process, never restarted"
