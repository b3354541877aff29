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
from aiokafka.errors import KafkaTimeoutError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from engagement.kafka.score_records import OutRecord
from engagement.store.redis_store import ScoreStore
from services.scorer.parsing import RawRecord
from tests.support.handlers import batch_handler
from tests.unit.engagement.model.strategies import RULES

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


BUG, DOWN = TypeError("a bug"), RedisConnectionError("down")


class FailingStore(ScoreStore):
    """The store, its batch applies raising ``errors`` one by one (before touching Redis)."""

    def __init__(self, *args: Any, errors: Sequence[Exception], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.errors = list(errors)

    async def apply_batch(self, *args: Any, **kwargs: Any) -> Any:
        if self.errors:
            raise self.errors.pop(0)
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


async def scored(store: ScoreStore, send_errors: Sequence[Exception] = ()) -> int:
    """Handle one event, the producer raising ``send_errors`` one by one first; the candidate's
    sequence once the handler returned."""
    sent: list[OutRecord] = []
    failing = list(send_errors)

    async def send(records: Sequence[OutRecord]) -> None:
        if failing:
            raise failing.pop(0)
        sent.extend(records)

    handler = batch_handler(store, send, retry_max=0.01, clock=lambda: NOW)
    await handler.handle([record("m1")])
    assert handler.stuck_for() == 0.0
    assert sent, "the score records go out once the retried call succeeded"
    view = await store.get_candidate("acme", "u1", NOW.timestamp())
    assert view is not None
    return view.state.sequence


def retries(caplog: pytest.LogCaptureFixture, what: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", "") == f"scorer.{what}_retry"]


@pytest.mark.parametrize(
    ("errors", "traced"),
    [
        ([BUG, BUG, BUG], [BUG]),  # a bug: its traceback with the first retry only
        ([DOWN, DOWN, DOWN], []),  # an outage: none
        ([ResponseError("OOM command not allowed")] * 2, []),  # a refusal by Redis: none
        ([DOWN, BUG, BUG], [BUG]),  # a bug behind an outage in one streak: at the bug
    ],
    ids=["bug", "outage", "refused", "outage-then-bug"],
)
async def test_a_failing_store_call_is_retried_until_it_succeeds_and_a_bug_shows_its_traceback(
    redis_client: aioredis.Redis,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
    errors: list[Exception],
    traced: list[Exception],
) -> None:
    # given a store whose batch apply fails with these errors, one after the other
    store = FailingStore(redis_client, prefix=redis_prefix, rules=RULES, errors=errors)
    # when the handler takes an event
    with caplog.at_level(logging.WARNING, logger="engagement.scorer"):
        sequence = await scored(store)
    # then it is scored once, after a retry per failure
    assert sequence == 1
    logged = retries(caplog, "redis")
    assert len(logged) == len(errors)
    # and only a bug's traceback is logged, once
    assert [r.exc_info[1] for r in logged if r.exc_info] == traced


async def test_a_kafka_outage_is_retried_without_a_traceback(
    redis_client: aioredis.Redis, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = FailingStore(redis_client, prefix=redis_prefix, rules=RULES, errors=[])
    with caplog.at_level(logging.WARNING, logger="engagement.scorer"):
        sequence = await scored(store, send_errors=[KafkaTimeoutError()] * 2)
    assert sequence == 1
    logged = retries(caplog, "kafka")
    assert len(logged) == 2
    assert [r for r in logged if r.exc_info] == []


def event(message_id: str, candidate: str, tenant: str = "acme") -> RawRecord:
    value = orjson.loads(record(message_id).value or b"{}")
    value |= {"userId": candidate, "tenantId": tenant}
    return RawRecord(f"{tenant}:{candidate}".encode(), orjson.dumps(value), "interactions", 0, 0)


class PoisonedStore(ScoreStore):
    """The store, its batch applies raising ``error`` while the batch holds one of ``poison``
    (messageIds): a failure no code foresaw, tied to a record."""

    def __init__(self, *args: Any, poison: set[str], error: Exception, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.poison, self.error = poison, error

    async def apply_batch(self, interactions: Any, **kwargs: Any) -> Any:
        taken = list(interactions)
        if any(i.messageId in self.poison for i in taken):
            raise self.error
        return await super().apply_batch(taken, **kwargs)


async def handled(store: ScoreStore, records: list[RawRecord]) -> tuple[list[dict[str, Any]], Any]:
    """Handle ``records`` as one batch; the DLQ rows written and the handler."""
    sent: list[OutRecord] = []

    async def send(records: Sequence[OutRecord]) -> None:
        sent.extend(records)

    handler = batch_handler(store, send, retry_max=0.01, clock=lambda: NOW)
    await handler.handle(records)
    return [orjson.loads(r.value) for r in sent if r.topic == "dlq"], handler


async def sequence_of(store: ScoreStore, candidate: str, tenant: str = "acme") -> int:
    view = await store.get_candidate(tenant, candidate, NOW.timestamp())
    return 0 if view is None else view.state.sequence


async def test_a_record_whose_state_is_corrupt_is_quarantined_and_the_others_are_scored(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given a candidate whose profile key holds a string (Redis answers WRONGTYPE to its script)
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=RULES)
    await redis_client.set(store.keys.candidate("acme", "broken").profile, "not a hash")
    # when a batch of both tenants holds its event among good ones
    batch = [event(f"m{k}", f"u{k}", tenant=("acme", "globex")[k % 2]) for k in range(9)]
    batch.insert(4, event("poison", "broken"))
    dlq, handler = await handled(store, batch)
    # then the good events are scored, each once
    for k in range(9):
        assert await sequence_of(store, f"u{k}", tenant=("acme", "globex")[k % 2]) == 1
    # and the poison record alone is in the DLQ, with the step that failed and Redis' error
    [row] = dlq
    assert row["failureType"] == "processing_error"
    assert orjson.loads(row["payload"])["messageId"] == "poison"
    assert row["origin"]["key"] == "acme:broken"
    assert "WRONGTYPE" in row["messages"][0]
    # and it is counted, and the handler is healthy again
    quarantined = handler.metrics.quarantined.labels("acme", "processing_error")._value.get()
    assert quarantined == 1
    assert handler.stuck_for() == 0.0


async def test_a_batch_is_narrowed_down_to_exactly_the_records_that_fail(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given a store that fails on two records no code foresaw
    poison = {"m13", "m50"}
    store = PoisonedStore(
        redis_client, prefix=redis_prefix, rules=RULES, poison=poison, error=TypeError("a bug")
    )
    # when a batch of 64 holds them
    dlq, _ = await handled(store, [event(f"m{k}", f"u{k}") for k in range(64)])
    # then those two alone are set aside, in order, and every other event is scored once
    assert [orjson.loads(row["payload"])["messageId"] for row in dlq] == ["m13", "m50"]
    assert {row["messages"][0] for row in dlq} == {"redis: TypeError: a bug"}
    for k in range(64):
        assert await sequence_of(store, f"u{k}") == (0 if f"m{k}" in poison else 1)


async def test_an_outage_never_sets_a_record_aside(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given a store down for more tries than a failing record gets
    store = FailingStore(redis_client, prefix=redis_prefix, rules=RULES, errors=[DOWN] * 12)
    # when it takes a batch
    dlq, _ = await handled(store, [event(f"m{k}", f"u{k}") for k in range(4)])
    # then nothing is quarantined: every event is scored once Redis is back
    assert dlq == []
    for k in range(4):
        assert await sequence_of(store, f"u{k}") == 1
