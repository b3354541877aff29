"""Carry each candidate's sequence (and the notifier's shared keys, the erasure fences) over
from the store a rebuild replaces: ``engagement rebuild finish`` (``engagement.tools.rebuild``, a
whole store) and a tenant's rebuild (``services.scorer.tenant_rebuild``, one tenant generation).

Consumers drop a record whose sequence is not past the last one they saw, and a rebuild's
sequences count what it scored: ``carry_sequences`` raises each rebuilt candidate's sequence to at
least the replaced store's (plus a margin), so the first record after the switch is past every
earlier one. Idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engagement.model.score_views import Snapshot
from engagement.store.candidate_reads import profile_snapshot
from engagement.store.connection import RedisClient
from engagement.store.erasure_fence import copy_fences
from engagement.store.redis_keys import KeyLayout, glob_literal
from engagement.store.redis_store import ScoreStore
from engagement.store.store_scripts import Command, lua_source, run_pipelined, text

CHUNK = 500  # candidates per pipelined round


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
        # the notifier's state is keyed by the record key, tenant:candidate (kafka.topics)
        commands: list[Command] = [
            ("EVALSHA", self.sha, 4, into.candidate(tenant, cand).profile,
             replaced.candidate(tenant, cand).profile, into.notified(f"{tenant}:{cand}"),
             replaced.notified(f"{tenant}:{cand}"), seq, self.margin)
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
