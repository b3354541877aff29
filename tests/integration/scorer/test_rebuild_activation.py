"""A tenant's rebuild whose handover key says ``activated`` is always published (invariant 6 of
``services.scorer.tenant_rebuild``): a runner that dies between deciding the activation and
publishing it, or whose publish fails, leaves the request ``running``, and whoever polls it next
(a scorer's runner, or ``engagement rebuild --tenant`` run again) publishes the same activation,
so a live scorer waiting at the rebuild's marker goes on (real Redis and broker; the lock and the
fence alone: test_rebuild_runner.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from engagement.kafka.admin import ensure_topics
from engagement.kafka.rules_topic import (
    RebuildMarker,
    TemplateFollower,
    ensure_rules_topic,
    version_key,
    version_value,
)
from engagement.kafka.topics import INTERACTIONS, Topics
from engagement.model.rules import parse_template
from engagement.model.templates import Templates, TemplateVersion
from engagement.store.connection import RedisClient
from engagement.store.rebuild_requests import RebuildRequests
from engagement.store.redis_keys import KeyLayout
from engagement.store.redis_store import ScoreStore
from engagement.store.templated_store import handover_key
from engagement.tools.tenant_rebuild import rebuild_tenant
from services.scorer.rebuild_runner import RebuildRunner
from services.scorer.tenant_rebuild import Rebuild, at_marker
from tests.integration.scorer.expected import TEST_RULES
from tests.support.kafka import read_topic

NOW = "2026-01-01T00:00:00+00:00"
GUARD = 120.0  # seconds: only guards the test against a hang, never a measure


@dataclass
class Scorer:
    """What one scorer process holds: its registry (following the rules topic), a rebuild on it,
    and the redis and names the tests look at."""

    redis: RedisClient
    prefix: str
    kafka: str
    topics: Topics
    templates: Templates

    def rebuild(self, kind: type[Rebuild] = Rebuild) -> Rebuild:
        return kind(
            redis=self.redis,
            base=ScoreStore(self.redis, prefix=self.prefix, rules=self.templates.default),
            templates=self.templates,
            bootstrap_servers=self.kafka,
            topics=self.topics,
            live_group=f"{self.topics.prefix}live",
        )

    def runner(self, kind: type[Rebuild] = Rebuild) -> RebuildRunner:
        requests = RebuildRequests(self.redis, KeyLayout(self.prefix))
        return RebuildRunner(requests, self.rebuild(kind), self.templates)

    def waiting_at(self, generation: int) -> asyncio.Task[None]:
        """A live scorer at the rebuild's marker, out of patience at once (it gives the rebuild
        up the moment it can)."""
        wait = at_marker(self.templates, self.redis, KeyLayout(self.prefix), patience=0.0)
        return asyncio.ensure_future(wait(RebuildMarker("T", generation)))

    async def handover(self, generation: int) -> bytes | None:
        value: bytes | None = await self.redis.get(
            handover_key(KeyLayout(self.prefix), "T", generation)
        )
        return value

    async def activations(self) -> list[dict[str, object]]:
        """The rules topic's records of T's version t-2 made active by a rebuild."""
        records = await read_topic(
            self.kafka,
            self.topics.rules,
            until=lambda rs: any(b'"rebuilt":true' in (r.value or b"") for r in rs),
            timeout=GUARD,
        )
        values = [orjson.loads(r.value) for r in records if r.key == b"T:t-2" and r.value]
        return [v for v in values if v["state"] == "active"]


@pytest.fixture
async def scorer(
    kafka_bootstrap: str, topics: Topics, redis_client: RedisClient, redis_prefix: str
) -> AsyncIterator[Scorer]:
    """Tenant T with a pending version t-2 on the rules topic, read by a following registry."""
    await ensure_topics(
        kafka_bootstrap, topics, partitions=2, replication_factor=1, bases=(INTERACTIONS,)
    )
    await ensure_rules_topic(kafka_bootstrap, topics, 1)
    await _live_group_committed(kafka_bootstrap, topics)
    text = TEST_RULES.replace('version = "test-rules-1"', 'version = "t-2"')
    pending = TemplateVersion("T", parse_template(text, source="t"), text, "toml", "pending", NOW)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topics.rules, version_value(pending), key=version_key(pending))
    finally:
        await producer.stop()
    templates = Templates(parse_template(TEST_RULES, source="test"))
    follower = TemplateFollower(templates, bootstrap_servers=kafka_bootstrap, topics=topics)
    await follower.catch_up()
    following = asyncio.ensure_future(follower.follow())
    try:
        yield Scorer(redis_client, redis_prefix, kafka_bootstrap, topics, templates)
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
        await follower.close()


async def _live_group_committed(kafka: str, topics: Topics) -> None:
    """The live scorers' group, as the rebuild finds it: it committed (at 0, nothing scored)."""
    live = AIOKafkaConsumer(
        bootstrap_servers=kafka, group_id=f"{topics.prefix}live", enable_auto_commit=False
    )
    await live.start()
    try:
        first = TopicPartition(topics.interactions, 0)
        live.assign([first])
        await live.commit({first: 0})
    finally:
        await live.stop()


class DiesBeforePublishing(Rebuild):
    """A runner's process that stops for good once its activation is decided."""

    async def publish(self, tenant_id: str, *, version: str, generation: int, at: str) -> None:
        await asyncio.Event().wait()


@pytest.mark.parametrize("by", ["scorer", "command"])
async def test_a_takeover_publishes_the_activation_a_dead_runner_decided(scorer: Scorer, by: str):
    # given a runner that set its handover key to activated, then died before publishing
    dying = scorer.runner(DiesBeforePublishing)
    await dying.requests.request("T", "t-2", NOW)
    attempt = asyncio.ensure_future(dying.take("T"))
    while await scorer.handover(1) != b"activated":
        assert not attempt.done(), attempt
        await asyncio.sleep(0.05)
    attempt.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await attempt
    # and a live scorer at the rebuild's marker that would give it up at once if it could
    waiting = scorer.waiting_at(1)
    # when the next poll takes the request over (a scorer's runner, or the command run again)
    if by == "scorer":
        await scorer.runner().poll()
    else:
        outcome, _ = await rebuild_tenant(scorer.rebuild(), "T", scorer.prefix)
        assert outcome == "activated", outcome
    # then the activation is published, the waiting scorer goes on with the tenant on the
    # rebuild's generation, and the key was never given up
    await asyncio.wait_for(waiting, GUARD)
    assert scorer.templates.generation("T") == 1
    assert await scorer.handover(1) == b"activated"
    done = await dying.requests.latest("T")
    assert done is not None and (done.state, done.generation) == ("activated", 1), done
    [activation] = await scorer.activations()
    assert (activation["generation"], activation["activatedAt"]) == (1, done.activated_at)


class FailsToPublishOnce(Rebuild):
    """Its first publish of an activation fails (the error the test sets), later ones publish."""

    error: Exception | None = None

    async def publish(self, tenant_id: str, *, version: str, generation: int, at: str) -> None:
        error, FailsToPublishOnce.error = FailsToPublishOnce.error, None
        if error is not None:
            raise error
        await super().publish(tenant_id, version=version, generation=generation, at=at)


@pytest.mark.parametrize(
    "error",
    [KafkaTimeoutError("the broker did not answer"), MessageSizeTooLargeError("refused")],
    ids=["outage", "refused"],
)
async def test_an_activation_whose_publish_failed_is_published_by_the_next_poll(
    scorer: Scorer, error: Exception
):
    # given a rebuild whose publish of its decided activation fails once (an outage, or an
    # error that is not one)
    FailsToPublishOnce.error = error
    run = scorer.runner(FailsToPublishOnce)
    await run.requests.request("T", "t-2", NOW)
    with pytest.raises(type(error)):
        await run.poll()
    # then the request stays running (never aborted while its key says activated)
    failed = await run.requests.latest("T")
    assert failed is not None and (failed.state, failed.generation) == ("running", 1), failed
    assert await scorer.handover(1) == b"activated"
    assert await run.requests.queued() == ["T"]
    # and when a live scorer waits at its marker and the runner polls again
    waiting = scorer.waiting_at(1)
    await run.poll()
    # then the activation is published and the scorer goes on
    await asyncio.wait_for(waiting, GUARD)
    assert scorer.templates.generation("T") == 1
    done = await run.requests.latest("T")
    assert done is not None and (done.state, done.generation) == ("activated", 1), done
    assert await run.requests.queued() == []
    [activation] = await scorer.activations()
    assert activation["activatedAt"] == done.activated_at == failed.activated_at
