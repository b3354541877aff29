"""The batch handler when a store call fails: it retries until the call succeeds (the batch is
acknowledged only then), and a failure that is no outage, a bug, is logged with its traceback
once per failing streak, so the stalled partition can be diagnosed from the log."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from engagement.redis_store import ScoreStore
from engagement.score_records import OutRecord
from services.scorer.parsing import RawRecord
from tests.support.handlers import batch_handler
from tests.unit.scoring.strategies import RULES

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


class FailingStore(ScoreStore):
    """The store, its first ``failures`` batch applies raising ``error`` before touching Redis."""

    def __init__(self, *args: Any, error: Exception, failures: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.error, self.failures = error, failures

    async def apply_batch(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise self.error
        return await super().apply_batch(*args, **kwargs)


def record(message_id: str) -> RawRecord:
    value = {
        "type": "track",
        "messageId": message_id,
        "tenantId": "acme",
        "sourceId": "site",
        "channel": "web",
        "receivedAt": NOW.isoformat(),
        "timestamp": NOW.isoformat(),
        "event": "Article Read",
        "userId": "u1",
    }
    return RawRecord(b"acme:u1", orjson.dumps(value), "interactions", 0, 0)


async def scored(store: ScoreStore) -> int:
    """Handle one event; the candidate's sequence once the handler returned."""
    sent: list[OutRecord] = []

    async def send(records: Sequence[OutRecord]) -> None:
        sent.extend(records)

    handler = batch_handler(store, send, retry_max=0.01, clock=lambda: NOW)
    await handler.handle([record("m1")])
    assert handler.stuck_for() == 0.0
    assert sent, "the score records go out once the retried call succeeded"
    view = await store.get_candidate("acme", "u1", NOW.timestamp())
    assert view is not None
    return view.state.sequence


def retries(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", "") == "scorer.redis_retry"]


@pytest.mark.parametrize(
    ("error", "bug"), [(TypeError("a bug"), True), (RedisConnectionError("down"), False)]
)
async def test_a_failing_store_call_is_retried_until_it_succeeds_and_a_bug_shows_its_traceback(
    redis_client: aioredis.Redis,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    bug: bool,
) -> None:
    # given a store whose batch apply fails three times
    store = FailingStore(redis_client, prefix=redis_prefix, rules=RULES, error=error, failures=3)
    # when the handler takes an event
    with caplog.at_level(logging.WARNING, logger="engagement.scorer"):
        sequence = await scored(store)
    # then it is scored once, after a retry per failure
    assert sequence == 1
    logged = retries(caplog)
    assert len(logged) == 3
    # and a bug's traceback is logged with the first retry only; an outage's never
    tracebacks = [r.exc_info[1] for r in logged if r.exc_info]
    assert tracebacks == ([error] if bug else [])
    assert (logged[0].exc_info is not None) is bug
