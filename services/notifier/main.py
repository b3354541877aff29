"""``engagement notifier``: create the topics, then run one Faust notifier worker until stopped."""

from __future__ import annotations

from collections.abc import Sequence

from engagement.faust.run import run_worker
from services.notifier.app import build_app
from services.notifier.settings import NotifierSettings


def run(argv: Sequence[str] | None = None) -> int:
    """Run the notifier worker (blocks; exits on SIGTERM/SIGINT after a warm shutdown)."""
    return run_worker(
        argv, settings_type=NotifierSettings, build_app=build_app, description=__doc__
    )
