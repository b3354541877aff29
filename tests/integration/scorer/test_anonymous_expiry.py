"""Idle anonymous candidates expire: indexed by their latest event, requested for erasure past
the retention, erased by the scorer behind their events unless they came back (real Redis; the
handler in process, its records captured)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
import redis.asyncio as aioredis

from engagement.kafka.score_records import OutRecord
from engagement.store.redis_store import ScoreStore
from services.scorer.expiry import expire_idle
from services.scorer.parsing import RawRecord
from tests.support.handlers import batch_handler
from tests.unit.engagement.model.strategies import RULES, T0, alias, interaction

DAY = 86400.0
NOW = datetime.fromtimestamp(T0 + 100 * DAY, UTC)  # the retention below: 90 days
RETENTION = 90 * DAY


def raw(value: dict[str, object] | bytes, key: bytes) -> RawRecord:
    body = value if isinstance(value, bytes) else orjson.dumps(value)
    return RawRecord(key, body, "interactions", 0, 0)


async def test_only_idle_anonymous_candidates_are_requested_and_erased(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=RULES)
    # given an anonymous visitor idle 100 days, one seen 5 days ago, an identified candidate idle
    # 100 days, and an anonymous visitor identified since
    await store.apply_batch(
        [
            interaction("old", T0, user_id=None, anonymous_id="old"),
            interaction("recent", T0 + 95 * DAY, user_id=None, anonymous_id="recent"),
            interaction("known", T0, user_id="known"),
            interaction("merged", T0, user_id=None, anonymous_id="merged"),
        ]
    )
    await store.apply_batch([alias("al", "anon:merged", "someone", t=T0 + 1)])
    # when the scorer looks for idle anonymous candidates
    sent: list[OutRecord] = []

    async def send(records: Sequence[OutRecord]) -> None:
        sent.extend(records)

    requested = await expire_idle(
        store, send, interactions_topic="interactions", retention_seconds=RETENTION, now=NOW
    )
    # then only the idle anonymous one is requested, keyed like its events, once
    assert requested == 1 and [r.key for r in sent] == [b"acme:anon:old"]
    assert await store.idle_anonymous("acme", before=NOW.timestamp(), limit=10) == ["anon:recent"]
    # and when the scorer reaches the request, the candidate is erased
    handler = batch_handler(store, send, clock=lambda: NOW)
    await handler.handle([raw(sent[0].value, sent[0].key)])
    assert await store.get_candidate("acme", "anon:old", NOW.timestamp()) is None
    for kept in ("anon:recent", "known", "someone"):
        assert await store.get_candidate("acme", kept, NOW.timestamp()) is not None


async def test_an_anonymous_candidate_that_came_back_before_its_expiry_is_kept(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=RULES)
    sent: list[OutRecord] = []

    async def send(records: Sequence[OutRecord]) -> None:
        sent.extend(records)

    # given an expiry requested for an idle visitor
    await store.apply_batch([interaction("v1", T0, user_id=None, anonymous_id="v")])
    await expire_idle(
        store, send, interactions_topic="interactions", retention_seconds=RETENTION, now=NOW
    )
    [request] = sent
    # when the visitor comes back before the scorer reaches the request (its event first)
    back = interaction("v2", NOW.timestamp() - 60, user_id=None, anonymous_id="v")
    handler = batch_handler(store, send, clock=lambda: NOW)
    await handler.handle(
        [raw(back.model_dump_json().encode(), b"acme:anon:v"), raw(request.value, request.key)]
    )
    # then it is kept, with both events, and indexed again by its new event
    view = await store.get_candidate("acme", "anon:v", NOW.timestamp())
    assert view is not None and view.state.sequence == 2
    assert handler.metrics.events.labels("acme", "kept")._value.get() == 1
    later = NOW.timestamp() + 1
    assert await store.idle_anonymous("acme", before=later, limit=10) == ["anon:v"]


async def test_an_erased_candidate_leaves_the_idle_index(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=RULES)
    await store.apply_batch([interaction("v1", T0, user_id=None, anonymous_id="gone")])
    await store.erase("acme", "anon:gone")
    assert await store.idle_anonymous("acme", before=NOW.timestamp(), limit=10) == []
