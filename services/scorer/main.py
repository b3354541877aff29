"""``engagement scorer``: create the topics, then run one Faust worker until stopped."""

from __future__ import annotations

from collections.abc import Sequence

from engagement.faust.run import run_worker
from services.scorer.app import build_app
from services.scorer.settings import ScorerSettings


def run(argv: Sequence[str] | None = None) -> int:
    """Run the scorer worker (blocks; exits on SIGTERM/SIGINT after a warm shutdown)."""
    return run_worker(argv, settings_type=ScorerSettings, build_app=build_app, description=__doc__)
