"""The scorer's log after an erasure names the erased candidate only by its keyed hash."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
import pytest
import redis.asyncio as aioredis

from engagement.kafka.erasure_records import erasure_requests
from engagement.kafka.score_records import OutRecord
from engagement.model.log_privacy import hashed_id
from engagement.model.score_views import Erasure
from engagement.store.redis_store import ScoreStore
from services.scorer.parsing import RawRecord
from tests.support.handlers import batch_handler
from tests.unit.engagement.model.strategies import RULES

KEY = b"scorer-log-hash-key"
ERASED = "carol@mail.example"
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def _records() -> list[RawRecord]:
    event = {
        "type": "track",
        "messageId": "m1",
        "tenantId": "acme",
        "sourceId": "site",
        "channel": "web",
        "receivedAt": NOW.isoformat(),
        "timestamp": NOW.isoformat(),
        "event": "Article Read",
        "userId": ERASED,
    }
    [request] = erasure_requests(
        Erasure("acme", ERASED, True, 1, 1, ()),
        interactions_topic="interactions",
        sequence=2,
        now=NOW,
        source="/engagement/ingest",
    )
    key = f"acme:{ERASED}".encode()
    values = [orjson.dumps(event), request.value]
    return [RawRecord(key, value, "interactions", 0, k) for k, value in enumerate(values)]


async def test_the_erasure_line_names_the_candidate_by_its_keyed_hash(
    redis_client: aioredis.Redis, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    # given a scorer whose log hash key is KEY, and a candidate with an event
    sent: list[OutRecord] = []

    async def send(records: Sequence[OutRecord]) -> None:
        sent.extend(records)

    store = ScoreStore(redis_client, prefix=redis_prefix, rules=RULES)
    handler = batch_handler(store, send, log_hash_key=KEY)
    # when the candidate's erasure request is scored
    with caplog.at_level(logging.DEBUG):
        await handler.handle(_records())
    # then it is erased, and no log line names it: the erasure line holds its hash
    assert await store.get_candidate("acme", ERASED, NOW.timestamp()) is None
    logged = [(r.getMessage(), repr(r.__dict__)) for r in caplog.records]
    assert not [line for line in logged if "carol" in line[0] or "carol" in line[1]]
    assert any(hashed_id(ERASED, key=KEY) in message for message, _ in logged)
