"""Alerts out: each on the alerts topic (CloudEvents headers), then one webhook delivery per
endpoint that wants it, queued in Redis (``services.notifier.delivery_queue``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from engagement.kafka.cloudevents import binary_headers, ce_type
from engagement.model.records import Alert
from engagement.model.webhooks import WebhookConfig, alert_data, payload
from services.notifier.delivery_queue import Delivery, DeliveryQueue
from services.notifier.metrics import NotifierMetrics

Send = Callable[[bytes, bytes, list[tuple[str, bytes]]], Awaitable[Any]]
CE_SOURCE = "/engagement/notifier"


def alert_headers(alert: Alert) -> list[tuple[str, bytes]]:
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

    async def publish(self, alerts: Sequence[Alert]) -> None:
        """Put every alert on the alerts topic, then enqueue one delivery per target endpoint
        (up to 200 a round trip)."""
        bodies = [payload(alert) for alert in alerts]
        acks = [
            await self.send(_key(a), orjson.dumps(alert_data(a)), alert_headers(a)) for a in alerts
        ]
        await asyncio.gather(*acks)
        deliveries = [
            Delivery(f"{alert.id}-{endpoint.id}", endpoint.id, alert.id, _key(alert).decode(), body)
            for alert, body in zip(alerts, bodies, strict=True)
            for endpoint in self.webhooks.targets(alert)
        ]
        await self.queue.enqueue_many(deliveries, now_ms=int(time.time() * 1000))
        if self.wake is not None:
            self.wake.set()

    def count(self, alerts: Sequence[Alert]) -> None:
        """Count published alerts by tenant, type and tier."""
        for alert in alerts:
            self.metrics.alerts.labels(alert.tenantId, alert.type, alert.tier).inc()


def _key(alert: Alert) -> bytes:
    return f"{alert.tenantId}:{alert.candidateId}".encode()
