"""``engagement dev``: the whole pipeline locally (composition root of the dev stack).

engagement dev [--no-demo] [--http-port 8080] [--kafka-port 9092] [--rate 20]
               [--duration SECONDS] [--headless] [--receiver-port PORT] [--broker tansu|kafka]
engagement dev demo --url http://ingest:8080 [--rate 20]      (demo traffic only)
engagement dev receiver [--host 0.0.0.0] [--port 9000]         (webhook receiver only)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Sequence

from engagement.model.webhooks import load_webhooks
from engagement.tools.devstack import demo as demo_module
from engagement.tools.devstack import receiver as receiver_module
from engagement.tools.devstack.settings import DevSettings
from engagement.tools.devstack.supervisor import View, serve
from engagement.tools.devstack.view import HeadlessView, LiveView


def run(argv: Sequence[str]) -> int:
    """Run `engagement dev` (or its `demo` / `receiver` parts); returns the exit code."""
    argv = list(argv)
    settings = DevSettings()
    if argv[:1] == ["demo"]:
        return _run_demo(argv[1:], settings)
    if argv[:1] == ["receiver"]:
        return _run_receiver(argv[1:], settings)
    args = _parser(settings).parse_args(argv)
    view: View = (
        HeadlessView(status_interval=settings.dev_status_interval) if args.headless else LiveView()
    )
    try:
        return asyncio.run(serve(args, settings, view))
    finally:
        view.close()


def _parser(settings: DevSettings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="engagement dev",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--no-demo", action="store_true", help="no demo traffic")
    parser.add_argument(
        "--http-port", type=int, default=8080, help="ingest HTTP port (default 8080)"
    )
    parser.add_argument("--kafka-port", type=int, default=9092, help="Kafka port (default 9092)")
    parser.add_argument(
        "--broker",
        choices=("tansu", "kafka"),
        default="tansu",
        help="tansu (default, in memory) or kafka: Apache Kafka, fetched once with Maven",
    )
    parser.add_argument(
        "--rate", type=float, default=settings.demo_rate, help="demo events per second"
    )
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument(
        "--headless", action="store_true", help="plain lines instead of the live view"
    )
    parser.add_argument(
        "--receiver-port", type=int, help="webhook receiver port (default: from webhooks.toml)"
    )
    return parser


def _run_demo(argv: list[str], settings: DevSettings) -> int:
    parser = argparse.ArgumentParser(prog="engagement dev demo", description="demo traffic only")
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="ingest base URL")
    parser.add_argument("--rate", type=float, default=settings.demo_rate, help="events per second")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    args = parser.parse_args(argv)
    _sigterm_interrupts()
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(
            demo_module.run_standalone(
                base_url=args.url,
                write_key=settings.demo_write_key.get_secret_value(),
                rate=args.rate,
                duration=args.duration,
            )
        )
    return 0


def _run_receiver(argv: list[str], settings: DevSettings) -> int:
    parser = argparse.ArgumentParser(
        prog="engagement dev receiver", description="webhook receiver only"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args(argv)
    secret = settings.webhook_receiver_secret
    if secret is None:
        secret = load_webhooks(settings.config_dir / "webhooks.toml").endpoints[0].secret
    _sigterm_interrupts()
    return receiver_module.run_standalone(
        host=args.host, port=args.port, secret=secret.get_secret_value()
    )


def _sigterm_interrupts() -> None:
    """Make SIGTERM behave like Ctrl-C (containers send SIGTERM to PID 1, which ignores it)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
