"""The batch handler in rebuild mode (``publish=False``) on a real Redis, fed the records ingest
wrote, with the partitions of the topic in every order a replay can take them.

The story on the topic: visitor v browses anonymously, identifies as e, e is erased through the
API (ingest wrote a request for e and one for anon:v, the id merged into it), and v's browser
goes on after the erasure: a new profile of anon:v that is no part of e. In e's partition: e's
event, the identify, e's request; in anon:v's: v's event, v's request, v's new event. A replay
reads the two partitions out of step with each other.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import redis.asyncio as aioredis

from engagement.kafka.erasure_records import erasure_requests
from engagement.kafka.score_records import OutRecord
from engagement.model.score_views import Erasure
from engagement.store.redis_store import ScoreStore
from services.scorer.parsing import RawRecord
from tests.support.handlers import batch_handler
from tests.unit.engagement.model.strategies import RULES

DELETED = datetime(2026, 11, 20, 12, tzinfo=UTC)  # the DELETE, long before the rebuild runs


def at(minutes: float) -> datetime:
    return DELETED + timedelta(minutes=minutes)


def event(message_id: str, when: datetime, **who: str) -> dict[str, object]:
    return {
        "type": "track",
        "messageId": message_id,
        "tenantId": "acme",
        "sourceId": "site",
        "channel": "web",
        "receivedAt": when.isoformat(),
        "timestamp": when.isoformat(),
        "event": "Article Read",
    } | who


def identify(when: datetime) -> dict[str, object]:
    fields = event("id1", when, userId="e", anonymousId="v") | {"type": "identify"}
    return {k: v for k, v in fields.items() if k != "event"}


def partitions() -> tuple[list[RawRecord], list[RawRecord]]:
    """(e's partition, anon:v's partition) as ingest wrote them."""
    [e_request, v_request] = erasure_requests(
        Erasure("acme", "e", True, 4, 3, ("anon:v",)),
        interactions_topic="interactions",
        sequence=4,
        now=DELETED,
        source="/engagement/ingest",
    )

    def records(partition: int, values: list[dict[str, object] | OutRecord]) -> list[RawRecord]:
        raw = [v.value if isinstance(v, OutRecord) else orjson.dumps(v) for v in values]
        key = b"acme:e" if partition == 0 else b"acme:anon:v"
        return [RawRecord(key, r, "interactions", partition, k) for k, r in enumerate(raw)]

    e_part = records(0, [event("e1", at(-30), userId="e"), identify(at(-20)), e_request])
    v_part = records(
        1, [event("v1", at(-40), anonymousId="v"), v_request, event("v2", at(5), anonymousId="v")]
    )
    return e_part, v_part


async def nothing_sent(records: Sequence[OutRecord]) -> None:
    raise AssertionError(f"a rebuild sent {len(records)} records to Kafka")


def interleavings(e_part: list[RawRecord], v_part: list[RawRecord]) -> list[list[RawRecord]]:
    """Every merge of the two partitions that keeps each in its own order."""
    n = len(e_part) + len(v_part)
    orders = []
    for slots in itertools.combinations(range(n), len(e_part)):
        e_it, v_it = iter(e_part), iter(v_part)
        orders.append([next(e_it) if k in slots else next(v_it) for k in range(n)])
    return orders


E_PART, V_PART = partitions()


@pytest.mark.parametrize("batch_size", [1, 6])
@pytest.mark.parametrize("order", range(len(interleavings(E_PART, V_PART))))
async def test_a_rebuild_erases_what_the_api_erased_and_keeps_what_came_after_in_any_order(
    redis_client: aioredis.Redis, redis_prefix: str, order: int, batch_size: int
) -> None:
    # given a rebuild's handler on a new store (no fence there: the DELETE's is on the old one)
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=RULES)
    handler = batch_handler(store, nothing_sent, publish=False)
    records = interleavings(E_PART, V_PART)[order]
    # when it takes the two partitions in this order, in batches
    for k in range(0, len(records), batch_size):
        await handler.handle(records[k : k + batch_size])
    # then e is gone, and anon:v holds exactly its event after the erasure, merged into no one
    now = at(10).timestamp()
    assert await store.get_candidate("acme", "e", now) is None
    v = await store.get_candidate("acme", "anon:v", now)
    assert v is not None
    assert (v.candidate_id, v.state.sequence) == ("anon:v", 1)
    assert [c.message_id for c in v.contributions] == ["v2"]
    board = await store.leaderboard("acme", now=now)
    assert [entry.candidate_id for entry in board.entries] == ["anon:v"]
