"""The notifier's scrape reports the webhook backlog's age from the delivery queue in Redis."""

from __future__ import annotations

import time

from services.notifier.app import _refresh_pending
from services.notifier.delivery_queue import DeliveryQueue
from services.notifier.metrics import NotifierMetrics

HOUR_MS = 3_600_000


def _gauge(metrics: NotifierMetrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None
    return value


async def test_backlog_age_is_how_long_the_oldest_due_delivery_has_waited(
    redis_client, redis_prefix
):
    # given two deliveries due, the older one due an hour ago
    queue = DeliveryQueue(redis_client, prefix=redis_prefix, retention_s=60)
    now_ms = int(time.time() * 1000)
    for n, due_ms in enumerate((now_ms - HOUR_MS, now_ms - 1000)):
        await queue.enqueue(
            delivery_id=f"d{n}",
            endpoint_id="ats",
            msg_id=f"m{n}",
            record_key="t:c",
            body=b"{}",
            now_ms=due_ms,
        )
    metrics = NotifierMetrics()
    # when scraped
    await _refresh_pending(queue, metrics, ["ats"])
    # then the backlog's age is the older one's wait (an hour and the moments since), both pending
    assert _gauge(metrics, "engagement_webhook_overdue_seconds") >= 3600
    assert _gauge(metrics, "engagement_webhook_overdue_seconds") < 2 * 3600
    assert _gauge(metrics, "engagement_webhook_pending") == 2


async def test_an_empty_queue_has_no_backlog_age(redis_client, redis_prefix):
    queue = DeliveryQueue(redis_client, prefix=redis_prefix, retention_s=60)
    metrics = NotifierMetrics()
    await _refresh_pending(queue, metrics, ["ats"])
    assert _gauge(metrics, "engagement_webhook_overdue_seconds") == 0
    assert _gauge(metrics, "engagement_webhook_pending") == 0


def test_labelled_notifier_counters_exist_at_zero_for_every_endpoint_and_stage():
    # given a notifier's metrics initialised with its webhook endpoints
    metrics = NotifierMetrics()
    metrics.initialise(endpoint_ids=["ats", "crm"])
    # then the first DLQ of either endpoint is an increase from 0, and so is a first retry
    for endpoint in ("ats", "crm"):
        labels = {"endpoint": endpoint, "outcome": "dlq"}
        assert metrics.registry.get_sample_value("engagement_webhook_deliveries_total", labels) == 0
    for stage in ("changes", "sweep", "deliveries"):
        labels = {"stage": stage}
        assert (
            metrics.registry.get_sample_value("engagement_notifier_batch_retries_total", labels)
            == 0
        )


async def test_a_known_tenants_alert_series_exist_at_zero_after_a_scrape(
    redis_client, redis_prefix
):
    # given a tenant the store knows (its tenants set) and no alert published yet
    from services.notifier.app import _refresh_gauges

    tenants_key = f"{redis_prefix}tenants"
    await redis_client.sadd(tenants_key, "acme")
    queue = DeliveryQueue(redis_client, prefix=redis_prefix, retention_s=60)
    metrics = NotifierMetrics()
    # when scraped
    await _refresh_gauges(
        queue,
        metrics,
        redis_client,
        endpoint_ids=[],
        tenants_key=tenants_key,
        tiers=["cold", "hot"],
    )
    # then each alert type and tier of the tenant is a series at 0: its first alert is an increase
    for alert_type in ("candidate.hot", "candidate.cooled", "candidate.tier_changed"):
        for tier in ("cold", "hot"):
            labels = {"tenant": "acme", "type": alert_type, "tier": tier}
            assert metrics.registry.get_sample_value("engagement_alerts_total", labels) == 0
