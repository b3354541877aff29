"""Composition root of the notifier: settings → Redis, stores, Faust app, agent, timers, web views."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

import faust
import httpx
import redis.asyncio as aioredis
from faust import web
from prometheus_client import generate_latest

from engagement.cloudevents import binary_headers, ce_type
from engagement.redis_keys import KeyLayout
from engagement.rules import load_rules
from engagement.webhooks import load_webhooks
from services.faust_fetch_wait import use_fetch_max_wait
from services.notifier.deliveries import DeliveryQueue
from services.notifier.delivery import Deliverer
from services.notifier.handler import CE_SOURCE, AlertPublisher, ChangeHandler, ScoreRecord
from services.notifier.metrics import NotifierMetrics
from services.notifier.settings import NotifierSettings
from services.notifier.state import NotifiedStore
from services.notifier.sweep import DecaySweep

log = logging.getLogger(__name__)
logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per webhook attempt is noise
PROMETHEUS_TEXT = "text/plain; version=0.0.4"  # aiohttp refuses a charset in content_type
RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


def broker_urls(bootstrap_servers: str) -> str:
    """Return Faust's broker URL list (``kafka://a;kafka://b``) for a Kafka bootstrap string."""
    hosts = [h.strip() for h in bootstrap_servers.split(",") if h.strip()]
    return ";".join(f"kafka://{h}" for h in hosts)


def faust_app(settings: NotifierSettings) -> faust.App:
    """Return the configured (empty) Faust app: no tables, leader election on for the sweep."""
    settings.notifier_data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.group_id,
        broker=broker_urls(settings.kafka_bootstrap_servers),
        store="memory://",
        datadir=str(settings.notifier_data_dir / settings.group_id),
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset=settings.notifier_auto_offset_reset,
        broker_commit_interval=settings.notifier_commit_interval,
        broker_commit_every=2000,
        broker_max_poll_records=max(500, settings.notifier_batch_size),
        broker_session_timeout=settings.notifier_session_timeout,
        broker_heartbeat_interval=settings.notifier_heartbeat_interval,
        broker_rebalance_timeout=settings.notifier_rebalance_timeout,
        broker_request_timeout=max(
            settings.notifier_request_timeout, settings.notifier_session_timeout
        ),
        stream_wait_empty=True,
        stream_processing_timeout=60.0,
        producer_acks=-1,
        producer_linger=0.005,
        topic_partitions=settings.kafka_topic_partitions,
        topic_replication_factor=settings.kafka_replication_factor,
        table_standby_replicas=0,
        web_enabled=True,
        web_port=settings.notifier_web_port,
        web_bind=settings.notifier_web_host,
        web_router_enabled=False,
        web_tables_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
    )
    use_fetch_max_wait(app, settings.notifier_fetch_max_wait_ms)
    return app


def build_app(settings: NotifierSettings) -> faust.App:
    """Return the notifier app: score-change agent, decay-sweep timer, delivery task, ops views."""
    app = faust_app(settings)
    topics = settings.topics
    source = app.topic(topics.scores_changed, **RAW)
    alerts_topic = app.topic(topics.candidate_alerts, **RAW)
    dlq_topic = app.topic(topics.webhooks_dlq, **RAW)
    redis = aioredis.Redis.from_url(settings.redis_url, socket_timeout=10, health_check_interval=10)
    rules = load_rules(settings.rules_file)
    webhooks = load_webhooks(settings.webhooks_file)
    metrics = NotifierMetrics()
    state = NotifiedStore(redis, prefix=settings.redis_key_prefix)
    queue = DeliveryQueue(
        redis, prefix=settings.redis_key_prefix, retention_s=int(settings.webhook_retention)
    )
    wake = asyncio.Event()

    async def send_alert(key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> Any:
        return await alerts_topic.send(key=key, value=value, headers=headers)  # queued, in order

    async def send_dlq(key: bytes, value: bytes) -> None:
        headers = binary_headers(
            event_id=f"dlq-{time.time_ns()}",
            source=CE_SOURCE,
            type_=ce_type("webhook.failed"),
            time=datetime.now(UTC),
            subject=key.decode(),
        )
        await (await dlq_topic.send(key=key, value=value, headers=headers))

    publisher = AlertPublisher(
        send=send_alert, queue=queue, webhooks=webhooks, metrics=metrics, wake=wake
    )
    handler = ChangeHandler(
        rules=rules,
        state=state,
        publisher=publisher,
        metrics=metrics,
        retry_max=settings.notifier_redis_retry_max,
    )
    sweeper = DecaySweep(
        redis=redis,
        layout=KeyLayout(settings.redis_key_prefix),
        rules=rules,
        state=state,
        publisher=publisher,
        interval=settings.notifier_sweep_interval,
    )
    http = httpx.AsyncClient(timeout=settings.webhook_timeout, follow_redirects=False)
    deliverer = Deliverer(
        queue=queue,
        config=webhooks,
        policy=settings.retry_policy,
        http=http,
        publish_dlq=send_dlq,
        metrics=metrics,
        lease_s=settings.claim_lease,
        batch=settings.webhook_concurrency,
    )

    @app.agent(source, concurrency=1)
    async def notify(stream: faust.StreamT[bytes]) -> None:
        async for events in stream.take_events(
            settings.notifier_batch_size, within=settings.notifier_batch_within
        ):
            await handler.handle([_record(event) for event in events])

    @app.timer(settings.notifier_sweep_interval, on_leader=True)
    async def decay_sweep() -> None:
        await _sweep_once(sweeper, metrics)

    @app.task
    async def deliver() -> None:
        try:
            await _delivery_loop(deliverer, queue, metrics, wake, settings.webhook_poll_interval)
        finally:
            await http.aclose()

    _add_views(app, handler=handler, redis=redis, metrics=metrics, queue=queue)
    return app


def _record(event: faust.EventT) -> ScoreRecord:
    message = event.message
    return ScoreRecord(
        message.value or b"", int(message.timestamp * 1000) if message.timestamp else None
    )


async def _sweep_once(sweeper: DecaySweep, metrics: NotifierMetrics) -> None:
    """One sweep; a failure is logged and the next tick retries from the same watermark."""
    started = time.perf_counter()
    try:
        done = await sweeper.run()
    except Exception:
        metrics.retries.labels("sweep").inc()
        log.exception("decay sweep failed; the next tick retries from the same watermark")
        return
    if done is not None:
        metrics.sweep_seconds.observe(time.perf_counter() - started)


async def _delivery_loop(
    deliverer: Deliverer,
    queue: DeliveryQueue,
    metrics: NotifierMetrics,
    wake: asyncio.Event,
    poll: float,
) -> None:
    """Drain due deliveries forever; woken early when this worker enqueues one."""
    while True:
        wake.clear()
        try:
            await deliverer.drain()
            metrics.pending.set(await queue.pending())
        except Exception:
            metrics.retries.labels("deliveries").inc()
            log.exception("webhook delivery loop failed; retrying")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), poll)


def _add_views(
    app: faust.App,
    *,
    handler: ChangeHandler,
    redis: aioredis.Redis,
    metrics: NotifierMetrics,
    queue: DeliveryQueue,
) -> None:
    @app.page("/metrics")
    async def metrics_view(self: web.View, request: web.Request) -> web.Response:
        with contextlib.suppress(Exception):
            metrics.pending.set(await queue.pending())
        return self.bytes(generate_latest(metrics.registry), content_type=PROMETHEUS_TEXT)

    @app.page("/healthz")
    async def healthz(self: web.View, request: web.Request) -> web.Response:
        return self.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(self: web.View, request: web.Request) -> web.Response:
        checks = {"redis": await _redis_ok(redis), "assigned": _assigned(app)}
        ok = all(checks.values())
        body = {"status": "ready" if ok else "not ready", "checks": checks}
        return self.json(body, status=200 if ok else 503)


async def _redis_ok(redis: aioredis.Redis) -> bool:
    try:
        return bool(await redis.ping())
    except Exception:
        return False


def _assigned(app: faust.App) -> bool:
    try:
        return bool(app.consumer.assignment())
    except Exception:
        return False
