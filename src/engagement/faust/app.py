"""The Faust app of a worker: no tables, at-least-once, web server for the ops views only."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import faust
from faust.types import EventT, Message

from engagement.faust.monitor import QuietMonitor
from engagement.faust.settings import WorkerSettings
from engagement.faust.streams import FastStream
from engagement.faust.transport import use_fast_transport


def broker_urls(bootstrap_servers: str) -> str:
    """Return Faust's broker URL list (``kafka://a;kafka://b``) for a Kafka bootstrap string."""
    hosts = [h.strip() for h in bootstrap_servers.split(",") if h.strip()]
    return ";".join(f"kafka://{h}" for h in hosts)


def faust_app(settings: WorkerSettings, **options: Any) -> faust.App:
    """Return the configured (empty) Faust app; ``options`` add to or override Faust settings."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=broker_urls(settings.kafka_bootstrap_servers),
        store="memory://",
        datadir=str(settings.data_dir / settings.app_id),
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset=settings.auto_offset_reset,
        broker_commit_interval=settings.commit_interval,
        broker_commit_every=2000,
        broker_max_poll_records=max(500, settings.batch_size),
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=settings.heartbeat_interval,
        broker_rebalance_timeout=settings.rebalance_timeout,
        broker_request_timeout=max(settings.request_timeout, settings.session_timeout),
        stream_wait_empty=True,
        stream_processing_timeout=60.0,
        producer_acks=-1,
        producer_linger=0.005,
        topic_partitions=settings.kafka_topic_partitions,
        topic_replication_factor=settings.kafka_replication_factor,
        table_standby_replicas=0,
        web_enabled=True,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_router_enabled=False,
        web_tables_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        Monitor=QuietMonitor,
        Stream=FastStream,
        **options,
    )
    use_fast_transport(
        app, settings.fetch_max_wait_ms, idempotence=settings.kafka_enable_idempotence
    )
    return app


class RawSchema(faust.Schema):  # type: ignore[type-arg]
    """Keys and values as the bytes on the wire, without Faust's codec lookups per record.

    Its compiled ``decode`` (what a topic turns a consumed message into an event with) makes the
    event straight away: the loads below cannot fail, so Faust's error handling around them has
    nothing to do. It carries that event factory as ``decode.make_event``, which the consumer's
    inline delivery (``engagement.faust.inline_delivery``) calls without the coroutine."""

    def loads_key(self, app: faust.types.AppT, message: Message, **_: Any) -> Any:
        return message.key

    def loads_value(self, app: faust.types.AppT, message: Message, **_: Any) -> Any:
        return message.value

    def compile(self, app: faust.types.AppT, **kwargs: Any) -> Any:
        if (
            type(self).loads_key is not RawSchema.loads_key
            or type(self).loads_value is not RawSchema.loads_value
        ):
            return super().compile(app, **kwargs)
        make_event = event_factory(app)

        async def decode(message: Message, *, propagate: bool = False) -> EventT[Any]:
            return make_event(message.key, message.value, message.headers, message)

        decode.make_event = make_event  # type: ignore[attr-defined]
        return decode


def event_factory(app: faust.types.AppT) -> Callable[[Any, Any, Any, Message], EventT[Any]]:
    """``app.create_event``, without its settings lookup per event when the app's is Faust's."""
    if type(app).create_event is not faust.App.create_event:
        return app.create_event
    event_type: Any = app.conf.Event  # an EventT subclass (typed as the generic's alias)
    return functools.partial(event_type, app)


def raw_topic(app: faust.App, name: str) -> faust.TopicT:
    """A topic of raw bytes: the worker parses and serialises values itself."""
    schema = RawSchema(
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    return app.topic(name, schema=schema)
