"""The invariants of ``engagement.erasure``, one test each, named as its docstring names them: on
the real Redis and the real broker, driven as the read API (``on_request``) and the scorer's batch
handler (``behind_events``) drive it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer, ConsumerRecord

from engagement import erasure
from engagement.erasure import ErasureTopics
from engagement.kafka.admin import ensure_topics
from engagement.kafka.score_records import OutRecord
from engagement.kafka.topics import Topics
from engagement.store.erasure_fence import fence_id
from engagement.store.redis_store import ScoreStore
from services.scorer.handler import BatchHandler
from services.scorer.metrics import ScorerMetrics
from services.scorer.parsing import RawRecord
from tests.support.kafka import read_topic
from tests.unit.engagement.model.strategies import RULES, alias, interaction

TENANT = "acme"
MERGED = ("anon:x", "old-crm-id", "anon:y")


class NotAcknowledged(Exception):
    """What the read API's sink raises when Kafka does not acknowledge (a 503)."""


@pytest.fixture
def store(redis_client: aioredis.Redis, redis_prefix: str) -> ScoreStore:
    return ScoreStore(redis_client, prefix=redis_prefix, rules=RULES)


@pytest.fixture
async def publish(kafka_bootstrap: str, topics: Topics) -> AsyncIterator[erasure.Publish]:
    """Acknowledged produce to this test's topics on the session broker."""
    await ensure_topics(kafka_bootstrap, topics, partitions=3, replication_factor=1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()

    async def send(records: Sequence[OutRecord]) -> None:
        acks = [
            await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers))
            for r in records
        ]
        await asyncio.gather(*acks)

    yield send
    await producer.stop()


def topics_of(topics: Topics) -> ErasureTopics:
    return ErasureTopics(topics.scores_changed, topics.scores_latest, topics.interactions)


def scorer(store: ScoreStore, publish: erasure.Publish, topics: Topics) -> BatchHandler:
    return BatchHandler(
        store=store,
        send_all=publish,
        send_acked=publish,
        metrics=ScorerMetrics(),
        dlq_topic=topics.interactions_dlq,
        changes_topic=topics.scores_changed,
        latest_topic=topics.scores_latest,
        interactions_topic=topics.interactions,
        retry_max=0.05,
    )


async def given_u1_with_merged_ids(store: ScoreStore, t0: float) -> int:
    """u1 with anon:x folded in and old-crm-id (holding anon:y) aliased into it; u1's sequence."""
    await store.apply_batch(
        [
            interaction("a1", t0, user_id=None, anonymous_id="x"),
            interaction("a2", t0, user_id=None, anonymous_id="y"),
            interaction("u1", t0 + 1),
        ]
    )
    await store.apply_batch(
        [
            interaction("i1", t0 + 2, kind="identify", anonymous_id="x"),
            interaction("i2", t0 + 2, kind="identify", user_id="old-crm-id", anonymous_id="y"),
        ]
    )
    await store.apply_batch([alias("al1", "old-crm-id", "u1", t=t0 + 3)])
    view = await store.get_candidate(TENANT, "u1", time.time())
    assert view is not None
    return view.state.sequence


def raw(record: object, offset: int = 0) -> RawRecord:
    """An interaction (or an erasure request read back from the topic) as the scorer gets it."""
    if isinstance(record, ConsumerRecord):
        return RawRecord(record.key, record.value, record.topic, record.partition, record.offset)
    value = orjson.dumps(record.model_dump(mode="json", exclude_none=True))  # type: ignore[attr-defined]
    key = f"{TENANT}:{record.userId or 'anon:' + record.anonymousId}".encode()  # type: ignore[attr-defined]
    return RawRecord(key, value, "interactions", 0, offset)


async def keys_left(store: ScoreStore) -> set[str]:
    """The keys of this test's store but the global ones (the fences, the tenants)."""
    found = {
        k.decode() async for k in store.redis.scan_iter(match=f"{store.keys.prefix}*", count=1000)
    }
    return found - {store.keys.erasing, store.keys.tenants}


async def test_nothing_is_scored_after_the_delete(
    store: ScoreStore, publish: erasure.Publish, topics: Topics
) -> None:
    # given u1 with merged ids, and events of u1 and of anon:x accepted just before the DELETE
    now = time.time()
    await given_u1_with_merged_ids(store, now - 60)
    in_flight = [
        interaction("late-u1", now - 1, received=now - 1),
        interaction("late-x", now - 1, user_id=None, anonymous_id="x", received=now - 1),
    ]
    # when the DELETE runs, then the scorer gets those events and one sent after the DELETE
    delete_at = datetime.fromtimestamp(now, UTC)
    await erasure.on_request(
        store, TENANT, "u1", now=delete_at, publish=publish, topics=topics_of(topics)
    )
    after = interaction("new-u1", now + 1, received=now + 1)
    await scorer(store, publish, topics).handle(
        [raw(e, k) for k, e in enumerate([*in_flight, after])]
    )
    # then every id was fenced, and only the event sent after the DELETE is scored
    fences = await store.fences(now + 2, drop=False)
    for cand in ("u1", *MERGED):
        assert fences[fence_id(TENANT, cand)] == pytest.approx(now, abs=0.001)
    view = await store.get_candidate(TENANT, "u1", now + 2)
    assert view is not None and view.state.sequence == 1, "u1 starts anew with the new event"
    assert await store.get_candidate(TENANT, "anon:x", now + 2) is None


async def test_every_id_goes(
    store: ScoreStore,
    publish: erasure.Publish,
    topics: Topics,
) -> None:
    now = time.time()
    await given_u1_with_merged_ids(store, now - 60)
    assert await keys_left(store)
    done = await erasure.on_request(
        store, TENANT, "u1", now=datetime.now(UTC), publish=publish, topics=topics_of(topics)
    )
    assert set(done.merged_ids) == set(MERGED)
    assert await keys_left(store) == set()
    board = await store.leaderboard(TENANT, None, 100, now=time.time())
    assert board.entries == ()


async def test_a_retry_completes_it(
    store: ScoreStore,
    publish: erasure.Publish,
    topics: Topics,
    kafka_bootstrap: str,
) -> None:
    # given u1 with merged ids, and a first DELETE whose records Kafka did not acknowledge
    sequence = await given_u1_with_merged_ids(store, time.time() - 60)

    async def refused(records: Sequence[OutRecord]) -> None:
        raise NotAcknowledged

    with pytest.raises(NotAcknowledged):
        await erasure.on_request(
            store, TENANT, "u1", now=datetime.now(UTC), publish=refused, topics=topics_of(topics)
        )
    assert await keys_left(store) == {store.keys.pending_erasure(TENANT, "u1")}, (
        "the keys are gone; what the retry needs is kept"
    )
    # when the client repeats the DELETE
    again = await erasure.on_request(
        store, TENANT, "u1", now=datetime.now(UTC), publish=publish, topics=topics_of(topics)
    )
    # then it publishes what the first attempt would have: every id, the same sequence
    assert set(again.merged_ids) == set(MERGED) and again.last_sequence == sequence
    wanted = {f"{TENANT}:{c}".encode() for c in ("u1", *MERGED)}
    latest = await read_topic(
        kafka_bootstrap,
        topics.scores_latest,
        until=lambda rs: wanted <= {r.key for r in rs if r.value is None},
    )
    assert wanted <= {r.key for r in latest if r.value is None}
    assert await keys_left(store) == set(), "then forgotten"


async def test_consumers_see_the_erasure_last(
    store: ScoreStore, publish: erasure.Publish, topics: Topics, kafka_bootstrap: str
) -> None:
    sequence = await given_u1_with_merged_ids(store, time.time() - 60)
    await erasure.on_request(
        store, TENANT, "u1", now=datetime.now(UTC), publish=publish, topics=topics_of(topics)
    )
    changes = await read_topic(
        kafka_bootstrap, topics.scores_changed, until=lambda rs: any(r.value for r in rs)
    )
    [record] = [orjson.loads(r.value) for r in changes if r.value]
    assert record["cause"]["type"] == "erasure" and record["candidateId"] == "u1"
    assert record["sequence"] == sequence + 1, "past every score record of u1"
    wanted = {f"{TENANT}:{c}".encode() for c in ("u1", *MERGED)}
    latest = await read_topic(
        kafka_bootstrap,
        topics.scores_latest,
        until=lambda rs: wanted <= {r.key for r in rs if r.value is None},
    )
    assert wanted <= {r.key for r in latest if r.value is None}, "a tombstone per id"


async def test_what_slipped_through_is_erased_again(
    store: ScoreStore,
    publish: erasure.Publish,
    topics: Topics,
    kafka_bootstrap: str,
) -> None:
    # given a DELETE of u1, and an event of u1 accepted before it that a scorer scored anyway
    # (its batch read the fences before the DELETE raised them)
    now = time.time()
    await given_u1_with_merged_ids(store, now - 60)
    await erasure.on_request(
        store,
        TENANT,
        "u1",
        now=datetime.fromtimestamp(now, UTC),
        publish=publish,
        topics=topics_of(topics),
    )
    await store.apply_batch([interaction("slipped", now - 1, received=now - 1)])
    slipped = await store.get_candidate(TENANT, "u1", now)
    assert slipped is not None
    # when the scorer reaches u1's erasure request, behind that event in u1's partition
    requests = await read_topic(kafka_bootstrap, topics.interactions, count=1 + len(MERGED))
    [request] = [r for r in requests if r.key == f"{TENANT}:u1".encode()]
    await scorer(store, publish, topics).handle([raw(request)])
    # then u1 is gone again, its erasure record is published again past that event's sequence,
    # and only now its fence is marked reached
    assert await store.get_candidate(TENANT, "u1", now + 1) is None
    assert await keys_left(store) == set()
    changes = await read_topic(
        kafka_bootstrap, topics.scores_changed, until=lambda rs: sum(1 for r in rs if r.value) >= 2
    )
    sequences = [orjson.loads(r.value)["sequence"] for r in changes if r.value]
    assert max(sequences) > slipped.state.sequence
    fence = await store.redis.hget(store.keys.erasing, fence_id(TENANT, "u1"))
    assert fence is not None and b" " in fence, "reached: requestedAt, then reachedAt"
