"""``engagement ingest``: run the ingest service with uvicorn (settings from the environment)."""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from engagement.kafka import client_logs
from services.ingest.app import create_app
from services.ingest.metrics import MULTIPROC_ENV
from services.ingest.settings import IngestSettings

GC_GEN0_THRESHOLD = 10_000


def run(argv: list[str]) -> int:
    """Serve the ingest API until interrupted; returns the exit code."""
    settings = IngestSettings()
    args = _arguments(settings).parse_args(argv)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    client_logs.install()  # the Kafka client's retry lines while a broker is away, once a streak
    # Several processes need an import string: each worker builds its own app from the same
    # environment (one composition root per process).
    app: FastAPI | str = f"{__name__}:app_from_env"
    if args.workers == 1:
        app = create_app(settings)
        tune_gc()
    with _shared_metrics(args.workers):
        _serve(app, args, settings.log_level)
    return 0


def _serve(app: FastAPI | str, args: argparse.Namespace, log_level: str) -> None:
    uvicorn.run(
        app,
        factory=args.workers > 1,
        workers=args.workers,
        host=args.host,
        port=args.port,
        log_level=log_level.lower(),
        proxy_headers=True,
    )


@contextlib.contextmanager
def _shared_metrics(workers: int) -> Iterator[None]:
    """With several processes, make them record metrics into one directory that each one's
    ``/metrics`` sums (prometheus_client's multiprocess mode; the workers are spawned, so they
    read the variable when they import prometheus_client). An operator's directory is kept."""
    if workers == 1 or os.environ.get(MULTIPROC_ENV):
        yield
        return
    path = tempfile.mkdtemp(prefix="engagement-ingest-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield
    finally:
        del os.environ[MULTIPROC_ENV]
        shutil.rmtree(path, ignore_errors=True)


def _arguments(settings: IngestSettings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="engagement ingest", description=__doc__)
    parser.add_argument("--host", default=settings.ingest_host, help="interface to bind")
    parser.add_argument("--port", type=int, default=settings.ingest_port, help="TCP port")
    parser.add_argument(
        "--workers",
        type=int,
        default=settings.ingest_workers,
        help="server processes sharing the port, each with its own producer (INGEST_WORKERS)",
    )
    return parser


def app_from_env() -> FastAPI:
    """Return the app configured from the environment (the factory each worker process calls)."""
    app = create_app(IngestSettings())
    tune_gc()
    return app


def tune_gc() -> None:
    """Keep the cycle collector off the hot path (call once the app is built).

    Each ingested event allocates dozens of short-lived containers that reference counting frees;
    with the default threshold (700) the collector rescans every in-flight batch thousands of
    times a second (~20% of the CPU in `bench/ingest.py`). Startup objects are frozen so full
    collections skip them.
    """
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
