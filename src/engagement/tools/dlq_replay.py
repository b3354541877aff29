"""``engagement dlq replay``: send dead-lettered records back where they came from, once fixed.

A record is quarantined when it failed for a reason that is no outage (a bug, or data no code
foresaw); once the cause is fixed (a release, a repaired key), replaying it scores it as if it had
never failed: every step downstream is idempotent per messageId and sequence, so a record that
was in fact applied before it failed changes nothing the second time.

* ``--topic interactions``: rows the scorer wrote to ``engagement.interactions.dlq.v1`` go back
  to ``engagement.interactions.v1`` with their original key (by default ``processing_error``
  rows only; ``--failure-type`` picks others). Ingest's own rows hold the client's event, not a
  record: resend those through ``POST /v1/batch`` (docs/operations.md §4).
* ``--topic scores``: the notifier's rows of ``engagement.scores.dlq.v1`` go back to
  ``engagement.scores.changed.v1``.
* ``--topic webhooks``: rows of ``engagement.model.webhooks.dlq.v1`` are delivered again: each is
  enqueued as a new delivery of the same webhook id (receivers dedupe by ``webhook-id``).

Rows whose payload was cut (``payloadTruncated``) are skipped: their whole record is at
``origin`` until the source topic's retention. The DLQ is read from its start to its end when the
command starts; ``--since``/``--until`` select rows by when they were dead-lettered.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from engagement.kafka.admin import read_partitions
from engagement.kafka.topics import Topics
from engagement.settings import CommonSettings

Kind = Literal["interactions", "scores", "webhooks"]
PROCESSORS = {"interactions": "engagement-scorer", "scores": "engagement-notifier"}


@dataclass(frozen=True)
class Filters:
    """Which rows to replay (None: any)."""

    failure_types: frozenset[str] | None = frozenset({"processing_error"})
    tenant: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Replay:
    """One record to send again: to ``topic`` (a Kafka record) or, for a webhook, to deliver."""

    key: bytes | None
    value: bytes
    topic: str = ""
    endpoint: str = ""
    webhook_id: str = ""
    delivery_id: str = ""


def plan(row: Any, kind: Kind, topics: Topics, filters: Filters) -> Replay | str:
    """What replaying one DLQ row does, or why it is skipped."""
    if not isinstance(row, dict):
        return "not a DLQ row"
    if kind == "webhooks":
        return _plan_webhook(row, filters)
    if row.get("processor") != PROCESSORS[kind]:
        return f"written by {row.get('processor')}: resend it through the API"
    if filters.failure_types is not None and row.get("failureType") not in filters.failure_types:
        return f"failureType {row.get('failureType')}"
    if not _selected(row.get("tenantId"), row.get("receivedAt"), filters):
        return "outside --tenant / --since / --until"
    if row.get("payloadTruncated"):
        return "payload truncated: replay its origin record"
    origin = row.get("origin") or {}
    key = origin.get("key")
    target = topics.interactions if kind == "interactions" else topics.scores_changed
    payload = row.get("payload")
    if not isinstance(payload, str):
        return "no payload"
    return Replay(None if key is None else str(key).encode(), payload.encode(), topic=target)


def _plan_webhook(row: dict[str, Any], filters: Filters) -> Replay | str:
    payload = row.get("payload")
    tenant = payload.get("data", {}).get("tenantId") if isinstance(payload, dict) else None
    if not _selected(tenant, row.get("failedAt"), filters):
        return "outside --tenant / --since / --until"
    if not (isinstance(payload, dict) and row.get("endpoint") and row.get("webhookId")):
        return "no payload, endpoint or webhook id"
    key = f"{tenant}:{payload.get('data', {}).get('candidateId')}".encode()
    return Replay(
        key,
        orjson.dumps(payload),
        endpoint=str(row["endpoint"]),
        webhook_id=str(row["webhookId"]),
        delivery_id=str(row.get("deliveryId") or row["webhookId"]),
    )


def _selected(tenant: Any, when: Any, filters: Filters) -> bool:
    if filters.tenant is not None and tenant != filters.tenant:
        return False
    if filters.since is None and filters.until is None:
        return True
    try:
        at = instant(str(when))
    except ValueError:
        return False
    return (filters.since is None or at >= filters.since) and (
        filters.until is None or at < filters.until
    )


async def read_all(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``topic`` from its start to its end as it is now, decoded (None: not JSON)."""
    tps = [TopicPartition(topic, p) for p in await read_partitions(bootstrap, topic)]
    if not tps:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        rows: list[Any] = []
        waiting = {tp for tp in tps if ends[tp] > 0}
        while waiting:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                rows.extend(_decode(r.value) for r in records)
            waiting = {tp for tp in waiting if await consumer.position(tp) < ends[tp]}
        return rows
    finally:
        await consumer.stop()


def _decode(value: bytes | None) -> Any:
    try:
        return orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None


async def replay(
    settings: CommonSettings, kind: Kind, filters: Filters, *, dry_run: bool = False
) -> Counter[str]:
    """Replay the selected rows of a DLQ; how many were replayed, and skipped by reason."""
    topics = settings.topics
    dlq = {
        "interactions": topics.interactions_dlq,
        "scores": topics.scores_dlq,
        "webhooks": topics.webhooks_dlq,
    }[kind]
    planned = [
        plan(row, kind, topics, filters) for row in await read_all(_bootstrap(settings), dlq)
    ]
    replays = [p for p in planned if isinstance(p, Replay)]
    outcome = Counter(f"skipped: {p}" for p in planned if isinstance(p, str))
    if not dry_run and replays:
        if kind == "webhooks":
            await _deliver_again(settings, replays)
        else:
            await _produce(_bootstrap(settings), replays)
    outcome["would replay" if dry_run else "replayed"] += len(replays)
    return outcome


def _bootstrap(settings: CommonSettings) -> str:
    return settings.kafka_bootstrap_servers


async def _produce(bootstrap: str, replays: Iterable[Replay]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for r in replays:  # in order: a candidate's records stay in the order they failed
            await producer.send_and_wait(r.topic, r.value, key=r.key)
    finally:
        await producer.stop()


async def _deliver_again(settings: CommonSettings, replays: Iterable[Replay]) -> None:
    from engagement.store.connection import connect
    from services.notifier.delivery_queue import DeliveryQueue

    redis = connect(settings.redis_url, cluster=settings.redis_cluster)
    try:
        queue = DeliveryQueue(redis, prefix=settings.redis_key_prefix, retention_s=7 * 86400)
        now_ms = int(time.time() * 1000)
        for r in replays:
            await queue.enqueue(
                delivery_id=f"{r.delivery_id}-replay-{now_ms}",
                endpoint_id=r.endpoint,
                msg_id=r.webhook_id,
                record_key=(r.key or b"").decode(),
                body=r.value,
                now_ms=now_ms,
            )
    finally:
        await redis.aclose()


def instant(text: str) -> datetime:
    """An ISO 8601 time; UTC when it names no offset."""
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def run(argv: Sequence[str]) -> int:
    """``engagement dlq replay --topic interactions|scores|webhooks [filters] [--dry-run]``."""
    parser = argparse.ArgumentParser(prog="engagement dlq", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("replay", help="send dead-lettered records back where they came from")
    p.add_argument("--topic", choices=["interactions", "scores", "webhooks"], required=True)
    p.add_argument(
        "--failure-type",
        action="append",
        help="replay rows of this failureType (repeatable; default processing_error; 'any')",
    )
    p.add_argument("--tenant", help="only this tenant's rows")
    p.add_argument("--since", type=instant, help="dead-lettered at or after (ISO 8601; UTC)")
    p.add_argument("--until", type=instant, help="dead-lettered before (ISO 8601; UTC)")
    p.add_argument("--dry-run", action="store_true", help="count what would be replayed")
    args = parser.parse_args(list(argv))
    types = args.failure_type or ["processing_error"]
    filters = Filters(
        None if "any" in types else frozenset(types), args.tenant, args.since, args.until
    )
    outcome = asyncio.run(replay(CommonSettings(), args.topic, filters, dry_run=args.dry_run))
    for what, count in sorted(outcome.items()):
        print(f"{count:8d}  {what}")
    return 0
