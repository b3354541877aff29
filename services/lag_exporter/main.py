"""``engagement lag-exporter``: serve the scorer's and notifier's consumer lag, read from the
broker, on /metrics (and /livez, /readyz) until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from engagement.kafka import client_logs
from services.lag_exporter.broker import BrokerOffsets
from services.lag_exporter.exporter import LagExporter
from services.lag_exporter.settings import LagExporterSettings

log = logging.getLogger(__name__)


def build_app(exporter: LagExporter) -> web.Application:
    """Return the HTTP app: /metrics reads the broker, /livez answers, /readyz reads it too."""

    async def metrics(_request: web.Request) -> web.Response:
        body = await exporter.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def livez(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        ok = await exporter.refresh()
        return web.json_response(
            {"status": "ready" if ok else "broker not answering"}, status=200 if ok else 503
        )

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    return app


async def serve(settings: LagExporterSettings, *, started: asyncio.Event | None = None) -> None:
    """Serve until cancelled or signalled."""
    source = BrokerOffsets(
        settings.kafka_bootstrap_servers, timeout=settings.lag_exporter_timeout_seconds
    )
    runner = web.AppRunner(build_app(LagExporter(source, settings.watched())))
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.lag_exporter_host, settings.lag_exporter_port).start()
        log.info(
            "lag exporter on http://%s:%d/metrics watching %s",
            settings.lag_exporter_host,
            settings.lag_exporter_port,
            ", ".join(f"{g.group} on {g.topic}" for g in settings.watched()),
        )
        if started is not None:
            started.set()
        await _until_signalled()
    finally:
        await runner.cleanup()
        await source.close()


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the exporter (blocks until SIGTERM/SIGINT)."""
    argparse.ArgumentParser(prog="engagement lag-exporter", description=__doc__).parse_args(argv)
    settings = LagExporterSettings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    client_logs.install()  # the Kafka client's retry lines while a broker is away, once a streak
    asyncio.run(serve(settings))
    return 0
