"""``engagement ingest``: run the ingest service with uvicorn (settings from the environment)."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings


def run(argv: list[str]) -> int:
    """Serve the ingest API until interrupted; returns the exit code."""
    settings = IngestSettings()
    parser = argparse.ArgumentParser(prog="engagement ingest", description=__doc__)
    parser.add_argument("--host", default=settings.ingest_host, help="interface to bind")
    parser.add_argument("--port", type=int, default=settings.ingest_port, help="TCP port")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
    )
    return 0
