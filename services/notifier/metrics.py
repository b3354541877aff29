"""Prometheus metrics of the notifier; one registry per app so tests and benches can build several."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from engagement.faust.web import LATENCY_BUCKETS
from engagement.model.records import AlertType, JobAlertType
from services.notifier.delivery_queue import Backlog

ALERT_TYPES: tuple[AlertType | JobAlertType, ...] = get_args(AlertType) + get_args(JobAlertType)
DELIVERY_OUTCOMES = ("delivered", "retry", "dlq", "gone", "refused", "disabled", "quarantined")
RETRY_STAGES = ("changes", "dlq", "sweep", "deliveries")
BAD_RECORD_TYPES = ("schema_violation", "processing_error")


@dataclass
class NotifierMetrics:
    """The notifier's instruments, registered in their own registry."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.alerts = Counter(
            "engagement_alerts",
            "Alerts published, by tenant, type and new tier.",
            ["tenant", "type", "tier"],
            registry=r,
        )
        self.deliveries = Counter(
            "engagement_webhook_deliveries",
            "Webhook attempts by endpoint and outcome (delivered, retry, dlq, gone, refused, "
            "disabled, quarantined).",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.webhook_seconds = Histogram(
            "engagement_webhook_seconds",
            "Seconds per webhook HTTP attempt.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.pending = Gauge(
            "engagement_webhook_pending",
            "Webhook deliveries waiting in Redis (due, scheduled for retry, or in flight).",
            registry=r,
        )
        self.overdue = Gauge(
            "engagement_webhook_overdue_seconds",
            "Age of the webhook backlog: seconds the longest-waiting due delivery is past its due "
            "time (0 when none is due; one scheduled for a later retry is not due yet).",
            registry=r,
        )
        self.endpoint_pending = Gauge(
            "engagement_webhook_endpoint_pending",
            "Webhook deliveries waiting for one endpoint (due, scheduled for retry, or in flight).",
            ["endpoint"],
            registry=r,
        )
        self.endpoint_oldest = Gauge(
            "engagement_webhook_endpoint_oldest_seconds",
            "Age of the oldest webhook delivery waiting for one endpoint: seconds since its alert "
            "queued it (0 when none waits).",
            ["endpoint"],
            registry=r,
        )
        self.sweep_seconds = Histogram(
            "engagement_notifier_sweep_seconds",
            "Seconds per decay sweep.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.alert_latency = Histogram(
            "engagement_notifier_alert_latency_seconds",
            "Seconds from the score record's Kafka timestamp to the alert published.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.bad_records = Counter(
            "engagement_notifier_bad_records",
            "Score records set aside to the scores DLQ, by failureType (schema_violation: "
            "unparseable; processing_error: failed for a reason that is no outage, after retries).",
            ["failure_type"],
            registry=r,
        )
        self.retries = Counter(
            "engagement_notifier_batch_retries",
            "Failed batch / sweep / delivery-loop attempts (retried in place).",
            ["stage"],
            registry=r,
        )

    def initialise(self, *, endpoint_ids: Iterable[str]) -> None:
        """Create the labelled series alerts watch at 0 (each endpoint's outcomes, each retried
        stage), so ``increase()`` sees the first event after a start (a first webhook DLQ)."""
        for endpoint_id in endpoint_ids:
            for outcome in DELIVERY_OUTCOMES:
                self.deliveries.labels(endpoint_id, outcome)
            self.endpoint_pending.labels(endpoint_id)
            self.endpoint_oldest.labels(endpoint_id)
        for stage in RETRY_STAGES:
            self.retries.labels(stage)
        for failure_type in BAD_RECORD_TYPES:
            self.bad_records.labels(failure_type)

    def show_backlog(self, backlog: Backlog, now_ms: int) -> None:
        """Set the pending-deliveries gauges from the queue's backlog, read at ``now_ms``."""
        self.pending.set(backlog.pending)
        self.overdue.set(_seconds_since(backlog.oldest_due_ms, now_ms))
        for endpoint_id, share in backlog.endpoints.items():
            self.endpoint_pending.labels(endpoint_id).set(share.pending)
            self.endpoint_oldest.labels(endpoint_id).set(
                _seconds_since(share.oldest_created_ms, now_ms)
            )

    def initialise_alerts(self, *, tenants: Iterable[str], tiers: Iterable[str]) -> None:
        """Create each tenant's alert series at 0 (every type and tier), so ``increase()`` sees a
        tenant's first alert; tenants are known only from Redis, so this runs at each scrape."""
        tier_names = tuple(tiers)
        for tenant in tenants:
            for alert_type in ALERT_TYPES:
                for tier in tier_names:
                    self.alerts.labels(tenant, alert_type, tier)


def _seconds_since(epoch_ms: int | None, now_ms: int) -> float:
    return 0.0 if epoch_ms is None else max(0.0, (now_ms - epoch_ms) / 1000)
