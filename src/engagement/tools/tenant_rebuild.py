"""``engagement rebuild --tenant T``: rescore one tenant's retained history under its newest
template version (possibly ``pending``: another half-life) while every scorer goes on, and move
the tenant over to it at one cut of the interactions topic (docs/operations.md §3.2).

The rebuild itself, its steps and its invariants, is ``services.scorer.tenant_rebuild``: the
scorers run the same code for ``POST /v1/rules/rebuild``. This command runs it from outside, with
the live services' settings; it does not take the tenant's request lock, so do not run it while
a rebuild the API started is ``running`` (each attempt has its own generation either way, and
only one activation of a generation can go out).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

from engagement.model.rules import load_rules
from engagement.model.templates import Templates
from engagement.settings import CommonSettings
from engagement.store.connection import connect
from engagement.store.redis_store import ScoreStore
from engagement.store.sequence_carry import CarryReport
from engagement.tools import rebuild
from services.scorer.tenant_rebuild import Rebuild, follow_templates

__all__ = ["Rebuild", "follow_templates", "run"]


def run(argv: Sequence[str]) -> int:
    """``engagement rebuild --tenant T`` (this module), else ``engagement rebuild finish``."""
    args = list(argv)
    if not any(a == "--tenant" or a.startswith("--tenant=") for a in args):
        return rebuild.run(args)
    parser = argparse.ArgumentParser(
        prog="engagement rebuild",
        description="Rescore one tenant's history under its newest template version and move it "
        "over while the scorers run (docs/operations.md §3.2).",
    )
    parser.add_argument("--tenant", required=True, help="the tenant to rebuild")
    parser.add_argument(
        "--rules",
        type=Path,
        default=Path(os.environ.get("RULES_FILE", "config/rules.toml")),
        help="the default template (default: $RULES_FILE, else config/rules.toml)",
    )
    parser.add_argument(
        "--scorer-group",
        default=os.environ.get("SCORER_GROUP_ID", ""),
        help="the live scorers' consumer group (default: $SCORER_GROUP_ID, else the scorer's)",
    )
    parsed = parser.parse_args(args)
    settings = CommonSettings()
    group = parsed.scorer_group or f"{settings.kafka_topic_prefix}engagement-scorer"
    report = asyncio.run(_run(settings, parsed.tenant, parsed.rules, group))
    print(
        f"rebuilt tenant {parsed.tenant!r}: {report.seen} candidates carried over,"
        f" {report.raised} raised, {len(report.missing)} not rebuilt"
    )
    return 0


async def _run(settings: CommonSettings, tenant: str, rules_file: Path, group: str) -> CarryReport:
    redis = connect(settings.redis_url, cluster=settings.redis_cluster, socket_timeout=30)
    rules = load_rules(rules_file)
    follower = await follow_templates(
        Templates(rules), settings.kafka_bootstrap_servers, settings.topics
    )
    try:
        return await Rebuild(
            redis=redis,
            base=ScoreStore(redis, prefix=settings.redis_key_prefix, rules=rules),
            templates=follower.templates,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topics=settings.topics,
            live_group=group,
        ).run(tenant)
    finally:
        await follower.close()
        await redis.aclose()
