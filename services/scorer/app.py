"""Composition root of the scorer: settings → Redis, ScoreStore, Faust app, agent and web views."""

from __future__ import annotations

import time
from typing import Any

import faust
import redis.asyncio as aioredis
from faust import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from engagement.redis_store import ScoreStore
from engagement.rules import load_rules
from services.faust_fetch_wait import use_fetch_max_wait
from services.scorer.handler import BatchHandler
from services.scorer.metrics import ScorerMetrics
from services.scorer.parsing import RawRecord
from services.scorer.publishing import OutRecord
from services.scorer.settings import ScorerSettings


def broker_urls(bootstrap_servers: str) -> str:
    """Return Faust's broker URL list (``kafka://a;kafka://b``) for a Kafka bootstrap string."""
    hosts = [h.strip() for h in bootstrap_servers.split(",") if h.strip()]
    return ";".join(f"kafka://{h}" for h in hosts)


def faust_app(settings: ScorerSettings) -> faust.App:
    """Return the configured (empty) Faust app: no tables, web for ops endpoints only."""
    settings.scorer_data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.group_id,
        broker=broker_urls(settings.kafka_bootstrap_servers),
        store="memory://",
        datadir=str(settings.scorer_data_dir / settings.group_id),
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset=settings.scorer_auto_offset_reset,
        broker_commit_interval=settings.scorer_commit_interval,
        broker_commit_every=2000,
        broker_max_poll_records=max(500, settings.scorer_batch_size),
        broker_session_timeout=settings.scorer_session_timeout,
        broker_heartbeat_interval=settings.scorer_heartbeat_interval,
        broker_rebalance_timeout=settings.scorer_rebalance_timeout,
        broker_request_timeout=max(
            settings.scorer_request_timeout, settings.scorer_session_timeout
        ),
        stream_buffer_maxsize=8192,
        stream_wait_empty=True,
        stream_processing_timeout=60.0,
        producer_acks=-1,
        producer_linger=0.005,
        topic_disable_leader=True,
        topic_partitions=settings.kafka_topic_partitions,
        topic_replication_factor=settings.kafka_replication_factor,
        table_standby_replicas=0,
        web_enabled=True,
        web_port=settings.scorer_web_port,
        web_bind=settings.scorer_web_host,
        web_router_enabled=False,
        web_tables_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
    )
    use_fetch_max_wait(app, settings.scorer_fetch_max_wait_ms)
    return app


def build_app(settings: ScorerSettings) -> faust.App:
    """Return the scorer app with its agent and /metrics, /healthz, /readyz views."""
    app = faust_app(settings)
    topics = settings.topics
    source = _raw_topic(app, topics.interactions)
    sinks = {
        name: _raw_topic(app, name)
        for name in (topics.interactions_dlq, topics.scores_changed, topics.scores_latest)
    }
    redis = aioredis.Redis.from_url(settings.redis_url, socket_timeout=10, health_check_interval=10)
    store = ScoreStore(
        redis, prefix=settings.redis_key_prefix, rules=load_rules(settings.rules_file)
    )
    metrics = ScorerMetrics()

    async def send(out: OutRecord) -> Any:
        # straight to the producer (Topic.send adds a channel hop and a FutureMessage per record)
        return await app.producer.send(out.topic, out.key, out.value, None, None, out.headers)

    async def send_and_wait(out: OutRecord) -> Any:
        sent = await sinks[out.topic].send(key=out.key, value=out.value, headers=out.headers)
        return await sent

    handler = BatchHandler(
        store=store,
        send=send,
        send_and_wait=send_and_wait,
        metrics=metrics,
        dlq_topic=topics.interactions_dlq,
        changes_topic=topics.scores_changed,
        latest_topic=topics.scores_latest,
        retry_max=settings.scorer_redis_retry_max,
    )

    @app.agent(source, concurrency=1)
    async def score(stream: faust.StreamT[bytes]) -> None:
        async for events in stream.take_events(  # type: ignore[attr-defined]
            settings.scorer_batch_size, within=settings.scorer_batch_within
        ):
            await handler.handle([_raw(event) for event in events])

    _add_views(
        app,
        settings=settings,
        handler=handler,
        store=store,
        redis=redis,
        source=topics.interactions,
    )
    return app


def _raw_topic(app: faust.App, name: str) -> faust.TopicT:
    """A topic of raw bytes: the scorer parses values itself (decode errors go to the DLQ)."""
    return app.topic(
        name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


def _raw(event: faust.EventT[bytes]) -> RawRecord:
    message = event.message
    return RawRecord(message.key, message.value, message.topic, message.partition, message.offset)


def _add_views(
    app: faust.App,
    *,
    settings: ScorerSettings,
    handler: BatchHandler,
    store: ScoreStore,
    redis: aioredis.Redis,
    source: str,
) -> None:
    metrics = handler.metrics

    @app.page("/metrics")
    async def metrics_view(self: web.View, request: web.Request) -> web.Response:
        await _refresh_gauges(app, handler=handler, store=store, source=source)
        body = generate_latest(metrics.registry)
        return self.bytes(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/healthz")
    async def healthz(self: web.View, request: web.Request) -> web.Response:
        stuck = handler.stuck_for()
        ok = stuck < settings.scorer_ready_after
        return self.json(
            {"status": "ok" if ok else "stuck", "failingFor": round(stuck, 3)},
            status=200 if ok else 503,
        )

    @app.page("/readyz")
    async def readyz(self: web.View, request: web.Request) -> web.Response:
        checks = {
            "redis": await _redis_ok(redis),
            "assigned": bool(_assignment(app)),
            "processing": handler.stuck_for() == 0.0,
        }
        ok = all(checks.values())
        return self.json(
            {"status": "ready" if ok else "not ready", "checks": checks}, status=200 if ok else 503
        )


async def _redis_ok(redis: aioredis.Redis) -> bool:
    try:
        return bool(await redis.ping())
    except Exception:
        return False


def _assignment(app: faust.App) -> set[Any]:
    try:
        return set(app.consumer.assignment())
    except Exception:
        return set()


async def _refresh_gauges(
    app: faust.App, *, handler: BatchHandler, store: ScoreStore, source: str
) -> None:
    """Compute consumer lag and the candidates-per-tier snapshot right before a scrape."""
    metrics = handler.metrics
    try:
        tps = [tp for tp in _assignment(app) if tp.topic == source]
        highwaters = await app.consumer.highwaters(*tps) if tps else {}
        metrics.consumer_lag.clear()
        for tp, high in highwaters.items():
            position = handler.positions.get(
                tp.partition,
                app.consumer._committed_offset.get(tp) or 0,  # type: ignore[attr-defined]
            )
            metrics.consumer_lag.labels(str(tp.partition)).set(max(0, high - position))
    except Exception:  # a scrape never fails because the consumer is rebalancing
        pass
    try:
        now = time.time()
        tenants = await store.tenants()
        metrics.candidates.counts = {t: await store.tier_counts(t, now) for t in tenants}
    except Exception:  # Redis down: the scrape still answers, with the lag and counters
        pass
