"""Composition root of the scorer: settings → Redis, ScoreStore, Faust app, agent and web views."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import faust

from engagement.faust.app import faust_app, raw_topic
from engagement.faust.lifecycle import on_stop
from engagement.faust.outages import is_outage
from engagement.faust.poison import describe
from engagement.faust.streams import handle_batches
from engagement.faust.web import add_ops_views, assignment
from engagement.kafka.rules_topic import TemplateFollower
from engagement.kafka.score_records import OutRecord
from engagement.model.rules import load_rules
from engagement.model.templates import Templates
from engagement.store.connection import RedisClient, answers, connect
from engagement.store.rebuild_requests import RebuildRequests
from engagement.store.redis_keys import KeyLayout
from engagement.store.redis_store import ScoreStore
from engagement.store.templated_store import TemplatedStore
from services.scorer.expiry import expire_idle
from services.scorer.handler import QUARANTINED, BatchHandler
from services.scorer.metrics import OUTCOMES, ScorerMetrics
from services.scorer.parsing import RawRecord
from services.scorer.rebuild_runner import RebuildRunner
from services.scorer.record_batches import produce_all, produce_and_wait
from services.scorer.settings import ScorerSettings
from services.scorer.tenant_rebuild import Rebuild, at_marker

log = logging.getLogger("engagement.scorer")


def build_app(settings: ScorerSettings) -> faust.App:
    """Return the scorer app with its agent and /metrics, /healthz, /readyz views."""
    # no leader election: nothing runs on_leader
    app = faust_app(
        settings,
        stream_buffer_maxsize=8192,
        topic_disable_leader=True,
        # one producer batch per partition holds a whole batch's score records (~0.5 KiB each);
        # aiokafka keeps one open batch per partition, so a full one waits for a broker round trip
        producer_max_batch_size=512 * 1024,
    )
    topics = settings.topics
    source = raw_topic(app, topics.interactions)
    redis = connect(
        settings.redis_url,
        cluster=settings.redis_cluster,
        socket_timeout=10,
        health_check_interval=10,
    )
    templates = Templates(load_rules(settings.rules_file))  # RULES_FILE: the default
    store = TemplatedStore(
        redis,
        prefix=settings.redis_key_prefix,
        templates=templates,
        log_hash_key=settings.log_hash_key_bytes(),
        jobs_kept=settings.scorer_jobs_per_candidate,
    )
    follower = TemplateFollower(
        templates,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topics=topics,
        replication_factor=settings.kafka_replication_factor,
    )
    metrics = ScorerMetrics()

    async def send_all(records: Sequence[OutRecord]) -> None:
        # straight to aiokafka, one record batch per partition (no future per record)
        await produce_all(app.producer._ensure_producer(), records)  # type: ignore[attr-defined]

    async def send_acked(records: Sequence[OutRecord]) -> None:
        await produce_and_wait(app.producer._ensure_producer(), records)  # type: ignore[attr-defined]

    handler = BatchHandler(
        store=store,
        send_all=send_all,
        send_acked=send_acked,
        metrics=metrics,
        dlq_topic=topics.interactions_dlq,
        changes_topic=topics.scores_changed,
        latest_topic=topics.scores_latest,
        interactions_topic=topics.interactions,
        retry_max=settings.redis_retry_max,
        poison_retries=settings.poison_retries,
        publish=not settings.scorer_rebuild,
        log_hash_key=settings.log_hash_key_bytes(),
        handover=None if settings.scorer_rebuild else at_marker(templates, redis, store.keys),
    )

    on_stop(app, handler.stop)

    if settings.scorer_anonymous_retention_days > 0 and not settings.scorer_rebuild:

        @app.timer(settings.scorer_expiry_interval)  # type: ignore[untyped-decorator]
        async def expire() -> None:
            await _expire_once(store, send_acked, settings)

    @app.task  # type: ignore[untyped-decorator]
    async def follow_rules() -> None:
        try:
            await follower.follow()
        finally:
            await follower.close()

    if not settings.scorer_rebuild:
        runner = _rebuild_runner(settings, store=store, templates=templates)

        @app.task  # type: ignore[untyped-decorator]
        async def serve_rebuilds() -> None:  # POST /v1/rules/rebuild
            await follower.caught_up.wait()
            await runner.serve()

    async def handle(events: Sequence[faust.EventT[bytes]]) -> None:
        await follower.caught_up.wait()  # no event is scored under a template not read yet
        await handler.handle([_raw(event) for event in events])

    @app.agent(source, concurrency=1)
    async def score(stream: faust.StreamT[bytes]) -> None:
        await handle_batches(stream, handle, max_=settings.batch_size, within=settings.batch_within)

    _add_views(
        app,
        settings=settings,
        handler=handler,
        store=store,
        redis=redis,
        source=topics.interactions,
    )
    return app


def _rebuild_runner(
    settings: ScorerSettings, *, store: TemplatedStore, templates: Templates
) -> RebuildRunner:
    """The runner of the tenants' rebuilds requested through the API, on this scorer's store."""
    rebuild = Rebuild(
        redis=store.redis,
        base=store,
        templates=templates,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topics=settings.topics,
        live_group=settings.app_id,
        store_options={"jobs_kept": settings.scorer_jobs_per_candidate},
    )
    requests = RebuildRequests(store.redis, KeyLayout(settings.redis_key_prefix))
    return RebuildRunner(requests=requests, rebuild=rebuild, templates=templates)


async def _expire_once(
    store: ScoreStore,
    send_acked: Callable[[Sequence[OutRecord]], Awaitable[None]],
    settings: ScorerSettings,
) -> None:
    """One look for idle anonymous candidates; an outage or a bug waits for the next tick."""
    try:
        await expire_idle(
            store,
            send_acked,
            interactions_topic=settings.topics.interactions,
            retention_seconds=settings.scorer_anonymous_retention_days * 86400,
            now=datetime.now(UTC),
        )
    except Exception as exc:
        log.warning(
            "expiry of idle anonymous candidates failed (%s); the next tick retries",
            describe(exc),
            exc_info=not is_outage(exc),
            extra={"event": "scorer.expiry_failed"},
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
    redis: RedisClient,
    source: str,
) -> None:
    def health() -> tuple[dict[str, Any], bool]:
        stuck = handler.stuck_for()
        ok = stuck < settings.scorer_ready_after
        return {"status": "ok" if ok else "stuck", "failingFor": round(stuck, 3)}, ok

    add_ops_views(
        app,
        registry=handler.metrics.registry,
        dependencies={"redis": lambda: answers(redis)},
        before_scrape=lambda: _refresh_gauges(app, handler=handler, store=store, source=source),
        health=health,
        ready_checks=lambda: {"processing": handler.stuck_for() == 0.0},
    )


async def _refresh_gauges(
    app: faust.App, *, handler: BatchHandler, store: ScoreStore, source: str
) -> None:
    """Compute consumer lag and the candidates-per-tier snapshot right before a scrape."""
    metrics = handler.metrics
    try:
        tps = [tp for tp in assignment(app) if tp.topic == source]
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
        for tenant in tenants:  # at 0 before their first event, so increase() sees that one
            for outcome in OUTCOMES:
                metrics.events.labels(tenant, outcome)
            metrics.quarantined.labels(tenant, QUARANTINED)
    except Exception:  # Redis down: the scrape still answers, with the lag and counters
        pass
