"""``engagement rebuild finish``: carry every candidate's sequence, and the notifier's state,
over from the store a rebuild replaces, before the services switch over to it.

A rebuild (docs/operations.md §3) replays the interactions topic into a new key prefix with the
scorer in rebuild mode (``SCORER_REBUILD``: Redis only, nothing published). Its sequences count
what it scored, which under other rules, or with history past the topic's retention, can stay
below the sequences the replaced store published — and consumers drop a record whose sequence is
not past the last one they saw. So once the live scorers are stopped, ``carry_sequences`` raises
each rebuilt candidate's sequence (profile and rank entry) to at least the replaced store's: the
first record after the switch is past every earlier one; a candidate the rebuild does not have
gets a profile holding only its sequence (no candidate for reads). The notifier's state (the tier it
announced per candidate, its sweep watermark and its webhook deliveries: ``KeyLayout``) is
copied where the rebuilt prefix has none, so no alert goes out twice, and so are the erasure
fences where the rebuilt prefix has none of an id or one of an earlier request
(``erasure_fence.copy_fences``: events in flight of an id erased before the switch stay
withheld). Idempotent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from engagement.model.rules import load_rules
from engagement.settings import CommonSettings
from engagement.store.connection import connect
from engagement.store.redis_store import ScoreStore
from engagement.store.sequence_carry import CarryReport, carry_sequences

__all__ = ["CarryReport", "carry_sequences", "run"]
SHOWN = 20  # candidates only in the replaced store named in the report


def run(argv: Sequence[str]) -> int:
    """Exit code 0 once carried, 2 for bad arguments."""
    parser = argparse.ArgumentParser(
        prog="engagement rebuild",
        description="Finish a rebuild into a new REDIS_KEY_PREFIX (docs/operations.md §3).",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    finish = sub.add_parser(
        "finish",
        help="carry each candidate's sequence over from the replaced prefix (scorers stopped)",
        description="Run with the rebuilt store's REDIS_URL and REDIS_KEY_PREFIX, once every "
        "scorer is stopped and before they start on the rebuilt prefix.",
    )
    finish.add_argument(
        "--from-prefix", required=True, help="REDIS_KEY_PREFIX of the store the rebuild replaces"
    )
    finish.add_argument(
        "--rules",
        type=Path,
        default=Path(os.environ.get("RULES_FILE", "config/rules.toml")),
        help="the rebuild's score template (default: $RULES_FILE, else config/rules.toml)",
    )
    args = parser.parse_args(list(argv))
    settings = CommonSettings()
    if args.from_prefix == settings.redis_key_prefix:
        parser.error(f"--from-prefix is REDIS_KEY_PREFIX itself ({settings.redis_key_prefix!r})")
    report = asyncio.run(_finish(settings, args.from_prefix, args.rules))
    into = settings.redis_key_prefix
    print(
        f"carried sequences from {args.from_prefix!r} into {into!r}: {report.seen} candidates,"
        f" {report.raised} raised, {len(report.missing)} not rebuilt;"
        f" {report.notifier_keys} notifier keys and {report.fences} erasure fences copied"
    )
    if report.missing:
        shown = ", ".join(report.missing[:SHOWN])
        more = f" and {len(report.missing) - SHOWN} more" if len(report.missing) > SHOWN else ""
        print(
            f"not in {into!r} (no event of theirs left on the topic, or erased there): {shown}{more}",
            file=sys.stderr,
        )
    return 0


async def _finish(settings: CommonSettings, replaced_prefix: str, rules_file: Path) -> CarryReport:
    redis = connect(settings.redis_url, cluster=settings.redis_cluster, socket_timeout=30)
    try:
        store = ScoreStore(redis, prefix=settings.redis_key_prefix, rules=load_rules(rules_file))
        return await carry_sequences(store, replaced_prefix)
    finally:
        await redis.aclose()
