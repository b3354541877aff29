"""Alerts per job: ``candidate.job_hot`` exactly once per crossing, also across a notifier
restart and a notifier killed between publishing and recording; decay to ``candidate.job_cooled``
by the sweep over the job's tier sets; webhooks filtered by type and job id prefix (real broker,
Redis and HTTP receiver)."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime

import orjson
import pytest
import redis.asyncio as aioredis

from engagement.model.records import JobChange, ScoreChange
from engagement.model.rules import load_rules
from engagement.model.scoring import rank_key
from engagement.store.connection import connect
from engagement.store.job_store import job_rank_keys
from engagement.store.redis_keys import KeyLayout
from engagement.store.redis_store import ScoreStore
from services.notifier.delivery_queue import DeliveryQueue
from services.notifier.handler import ScoreRecord
from services.notifier.job_state import JobNotifiedStore
from tests.integration.notifier.conftest import create_topics, score_change, webhooks_toml
from tests.integration.notifier.test_alerts_and_webhooks import eventually
from tests.integration.notifier.test_decay_and_restarts import SWEEP, crossing, ms
from tests.integration.notifier.test_exactly_once_alerts import (
    DyingQueue,
    Killed,
    Topic,
    handler,
)
from tests.support.kafka import read_topic


def with_job(
    candidate: str,
    seq: int,
    job: str,
    tier: str,
    previous: str,
    *,
    raw: float = 90.0,
    at: float | None = None,
) -> ScoreChange:
    """A score record (the candidate itself stays cold) whose event moved its profile for ``job``."""
    as_of = datetime.fromtimestamp(at if at is not None else time.time(), UTC)
    change = score_change("acme", candidate, seq, score=30, tier="cold", previous="cold")
    entry = JobChange(
        jobId=job,
        candidateId=candidate,
        score=83 if tier == "hot" else 50 if tier == "warm" else 10,
        previousScore=None,
        tier=tier,
        previousTier=previous,
        raw=raw,
        sequence=seq,
        asOf=as_of,
    )
    return change.model_copy(update={"jobs": (entry,), "asOf": as_of})


def as_record(change: ScoreChange) -> ScoreRecord:
    return ScoreRecord(change.model_dump_json().encode(), None)


async def job_alerts_of(bootstrap, topics, candidate, done, timeout=40.0) -> list[dict]:
    def mine(records):
        values = [orjson.loads(r.value) for r in records]
        return [v for v in values if v["candidateId"] == candidate and "jobId" in v]

    records = await read_topic(
        bootstrap, topics.candidate_alerts, timeout=timeout, until=lambda rs: done(mine(rs))
    )
    return mine(records)


def notifier_for(make_notifier, topics, redis_prefix, receiver, endpoints=None, h=None):
    options = {} if h is None else {"half_life_days": h / 86400}
    return make_notifier(
        prefix=topics.prefix,
        redis_prefix=redis_prefix,
        webhooks=webhooks_toml(receiver, endpoints or {}),
        **options,
    )


async def test_job_hot_is_published_once_per_crossing_across_replays_and_a_restart(
    kafka_bootstrap, topics, redis_prefix, receiver, make_notifier, feed_for
):
    # given a notifier, and records lifting u1's profile for job J-1 to warm, then to hot
    await create_topics(kafka_bootstrap, topics)
    first = notifier_for(make_notifier, topics, redis_prefix, receiver)
    await asyncio.to_thread(first.start)
    feed = feed_for(topics)
    await feed.send(with_job("u1", 1, "J-1", "warm", "cold", raw=60.0))
    await feed.send(with_job("u1", 2, "J-1", "hot", "warm"))
    await job_alerts_of(kafka_bootstrap, topics, "u1", lambda a: len(a) >= 1)
    # when the notifier is killed, the records come again, and another notifier takes over
    await asyncio.to_thread(first.stop, signal.SIGKILL)
    await feed.send(with_job("u1", 2, "J-1", "hot", "warm"))
    second = notifier_for(make_notifier, topics, redis_prefix, receiver)
    second.env = {**first.env, "NOTIFIER_WEB_PORT": second.env["NOTIFIER_WEB_PORT"]}
    await asyncio.to_thread(second.start)
    await feed.send(with_job("u1", 3, "J-1", "hot", "hot"))  # stays hot: no crossing
    await feed.send(with_job("u1", 4, "J-2", "hot", "cold"))  # another job: its own crossing
    await job_alerts_of(kafka_bootstrap, topics, "u1", lambda a: {x["jobId"] for x in a} >= {"J-2"})
    await asyncio.sleep(2 * SWEEP)
    # then each job's crossing into hot is on the alerts topic once, deduplicated by id (a
    # notifier killed between publishing and emptying its outbox publishes it again, same id)
    published = await job_alerts_of(kafka_bootstrap, topics, "u1", lambda a: False, timeout=2)
    alerts = list({a["id"]: a for a in published}.values())
    assert [(a["type"], a["jobId"], a["previousTier"], a["sequence"]) for a in alerts] == [
        ("candidate.job_hot", "J-1", "warm", 2),
        ("candidate.job_hot", "J-2", "cold", 4),
    ]
    assert alerts[0]["cause"]["messageId"] == "m-u1-2"


async def test_a_notifier_killed_after_publishing_job_alerts_leaves_none_unrecorded(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    topic = Topic()
    queue = DeliveryQueue(redis_client, prefix=redis_prefix, retention_s=3600)
    dying = DyingQueue(redis_client, prefix=redis_prefix, retention_s=3600)
    two_days_ago = time.time() - 2 * 86400  # hot then, cooled by now (half-life 1 day)
    batch = [as_record(with_job("k1", 5, "J-1", "hot", "cold", at=two_days_ago))]
    later = [*batch, as_record(with_job("k1", 6, "J-1", "cold", "cold", raw=1.0, at=two_days_ago))]
    jobs = JobNotifiedStore(redis_client, prefix=redis_prefix)
    # given a notifier killed right after it sent a batch's job alerts to Kafka
    killed = handler(redis_client, redis_prefix, topic, dying)
    killed.jobs = jobs
    with pytest.raises(Killed):
        await killed.handle(batch)
    first = [a["id"] for a in topic.records]
    assert len(first) == 2  # job_hot, then job_cooled: decayed since
    # when the next notifier takes the same record again, in a batch cut elsewhere, later
    again = handler(redis_client, redis_prefix, topic, queue)
    again.jobs = jobs
    await again.handle(later)
    # then the job alerts, deduplicated by id, are the first decision's, each queued for delivery
    unique = list({a["id"]: a for a in topic.records}.values())
    assert [a["id"] for a in unique] == first
    assert [(a["type"], a["tier"]) for a in unique] == [
        ("candidate.job_hot", "hot"),
        ("candidate.job_cooled", "warm"),
    ]
    for alert in unique:
        assert await redis_client.exists(queue.delivery_key(f"{alert['id']}-crm"))


async def hot_job_member(redis_url, notifier, candidate, job, *, raw, t0, sequence=1) -> None:
    """Put the candidate's job profile into Redis, hot, and the candidate into the job's hot tier
    set, as the scorer does (lua/job_profile.lua, then its rank round)."""
    prefix = notifier.env["REDIS_KEY_PREFIX"]
    client = connect(redis_url)
    try:
        store = ScoreStore(client, prefix=prefix, rules=load_rules(notifier.env["RULES_FILE"]))
        h = store.rules.half_life_seconds
        profile = "\x1f".join((repr(t0), repr(raw), "0", "0", repr(raw), "3", str(sequence)))
        await client.hset(store.keys.candidate("acme", candidate).jobs, job, profile)
        keys = job_rank_keys(store, "acme", job)
        assert await store.run_rank(keys, [candidate, sequence, 3, repr(rank_key(raw, t0, h))])
        await client.sadd(KeyLayout(prefix).tenants, "acme")
    finally:
        await client.aclose()


async def test_a_hot_job_cools_by_decay_within_one_sweep_exactly_once(
    kafka_bootstrap, redis_url, topics, redis_prefix, receiver, make_notifier, feed_for
):
    # given a notifier with a 4 s half-life and u2 hot for job J-9 (raw 90 → score 83) now
    h = 4.0
    await create_topics(kafka_bootstrap, topics)
    notifier = notifier_for(make_notifier, topics, redis_prefix, receiver, h=h)
    await asyncio.to_thread(notifier.start)
    t0 = time.time()
    await hot_job_member(redis_url, notifier, "u2", "J-9", raw=90.0, t0=t0)
    await feed_for(topics).send(with_job("u2", 1, "J-9", "hot", "cold", at=t0))
    # when its job score decays below hot's exit (65), then below warm's (35)
    alerts = await job_alerts_of(kafka_bootstrap, topics, "u2", lambda a: len(a) >= 2)
    await asyncio.sleep(3 * SWEEP + 2 * h)
    alerts = await job_alerts_of(kafka_bootstrap, topics, "u2", lambda a: False, timeout=2)
    # then the sweep announces job_cooled once, at the computed instant; leaving warm is no alert
    assert [(a["type"], a["jobId"], a["tier"]) for a in alerts] == [
        ("candidate.job_hot", "J-9", "hot"),
        ("candidate.job_cooled", "J-9", "warm"),
    ]
    cooled = alerts[1]
    expected = crossing(90.0, t0, 65, h)
    assert cooled["cause"]["type"] == "decay"
    assert abs(ms(cooled["cause"]["crossedAt"]) - expected) < 0.002
    assert expected <= ms(cooled["time"]) <= expected + SWEEP + 2.0


async def test_webhooks_are_filtered_by_event_type_and_job_id_prefix(
    kafka_bootstrap, topics, redis_prefix, receiver, make_notifier, feed_for
):
    # given an endpoint for ACME- jobs' job_hot alerts only, and one for everything
    tag = redis_prefix.replace(":", "")[-12:]
    acme, every = f"acme{tag}", f"all{tag}"
    endpoints = {
        acme: {"event_types": ["candidate.job_hot"], "job_prefixes": ["ACME-"]},
        every: {},
    }
    await create_topics(kafka_bootstrap, topics)
    notifier = notifier_for(make_notifier, topics, redis_prefix, receiver, endpoints)
    await asyncio.to_thread(notifier.start)
    feed = feed_for(topics)
    # when w1 becomes hot for ACME-1 and OTHER-1, and as a candidate
    await feed.send(with_job("w1", 1, "ACME-1", "hot", "cold"))
    await feed.send(with_job("w1", 2, "OTHER-1", "hot", "cold"))
    await feed.send(score_change("acme", "w1", 3, score=80, tier="hot", previous="cold"))
    # then the job endpoint receives ACME-1's job_hot only, the other endpoint all three
    assert await eventually(lambda: len(receiver.on(f"/hooks/{every}")) >= 3)
    await asyncio.sleep(1.0)
    got = [orjson.loads(r.body) for r in receiver.on(f"/hooks/{acme}")]
    assert [(b["type"], b["data"]["jobId"]) for b in got] == [("candidate.job_hot", "ACME-1")]
    types = sorted(orjson.loads(r.body)["type"] for r in receiver.on(f"/hooks/{every}"))
    assert types == ["candidate.hot", "candidate.job_hot", "candidate.job_hot"]
