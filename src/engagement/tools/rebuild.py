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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engagement.kafka.topics import candidate_key
from engagement.model.rules import load_rules
from engagement.model.score_views import Snapshot
from engagement.settings import CommonSettings
from engagement.store.connection import RedisClient, connect
from engagement.store.erasure_fence import copy_fences
from engagement.store.rank_reads import profile_snapshot
from engagement.store.redis_keys import KeyLayout, glob_literal
from engagement.store.redis_store import ScoreStore
from engagement.store.store_scripts import Command, lua_source, run_pipelined, text

CHUNK = 500  # candidates per pipelined round
SHOWN = 20  # candidates only in the replaced store named in the report


@dataclass
class CarryReport:
    """What ``carry_sequences`` found: candidates of the replaced store (``seen``), rebuilt ones
    whose sequence it raised, those the rebuild does not have (``missing``, ``tenant:id``), and
    the notifier's shared keys and the erasure fences copied."""

    seen: int = 0
    raised: int = 0
    missing: list[str] = field(default_factory=list)
    notifier_keys: int = 0
    fences: int = 0


async def carry_sequences(
    store: ScoreStore,
    replaced: str | KeyLayout,
    *,
    tenants: Sequence[str] | None = None,
    margin: int = 0,
) -> CarryReport:
    """Raise the sequence of every candidate of ``store`` to at least the one it has under
    ``replaced`` (a prefix, or one tenant generation's layout: its rank hash entry or its
    profile's, the higher, plus ``margin``), and its rank entry with it. Candidates of the
    replaced store are listed from its per-tenant rank hashes (of ``tenants``: every tenant)."""
    replaced = KeyLayout(replaced) if isinstance(replaced, str) else replaced
    if replaced == store.keys:
        raise ValueError("the replaced prefix is the store's own")
    redis = store.redis
    script = redis.register_script(lua_source("carry_sequence"))
    sources = {str(script.sha): str(script.script)}
    report = CarryReport()
    if replaced.prefix != store.keys.prefix:  # one prefix: the global keys are the same keys
        report.notifier_keys = await _copy_notifier_shared(redis, replaced, store.keys)
        report.fences = await copy_fences(redis, replaced, store.keys)
    if tenants is None:
        tenants = sorted(text(t) for t in await redis.smembers(replaced.tenants))
    carry = _Carry(store, replaced, str(script.sha), sources, margin, report)
    for tenant in tenants:
        chunk: list[tuple[str, str]] = []
        async for cand, seq in redis.hscan_iter(replaced.sequences(tenant), count=CHUNK):
            chunk.append((text(cand), text(seq)))
            if len(chunk) == CHUNK:
                await carry(tenant, chunk)
                chunk = []
        await carry(tenant, chunk)
    return report


@dataclass
class _Carry:
    """Carries one chunk of one tenant's candidates (one pipelined round)."""

    store: ScoreStore
    replaced: KeyLayout
    sha: str
    sources: dict[str, str]
    margin: int
    report: CarryReport

    async def __call__(self, tenant: str, chunk: list[tuple[str, str]]) -> None:
        store, replaced, report, into = self.store, self.replaced, self.report, self.store.keys
        commands: list[Command] = [
            ("EVALSHA", self.sha, 4, into.candidate(tenant, cand).profile,
             replaced.candidate(tenant, cand).profile, into.notified(candidate_key(tenant, cand)),
             replaced.notified(candidate_key(tenant, cand)), seq, self.margin)
            for cand, seq in chunk
        ]  # fmt: skip
        replies = await run_pipelined(store.redis, commands, self.sources)
        raised: list[tuple[str, Snapshot]] = []
        missing: list[tuple[str, int]] = []
        for (cand, _), reply in zip(chunk, replies, strict=True):
            report.seen += 1
            kind = text(reply[0])
            if kind == "missing":
                report.missing.append(f"{tenant}:{cand}")
                missing.append((cand, int(reply[1])))
            elif kind == "raised":
                report.raised += 1
                raised.append((cand, _stored_state(store, reply[1])))
        await store.update_ranks(tenant, raised)
        await store.keep_sequences(tenant, missing)  # listed for a later rebuild, in no tier set


async def _copy_notifier_shared(redis: RedisClient, replaced: KeyLayout, into: KeyLayout) -> int:
    """Copy the notifier's sweep watermark and webhook queue keys the rebuilt prefix lacks."""
    pairs = [(replaced.notifier_sweep("watermark"), into.notifier_sweep("watermark"))]
    start = replaced.webhooks
    async for key in redis.scan_iter(match=glob_literal(start) + "*", count=1000):
        name = text(key)
        pairs.append((name, into.webhooks + name[len(start) :]))
    copied = 0
    for k in range(0, len(pairs), CHUNK):
        async with redis.pipeline(transaction=False) as pipe:
            for source, target in pairs[k : k + CHUNK]:
                pipe.copy(source, target)  # no REPLACE: what the rebuilt prefix has stays
            copied += sum(bool(done) for done in await pipe.execute())
    return copied


def _stored_state(store: ScoreStore, flat: list[Any]) -> Snapshot:
    """The state a profile hash (flat HGETALL reply) stores, at its own reference time."""
    profile = {text(flat[k]): text(flat[k + 1]) for k in range(0, len(flat), 2)}
    merged_into = profile.get("m")
    if "t" not in profile:  # a merged id that never had an event of its own
        rules = store.rules
        snap = Snapshot(None, 0.0, {}, {}, int(profile.get("s", 0)), 1, rules.tier_names[0])
    else:
        snap = profile_snapshot(store, profile, float(profile["t"]))
    return snap._replace(merged_into=merged_into)


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
