"""Run a worker from the command line: create the topics, then one Faust worker until stopped."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

import faust

from engagement.faust.lifecycle import stopping
from engagement.faust.settings import WorkerSettings
from engagement.kafka import client_logs
from engagement.kafka.admin import ensure_topics

S = TypeVar("S", bound=WorkerSettings)

# Garbage collection tuned for a streaming worker. A batch holds tens of thousands of young
# objects at once; with CPython's default thresholds (700, 10, 10) each batch ran several young
# collections and, every few seconds, a full one over the whole heap (Faust, aiokafka, pydantic:
# hundreds of thousands of objects): 1.3 s of CPU in collections over 90,000 scored events, 14 µs
# an event. With a young threshold above a batch's live objects and the objects alive at startup
# frozen (never scanned again), it was 0.1 s. Cycles are still collected: a full collection of
# what was allocated after startup runs about every 10 million allocations.
GC_THRESHOLDS = (50_000, 20, 10)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """Return a uvloop loop when uvloop is installed, else asyncio's default loop (the Kafka
    consumer's thread gets one too: ``transport.FetchWaitConsumerThread``)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed with uvicorn[standard]
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_worker(
    argv: Sequence[str] | None,
    *,
    settings_type: type[S],
    build_app: Callable[[S], faust.App],
    description: str | None,
) -> int:
    """Run the worker (blocks; exits on SIGTERM/SIGINT after a warm shutdown)."""
    service = settings_type.service
    parser = argparse.ArgumentParser(prog=f"engagement {service}", description=description)
    parser.add_argument("--web-port", type=int, help=f"override {service.upper()}_WEB_PORT")
    args = parser.parse_args(list(argv or []))
    overrides = {f"{service}_web_port": args.web_port} if args.web_port is not None else {}
    settings = settings_type(**overrides)
    gc.set_threshold(*GC_THRESHOLDS)
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(_ensure_topics(settings))
    _start(build_app(settings), loop=loop, log_level=settings.log_level)
    return 0


async def _ensure_topics(settings: WorkerSettings) -> None:
    await ensure_topics(
        settings.kafka_bootstrap_servers,
        settings.topics,
        partitions=settings.kafka_topic_partitions,
        replication_factor=settings.kafka_replication_factor,
    )


def _start(app: faust.App, *, loop: asyncio.AbstractEventLoop, log_level: str) -> None:
    from faust.worker import Worker

    class TunedWorker(Worker):
        async def on_startup_finished(self) -> None:
            await super().on_startup_finished()
            freeze_startup_objects()

        async def on_stop(self) -> None:
            stopping(app)  # before Faust waits for the batches in hand
            await super().on_stop()

        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            client_logs.install(logger.handlers)  # the Kafka client's retry lines, once a streak

    worker = TunedWorker(
        app,
        loop=loop,
        loglevel=logging.getLevelName(logging.getLevelName(log_level.upper())),
        redirect_stdouts=False,
        override_logging=True,
    )
    # the terminal spinner sets the root logger to DEBUG when LOG_LEVEL >= WARNING, so every
    # debug call in Faust and aiokafka builds a record (a tenth of the hot path)
    worker.spinner = None
    worker.execute_from_commandline()  # exits the process (SystemExit) when the worker stops


def freeze_startup_objects() -> None:
    """Move every object alive now (modules, the app, its services) out of the collector's
    reach: later full collections scan only what was allocated since (see ``GC_THRESHOLDS``)."""
    gc.collect()
    gc.freeze()
