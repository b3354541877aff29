"""Crossings are announced exactly once across a notifier stopped between publishing an alert
and recording it: the first decision is stored with its alerts (an outbox) before anything is
published, so the notifier after it publishes those, not a decision of its own (real Redis; the
handler in process, its Kafka sends captured)."""

from __future__ import annotations

import asyncio
import tomllib
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from engagement.model.decisions import Stored
from engagement.model.records import ScoreChange
from engagement.model.rules import parse_rules
from engagement.model.webhooks import WebhookConfig
from engagement.store.redis_store import ScoreStore
from services.notifier.delivery_queue import DeliveryQueue
from services.notifier.handler import ChangeHandler, ScoreRecord
from services.notifier.metrics import NotifierMetrics
from services.notifier.publisher import AlertPublisher
from services.notifier.state import NotifiedStore
from tests.integration.notifier.conftest import RULES_TOML, SECRET, score_change
from tests.unit.engagement.model.strategies import RULES as STORE_RULES
from tests.unit.engagement.model.strategies import T0, alias, interaction

RULES = parse_rules(tomllib.loads(RULES_TOML.format(half_life=1.0)))
WEBHOOKS = WebhookConfig.model_validate(
    {
        "require_https": False,
        "endpoints": [
            {"id": "crm", "url": "http://crm.example/hook", "secret": SECRET, "tenants": ["acme"]}
        ],
    }
)


class Killed(BaseException):
    """The notifier's process killed at this point (nothing after it runs)."""


class Topic:
    """The alerts topic: every record sent, in order."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    async def send(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> Any:
        self.records.append(orjson.loads(value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class DyingQueue(DeliveryQueue):
    """The delivery queue of a notifier killed at its first enqueue (after the Kafka send)."""

    async def enqueue_many(self, *args: Any, **kwargs: Any) -> int:
        raise Killed


def handler(
    redis: aioredis.Redis, prefix: str, topic: Topic, queue: DeliveryQueue
) -> ChangeHandler:
    metrics = NotifierMetrics()
    publisher = AlertPublisher(send=topic.send, queue=queue, webhooks=WEBHOOKS, metrics=metrics)

    async def dead_letter(key: bytes, value: bytes) -> None:
        raise AssertionError("no record of this test is bad")

    return ChangeHandler(
        rules=RULES,
        state=NotifiedStore(redis, prefix=prefix),
        publisher=publisher,
        metrics=metrics,
        dead_letter=dead_letter,
    )


def warm_two_days_ago(seq: int) -> ScoreChange:
    """A record announcing warm at an instant two half-lives ago: cold by now."""
    return score_change(
        "acme",
        "c1",
        seq,
        score=50,
        tier="warm",
        previous="cold",
        as_of=datetime.now(UTC) - timedelta(days=2),
    )


def records(*sequences: int) -> list[ScoreRecord]:
    return [ScoreRecord(warm_two_days_ago(s).model_dump_json().encode(), None) for s in sequences]


def consistent(alerts: list[dict[str, Any]]) -> bool:
    """Each alert's previousTier is what the one before announced (first from the floor)."""
    announced = "cold"
    for alert in alerts:
        if alert["previousTier"] != announced:
            return False
        announced = alert["tier"]
    return True


async def test_a_notifier_killed_after_publishing_leaves_no_alert_unrecorded(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    topic = Topic()
    queue = DeliveryQueue(redis_client, prefix=redis_prefix, retention_s=3600)
    dying = DyingQueue(redis_client, prefix=redis_prefix, retention_s=3600)
    # given a notifier killed right after it sent a batch's alerts to Kafka
    with pytest.raises(Killed):
        await handler(redis_client, redis_prefix, topic, dying).handle(records(5))
    first = [a["id"] for a in topic.records]
    assert first  # warm, then cooled to cold: two alerts on the topic
    # when the next notifier takes the same record again, in a batch cut elsewhere, later
    await handler(redis_client, redis_prefix, topic, queue).handle(records(5, 6))
    # then the alerts on the topic, deduplicated by id, form one chain
    unique = list({a["id"]: a for a in topic.records}.values())
    assert consistent(unique), [(a["previousTier"], a["tier"], a["sequence"]) for a in unique]
    assert unique[-1]["tier"] == "cold"
    # and every one of them is queued for delivery
    for alert in unique:
        assert await redis_client.exists(queue.delivery_key(f"{alert['id']}-crm"))


async def test_the_notifier_reads_each_candidates_state_as_the_store_holds_it(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given a candidate scored twice and an anonymous id folded into it
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=STORE_RULES)
    await store.apply_batch(
        [
            interaction("m1", T0, user_id="u1"),
            interaction("m2", T0 + 60, user_id="u1"),
            interaction("m3", T0, user_id=None, anonymous_id="a1"),
        ]
    )
    await store.apply_batch([alias("al", "anon:a1", "u1")])
    view = await store.get_candidate("acme", "u1", T0 + 60)
    assert view is not None
    # when the notifier loads them
    notified = NotifiedStore(redis_client, prefix=redis_prefix, tiers=STORE_RULES.tier_names)
    loaded = await notified.load(["acme:u1", "acme:anon:a1"])
    # then it has u1's sequence, raw at its reference time and tier, nothing of the merged id
    state = view.state
    assert loaded.stored == {"acme:u1": Stored(state.sequence, state.raw, T0 + 60, state.tier)}
