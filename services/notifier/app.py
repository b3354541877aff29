"""Composition root of the notifier: settings → Redis, stores, Faust app, agent, timers, web views."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import faust

from engagement.faust.app import faust_app, raw_topic
from engagement.faust.lifecycle import on_stop
from engagement.faust.poison import Streak, describe
from engagement.faust.streams import handle_batches
from engagement.faust.web import add_ops_views
from engagement.kafka.cloudevents import binary_headers, ce_type
from engagement.kafka.rules_topic import TemplateFollower
from engagement.model.job_alerts import job_rules
from engagement.model.rules import load_rules
from engagement.model.templates import Templates
from engagement.model.webhooks import load_webhooks
from engagement.store.connection import RedisClient, answers, connect
from engagement.store.redis_keys import KeyLayout
from engagement.store.templated_store import tenant_layouts
from services.notifier.attempts import Deliverer
from services.notifier.delivery_queue import DeliveryQueue
from services.notifier.egress import Egress
from services.notifier.handler import ChangeHandler, ScoreRecord
from services.notifier.job_state import JobNotifiedStore
from services.notifier.job_sweep import JobSweep
from services.notifier.lanes import Lanes
from services.notifier.metrics import NotifierMetrics
from services.notifier.publisher import CE_SOURCE, AlertPublisher
from services.notifier.settings import NotifierSettings
from services.notifier.state import NotifiedStore
from services.notifier.sweep import DecaySweep

log = logging.getLogger(__name__)
logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per webhook attempt is noise


def build_app(settings: NotifierSettings) -> faust.App:
    """Return the notifier app: score-change agent, decay-sweep timer, delivery task, ops views."""
    app = faust_app(settings)  # leader election stays on: the decay sweep runs on the leader
    topics = settings.topics
    source = raw_topic(app, topics.scores_changed)
    alerts_topic = raw_topic(app, topics.candidate_alerts)
    dlq_topic = raw_topic(app, topics.webhooks_dlq)
    scores_dlq_topic = raw_topic(app, topics.scores_dlq)
    redis = connect(
        settings.redis_url,
        cluster=settings.redis_cluster,
        socket_timeout=10,
        health_check_interval=10,
    )
    rules = load_rules(settings.rules_file)
    templates = Templates(rules)  # RULES_FILE for tenants without a template of their own
    follower = TemplateFollower(
        templates,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topics=topics,
        replication_factor=settings.kafka_replication_factor,
    )
    layouts = tenant_layouts(settings.redis_key_prefix, templates)  # a rebuilt tenant's keys
    webhooks = load_webhooks(settings.webhooks_file)
    metrics = NotifierMetrics()
    metrics.initialise(endpoint_ids=[endpoint.id for endpoint in webhooks.endpoints])
    state = NotifiedStore(
        redis,
        prefix=settings.redis_key_prefix,
        tiers=rules.tier_names,
        tiers_of=lambda tenant: templates.rules_for(tenant).tier_names,
        layout_for=layouts,
    )
    job_state = JobNotifiedStore(
        redis,
        prefix=settings.redis_key_prefix,
        tiers_of=lambda tenant: job_rules(templates.rules_for(tenant)).tier_names,
        layout_for=layouts,
    )
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

    async def dead_letter(key: bytes, value: bytes) -> None:
        await (await scores_dlq_topic.send(key=key or None, value=value))

    handler = ChangeHandler(
        rules=rules,
        rules_for=templates.rules_for,
        state=state,
        publisher=publisher,
        metrics=metrics,
        dead_letter=dead_letter,
        retry_max=settings.redis_retry_max,
        poison_retries=settings.poison_retries,
        jobs=job_state,
    )
    on_stop(app, handler.stop)
    sweeper = DecaySweep(
        redis=redis,
        layout=KeyLayout(settings.redis_key_prefix),
        rules=rules,
        rules_for=templates.rules_for,
        state=state,
        publisher=publisher,
        interval=settings.notifier_sweep_interval,
        jobs=JobSweep(redis, KeyLayout(settings.redis_key_prefix), job_state, publisher, layouts),
        layout_for=layouts,
    )
    egress = Egress(timeout=settings.webhook_timeout)
    deliverer = Deliverer(
        queue=queue,
        config=webhooks,
        policy=settings.retry_policy,
        egress=egress,
        publish_dlq=send_dlq,
        metrics=metrics,
        lease_s=settings.claim_lease,
        concurrency=settings.webhook_concurrency,
        poison_retries=settings.poison_retries,
        retry_max=min(1.0, settings.redis_retry_max),
    )
    lanes = Lanes(
        deliverer, poll=settings.webhook_poll_interval, retry_max=min(1.0, settings.redis_retry_max)
    )

    @app.task  # type: ignore[untyped-decorator]
    async def follow_rules() -> None:
        try:
            await follower.follow()
        finally:
            await follower.close()

    async def handle(events: Sequence[faust.EventT[bytes]]) -> None:
        await follower.caught_up.wait()  # no change is decided under a template not read yet
        await handler.handle([_record(event) for event in events])

    @app.agent(source, concurrency=1)
    async def notify(stream: faust.StreamT[bytes]) -> None:
        await handle_batches(stream, handle, max_=settings.batch_size, within=settings.batch_within)

    sweep_streak = Streak()

    @app.timer(settings.notifier_sweep_interval, on_leader=True)  # type: ignore[untyped-decorator]
    async def decay_sweep() -> None:
        if follower.caught_up.is_set():
            await _sweep_once(sweeper, metrics, sweep_streak)

    @app.task  # type: ignore[untyped-decorator]
    async def deliver() -> None:
        try:
            await lanes.run(wake)
        finally:
            await egress.aclose()

    add_ops_views(
        app,
        registry=metrics.registry,
        dependencies={"redis": lambda: answers(redis)},
        before_scrape=lambda: _refresh_gauges(
            queue,
            metrics,
            redis,
            endpoint_ids=sorted(lanes.lanes) or [e.id for e in webhooks.endpoints],
            tenants_key=KeyLayout(settings.redis_key_prefix).tenants,
            tiers=[tier.name for tier in rules.tiers],
        ),
    )
    return app


def _record(event: faust.EventT[bytes]) -> ScoreRecord:
    message = event.message
    return ScoreRecord(
        message.value or b"",
        int(message.timestamp * 1000) if message.timestamp else None,
        message.key,
        message.topic,
        message.partition,
        message.offset,
    )


async def _sweep_once(sweeper: DecaySweep, metrics: NotifierMetrics, streak: Streak) -> None:
    """One sweep; a failure is logged (its traceback once a streak) and the next tick retries
    from the same watermark."""
    started = time.perf_counter()
    try:
        done = await sweeper.run()
    except Exception as exc:
        metrics.retries.labels("sweep").inc()
        log.warning(
            "decay sweep failed (%s); the next tick retries from the same watermark",
            describe(exc),
            exc_info=streak.traceback_of(exc),
            extra={"event": "notifier.sweep_retry", "error": describe(exc)},
        )
        return
    streak.ended()
    if done is not None:
        metrics.sweep_seconds.observe(time.perf_counter() - started)


async def _refresh_gauges(
    queue: DeliveryQueue,
    metrics: NotifierMetrics,
    redis: RedisClient,
    *,
    endpoint_ids: list[str],
    tenants_key: str,
    tiers: list[str],
) -> None:
    """Right before a scrape: the pending-deliveries gauges, and the known tenants' alert series."""
    await _refresh_pending(queue, metrics, endpoint_ids)
    with contextlib.suppress(Exception):  # Redis down: the scrape still answers
        tenants = [
            t.decode() if isinstance(t, bytes) else t for t in await redis.smembers(tenants_key)
        ]
        metrics.initialise_alerts(tenants=tenants, tiers=tiers)


async def _refresh_pending(
    queue: DeliveryQueue, metrics: NotifierMetrics, endpoint_ids: list[str]
) -> None:
    """Set the pending-deliveries gauges, in all and per endpoint, right before a scrape (left as
    they are while Redis is down)."""
    with contextlib.suppress(Exception):
        metrics.show_backlog(await queue.backlog(endpoint_ids), int(time.time() * 1000))
