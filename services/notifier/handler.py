"""Score-change batches → alerts: gather state, decide (pure), publish, enqueue webhooks, store state.

Order matters for at-least-once: alerts are on the broker and webhook deliveries in Redis before
the announced tier is stored, so a crash in between only re-publishes the same alert ids.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError

from engagement.alerts import Notified, fold_changes, tier_level
from engagement.cloudevents import binary_headers, ce_type
from engagement.records import CandidateAlert, ScoreChange
from engagement.rules import Rules
from engagement.webhooks import WebhookConfig, alert_data, payload
from services.notifier.deliveries import DeliveryQueue
from services.notifier.metrics import NotifierMetrics
from services.notifier.state import NotifiedStore

log = logging.getLogger(__name__)

T = TypeVar("T")
Send = Callable[[bytes, bytes, list[tuple[str, bytes]]], Awaitable[Any]]
CE_SOURCE = "/engagement/notifier"


@dataclass(frozen=True)
class ScoreRecord:
    """One consumed score record: its bytes and the broker timestamp (ms)."""

    value: bytes
    timestamp_ms: int | None


def alert_headers(alert: CandidateAlert) -> list[tuple[str, bytes]]:
    """Return the CloudEvents headers of an alert record."""
    return binary_headers(
        event_id=alert.id,
        source=CE_SOURCE,
        type_=ce_type(alert.type),
        time=alert.time,
        subject=f"{alert.tenantId}:{alert.candidateId}",
    )


@dataclass
class AlertPublisher:
    """Publishes alerts to Kafka and schedules their webhooks (idempotent per alert id)."""

    send: Send  # enqueues in order and returns a future of the broker's ack
    queue: DeliveryQueue
    webhooks: WebhookConfig
    metrics: NotifierMetrics
    wake: asyncio.Event | None = None  # set after enqueueing, so the delivery task sends now

    async def publish(self, alerts: list[CandidateAlert]) -> None:
        """Put every alert on the alerts topic, then enqueue one delivery per target endpoint."""
        bodies = [payload(alert) for alert in alerts]
        acks = [
            await self.send(_key(a), orjson.dumps(alert_data(a)), alert_headers(a)) for a in alerts
        ]
        await asyncio.gather(*acks)
        now_ms = int(time.time() * 1000)
        for alert, body in zip(alerts, bodies, strict=True):
            for endpoint in self.webhooks.targets(alert):
                await self.queue.enqueue(
                    delivery_id=f"{alert.id}-{endpoint.id}",
                    endpoint_id=endpoint.id,
                    msg_id=alert.id,
                    record_key=_key(alert).decode(),
                    body=body,
                    now_ms=now_ms,
                )
        if self.wake is not None:
            self.wake.set()

    def count(self, alerts: list[CandidateAlert]) -> None:
        """Count published alerts by tenant, type and tier."""
        for alert in alerts:
            self.metrics.alerts.labels(alert.tenantId, alert.type, alert.tier).inc()


def _key(alert: CandidateAlert) -> bytes:
    return f"{alert.tenantId}:{alert.candidateId}".encode()


async def retrying(
    stage: str, call: Callable[[], Awaitable[T]], *, metrics: NotifierMetrics, retry_max: float
) -> T:
    """Run ``call`` until it succeeds, backing off; errors are logged, never raised."""
    delay = 0.1
    while True:
        try:
            return await call()
        except asyncio.CancelledError:
            raise
        except Exception:
            metrics.retries.labels(stage).inc()
            log.exception("%s failed; retrying in %.1fs", stage, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, retry_max)


@dataclass
class ChangeHandler:
    """Handles one batch of score records; ``handle`` never raises (Faust would drop the batch)."""

    rules: Rules
    state: NotifiedStore
    publisher: AlertPublisher
    metrics: NotifierMetrics
    retry_max: float = 5.0
    last_ok: float = field(default_factory=time.monotonic)

    async def handle(self, records: list[ScoreRecord]) -> None:
        """Decide and publish the batch's crossings; retried in place until it succeeds."""
        parsed = [(c, r.timestamp_ms) for r in records if (c := self._parse(r)) is not None]
        changes = [c for c, _ in parsed]
        if changes:
            alerts = await retrying(
                "changes",
                lambda: self._apply(changes),
                metrics=self.metrics,
                retry_max=self.retry_max,
            )
            self._observe_latency(
                alerts, {(c.tenantId, c.candidateId, c.sequence): ts for c, ts in parsed}
            )
        self.last_ok = time.monotonic()

    async def _apply(self, changes: list[ScoreChange]) -> list[CandidateAlert]:
        known = await self.state.load(f"{c.tenantId}:{c.candidateId}" for c in changes)
        alerts, final = fold_changes(changes, known, self.rules, datetime.now(UTC))
        if alerts:
            await self.publisher.publish(alerts)
        writes: dict[str, tuple[Notified, int] | None] = {
            key: None if s is None else (s, tier_level(self.rules, s.tier))
            for key, s in final.items()
        }
        if writes:
            await self.state.store(writes, mode="change")
        self.publisher.count(alerts)
        return alerts

    def _parse(self, record: ScoreRecord) -> ScoreChange | None:
        try:
            return ScoreChange.model_validate_json(record.value)
        except (ValidationError, ValueError):
            self.metrics.bad_records.inc()
            log.error("skipping an unparseable score record: %r", record.value[:200])
            return None

    def _observe_latency(
        self, alerts: list[CandidateAlert], produced_ms: dict[tuple[str, str, int], int | None]
    ) -> None:
        now_ms = time.time() * 1000
        for alert in alerts:
            ts = produced_ms.get((alert.tenantId, alert.candidateId, alert.sequence))
            if ts is not None:
                self.metrics.alert_latency.observe(max(0.0, (now_ms - ts) / 1000))
