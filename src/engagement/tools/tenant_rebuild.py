"""``engagement rebuild --tenant T``: rescore one tenant's retained history under its newest
template version (possibly ``pending``: another half-life) while every scorer goes on, and move
the tenant over to it at one cut of the interactions topic (docs/operations.md §3.2).

The rebuild itself, its steps and its invariants, is ``services.scorer.tenant_rebuild``; the
command runs it as a scorer runs one requested through ``POST /v1/rules/rebuild``
(``services.scorer.rebuild_runner``), in this process: it requests it (or takes the request in
progress), takes the tenant's lock and runs it, so it never runs beside another rebuild of the
tenant (it exits 1 when a scorer is running one: follow ``GET /v1/rules/rebuild``). An attempt
that fails on an outage, or after its activation was decided, leaves the request ``running``
(it exits 1 with the error): the next scorer to poll, or the command run again, goes on with it
(invariant 6 of ``services.scorer.tenant_rebuild``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from engagement.faust.poison import describe
from engagement.model.rules import load_rules
from engagement.model.templates import Templates
from engagement.settings import CommonSettings
from engagement.store.connection import connect
from engagement.store.rebuild_requests import RebuildRequests
from engagement.store.redis_keys import KeyLayout
from engagement.store.redis_store import ScoreStore
from engagement.store.sequence_carry import CarryReport
from engagement.tools import rebuild
from services.scorer.rebuild_runner import RebuildRunner
from services.scorer.tenant_rebuild import Rebuild, follow_templates

__all__ = ["Rebuild", "follow_templates", "rebuild_tenant", "run"]


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
    outcome, report = asyncio.run(_run(settings, parsed.tenant, parsed.rules, group))
    if outcome != "activated":
        print(f"tenant {parsed.tenant!r} not rebuilt: {outcome}", file=sys.stderr)
        return 1
    if report is None:
        print(f"tenant {parsed.tenant!r} rebuilt by an earlier attempt of its rebuild")
        return 0
    print(
        f"rebuilt tenant {parsed.tenant!r}: {report.seen} candidates carried over,"
        f" {report.raised} raised, {len(report.missing)} not rebuilt"
    )
    return 0


async def _run(
    settings: CommonSettings, tenant: str, rules_file: Path, group: str
) -> tuple[str, CarryReport | None]:
    """The outcome (why not, else ``activated``) and the carry's report once activated."""
    redis = connect(settings.redis_url, cluster=settings.redis_cluster, socket_timeout=30)
    rules = load_rules(rules_file)
    follower = await follow_templates(
        Templates(rules), settings.kafka_bootstrap_servers, settings.topics
    )
    try:
        rebuild = Rebuild(
            redis=redis,
            base=ScoreStore(redis, prefix=settings.redis_key_prefix, rules=rules),
            templates=follower.templates,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topics=settings.topics,
            live_group=group,
        )
        return await rebuild_tenant(rebuild, tenant, settings.redis_key_prefix)
    finally:
        await follower.close()
        await redis.aclose()


async def rebuild_tenant(
    rebuild: Rebuild, tenant: str, prefix: str
) -> tuple[str, CarryReport | None]:
    """Request the tenant's rebuild (or take the request in progress) and run it here under the
    tenant's lock: the outcome (``activated``, else why not) and the carry's report."""
    try:
        version = rebuild.target(tenant).version
    except ValueError as exc:
        return str(exc), None
    requests = RebuildRequests(rebuild.redis, KeyLayout(prefix))
    runner = RebuildRunner(requests, rebuild, rebuild.templates)
    if not await requests.lock(tenant, runner.token):  # before the request: no scorer takes it
        return "a scorer is running its rebuild (GET /v1/rules/rebuild)", None
    report, failure = None, ""
    try:
        await requests.request(tenant, version, datetime.now(UTC).isoformat())
        report = await runner.while_locked(tenant)
    except Exception as exc:  # the request stays running: a scorer, or this command, goes on
        failure = f"{describe(exc)}; a scorer's next poll, or this command again, goes on"
    finally:
        await requests.unlock(tenant, runner.token)
    outcome = await requests.latest(tenant)
    state = "?" if outcome is None else f"{outcome.state} {outcome.error or failure}".strip()
    return state, report
