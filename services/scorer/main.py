"""``engagement scorer``: create the topics, then run one Faust worker until stopped."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Sequence

from engagement.kafka_admin import ensure_topics
from services.scorer.app import build_app
from services.scorer.settings import ScorerSettings


def new_event_loop() -> asyncio.AbstractEventLoop:
    """Return a uvloop loop when uvloop is installed, else asyncio's default loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed with uvicorn[standard]
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(argv: Sequence[str] | None = None) -> int:
    """Run the scorer worker (blocks; exits on SIGTERM/SIGINT after a warm shutdown)."""
    parser = argparse.ArgumentParser(prog="engagement scorer", description=__doc__)
    parser.add_argument("--web-port", type=int, help="override SCORER_WEB_PORT")
    args = parser.parse_args(list(argv or []))
    overrides = {"scorer_web_port": args.web_port} if args.web_port is not None else {}
    settings = ScorerSettings(**overrides)
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    topics = settings.topics
    loop.run_until_complete(
        ensure_topics(
            settings.kafka_bootstrap_servers,
            topics,
            partitions=settings.kafka_topic_partitions,
            replication_factor=settings.kafka_replication_factor,
        )
    )
    app = build_app(settings)
    from faust.worker import Worker

    worker = Worker(
        app,
        loop=loop,
        loglevel=logging.getLevelName(logging.getLevelName(settings.log_level.upper())),
        redirect_stdouts=False,
        override_logging=True,
    )
    # the terminal spinner sets the root logger to DEBUG when LOG_LEVEL >= WARNING, so every
    # debug call in Faust and aiokafka builds a record (a tenth of the hot path)
    worker.spinner = None
    worker.execute_from_commandline()  # exits the process (SystemExit) when the worker stops
    return 0
