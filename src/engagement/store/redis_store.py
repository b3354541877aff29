"""The score store: exact scores in Redis, one Lua script per operation, pipelined in batches.

Key layout and how to read the tier sets: ``engagement.store.redis_keys``. Split by concern:
``apply_batch`` and its pipelined rounds are in ``engagement.store.batch_apply`` (the last, the
rank round, in ``engagement.store.rank_round``), one interaction's job and its outcome in ``engagement.store.store_jobs``, the identity-merge screening
in ``engagement.store.merge_store``, erasure in ``engagement.store.pending_erasure`` (the use case:
``engagement.erasure``), the fences in ``engagement.store.erasure_fence``, the reads in
``engagement.store.rank_reads`` (rank space) and ``engagement.store.candidate_reads`` (one
candidate), the job profiles in ``engagement.store.job_store``; this module builds the store
(its scripts, baked with the template) and holds the rank updates.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from engagement.model.jobs import JOBS_KEPT, CandidateJobs
from engagement.model.rules import Rules
from engagement.model.score_views import (
    CandidateView,
    Erasure,
    LeaderboardPage,
    Snapshot,
)
from engagement.model.scoring import rank_key
from engagement.store import candidate_reads, erasure_fence, pending_erasure, rank_reads
from engagement.store import job_store as jobs
from engagement.store.batch_apply import BatchApply
from engagement.store.connection import RedisClient
from engagement.store.redis_keys import KeyLayout
from engagement.store.store_scripts import (
    config_block,
    job_config_block,
    lua_source,
    text,
)

DEDUPE_WINDOW_SECONDS = 8 * 86400
CONTRIBUTIONS_KEPT = 6

log = logging.getLogger("engagement.store")


class ScoreStore(BatchApply):
    """Scores, tiers and ranks of every candidate of every tenant in one Redis (or cluster);
    ``apply_batch`` is ``engagement.store.batch_apply.BatchApply``'s."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        prefix: str,
        rules: Rules,
        dedupe_window_seconds: float = DEDUPE_WINDOW_SECONDS,
        contributions_kept: int = CONTRIBUTIONS_KEPT,
        log_hash_key: bytes | None = None,
        jobs_kept: int = JOBS_KEPT,
    ) -> None:
        self.redis = redis
        # the key of the hash log lines name ids by (LOG_HASH_KEY; random when not given)
        self.log_key = log_hash_key or secrets.token_bytes(32)
        self.rules = rules
        self.keys = KeyLayout(prefix)
        self.dedupe_window_seconds = dedupe_window_seconds
        self.contributions_kept = contributions_kept
        block = config_block(rules, contributions_kept)
        self.jobs_kept = jobs_kept
        job_block = job_config_block(rules, jobs_kept)
        self._scripts = {
            name: redis.register_script(lua_source(name, block, job_block))
            for name in (
                "apply",
                "apply_job",
                "merge_take",
                "merge_add",
                "merge_release",
                "erase",
                "rank",
                "rank_jobs",
                "rank_after",
                "forget_idle",
            )
        }
        self._sources = {str(s.sha): str(s.script) for s in self._scripts.values()}
        self._window = repr(float(dedupe_window_seconds))
        self._tier_number = {name: k + 1 for k, name in enumerate(rules.tier_names)}  # Lua's
        self._fences = erasure_fence.FenceCache()

    async def idle_anonymous(self, tenant_id: str, *, before: float, limit: int) -> list[str]:
        """Up to ``limit`` anonymous candidates of the tenant whose latest event is before
        ``before`` (epoch seconds), the longest idle first."""
        ids = await self.redis.zrange(
            self.keys.anonymous(tenant_id),
            "-inf",
            f"({before!r}",
            byscore=True,
            offset=0,
            num=limit,
        )
        return [text(c) for c in ids]

    async def still_idle(self, tenant_id: str, candidate_id: str, *, before: float) -> bool:
        """Whether the candidate is still an unmerged profile whose latest event is before
        ``before`` (an expiry erases only such a one)."""
        t, merged = await self.redis.hmget(
            self.keys.candidate(tenant_id, candidate_id).profile, "t", "m"
        )
        return t is not None and merged is None and float(t) < before

    async def forget_idle(self, tenant_id: str, ids: Sequence[str], *, before: float) -> None:
        """Take ids out of the idle index, each only while still idle since before ``before``
        (one that had an event meanwhile stays, with its new time)."""
        if ids:
            await self._scripts["forget_idle"](
                keys=[self.keys.anonymous(tenant_id)], args=[repr(before), *ids]
            )

    async def prune_jobs(self, tenant_id: str, *, before: float) -> list[str]:
        """Take out of the tenant's job list the jobs no event named since ``before`` and no
        candidate is left in (``job_store.prune_jobs``); the jobs taken out."""
        return await jobs.prune_jobs(self, tenant_id, before=before)

    async def update_rank(self, tenant_id: str, candidate_id: str, snapshot: Snapshot) -> bool:
        """Put a stored state into the tier sets; False (no change) unless its sequence is newer."""
        return await self.update_ranks(tenant_id, [(candidate_id, snapshot)]) > 0

    async def update_ranks(self, tenant_id: str, states: Sequence[tuple[str, Snapshot]]) -> int:
        """Put stored states of a tenant's candidates into the tier sets in one call (each only if
        its sequence is newer than the one there); how many were."""
        if not states:
            return 0
        args = [arg for cand, snap in states for arg in self._rank_args(cand, snap)]
        applied = await self._scripts["rank"](keys=self._rank_keys(tenant_id), args=args)
        return int(applied)

    async def keep_sequences(self, tenant_id: str, sequences: Sequence[tuple[str, int]]) -> None:
        """Record candidates' sequences in the tenant's rank hash without putting them in a tier
        set (candidates with no state to rank: a rebuild's, ``engagement.tools.rebuild``)."""
        if sequences:
            args = [arg for cand, seq in sequences for arg in (cand, seq, 0, "0")]
            await self.redis.sadd(self.keys.tenants, tenant_id)
            await self._scripts["rank"](keys=self._rank_keys(tenant_id), args=args)

    def _rank_args(self, cand: str, snap: Snapshot) -> list[Any]:
        tier = 0 if snap.merged_into else self._tier_number[snap.tier]
        rank = rank_key(snap.raw, snap.as_of or 0.0, self.rules.half_life_seconds)
        return [cand, snap.sequence, tier, repr(rank)]

    def _rank_keys(self, tenant: str) -> list[str]:
        tiers = [self.keys.tier_set(tenant, name) for name in self.rules.tier_names]
        return [self.keys.sequences(tenant), *tiers]

    async def erase(
        self, tenant_id: str, candidate_id: str, *, fence_at: datetime | None = None
    ) -> Erasure:
        """Remove every key of the candidate and of ids merged into it (transitively), their
        ranks, then their ids from every job of the tenant (``job_store.forget``: leaderboards
        and sequences, also of jobs they left); ``fence_at``: fence each merged id as of then
        before its keys go (``raise_fences``; the candidate's own fence is the caller's).
        Idempotent, and complete when repeated after a failure at any point: the merged ids and
        the last sequence are recorded first in a pending erasure, which outlives the keys
        (``erasure_published`` deletes it), so a retry returns them again."""
        erasure = await pending_erasure.erase(
            self.redis,
            self.keys,
            tenant_id,
            candidate_id,
            wipe=self._scripts["erase"],
            rank=self._scripts["rank"],
            rank_keys=self._rank_keys(tenant_id),
            fence_at=fence_at,
        )
        await self.redis.zrem(self.keys.anonymous(tenant_id), candidate_id, *erasure.merged_ids)
        await jobs.forget(self, tenant_id, [candidate_id, *erasure.merged_ids])
        return erasure

    async def erasure_published(self, erasure: Erasure) -> None:
        """Forget the pending erasure once Kafka acknowledged all of its records. Idempotent."""
        await pending_erasure.forget(self.redis, self.keys, erasure)

    async def raise_fences(
        self, tenant_id: str, candidate_ids: Iterable[str], requested_at: datetime
    ) -> None:
        """Withhold the ids' events received up to ``requested_at``, an erasure request's
        (``engagement.store.erasure_fence``)."""
        await erasure_fence.raise_fences(
            self.redis, self.keys, tenant_id, candidate_ids, requested_at
        )

    async def fences(self, now: float, *, drop: bool = True) -> erasure_fence.Fences:
        """The erasure fences up at ``now``: fence id -> the instant up to which it withholds
        (read in full only when they changed: ``erasure_fence.FenceCache``; do not modify it).
        ``drop=False`` (a rebuild, which replays history): every fence holds, none is past its
        time; the live scorer drops them once it runs on the rebuilt store."""
        return await self._fences.live(self.redis, self.keys, now, drop=drop)

    async def reach_fence(
        self, tenant_id: str, candidate_id: str, requested_at: datetime, now: datetime
    ) -> None:
        """The scorer reached the id's erasure request of ``requested_at``: its fence goes soon."""
        await self._fences.reach(self.redis, self.keys, tenant_id, candidate_id, requested_at, now)

    async def get_candidate(
        self, tenant_id: str, candidate_id: str, now: float
    ) -> CandidateView | None:
        """The candidate decayed to ``now`` (merged anonymous ids resolve to their candidate)."""
        return await candidate_reads.candidate_view(self, tenant_id, candidate_id, now)

    async def leaderboard(
        self,
        tenant_id: str,
        tier: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        *,
        now: float,
    ) -> LeaderboardPage:
        """Candidates by current score (optionally only those in ``tier`` now), keyset-paginated."""
        return await rank_reads.leaderboard(self, tenant_id, tier, limit, cursor, now)

    async def rank_after(
        self, key: str, member: bytes, rank: float, limit: int
    ) -> list[tuple[float, bytes]] | None:
        """Up to ``limit`` (rank key, member) of tier set ``key`` right after ``(rank, member)`` in
        leaderboard order; None when ``member`` is not in the set at ``rank`` (any more)."""
        reply = await self._scripts["rank_after"](keys=[key], args=[member, repr(rank), limit])
        if reply is None:
            return None
        return [(float(reply[i + 1]), reply[i]) for i in range(0, len(reply), 2)]

    async def job_leaderboard(
        self,
        tenant_id: str,
        job_id: str,
        tier: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        *,
        now: float,
    ) -> LeaderboardPage:
        """Candidates of a job by their current score for it (optionally only those in job tier
        ``tier`` now), keyset-paginated like ``leaderboard``."""
        return await rank_reads.job_leaderboard(self, tenant_id, job_id, tier, limit, cursor, now)

    async def candidate_jobs(
        self, tenant_id: str, candidate_id: str, now: float
    ) -> CandidateJobs | None:
        """The candidate's job profiles decayed to ``now``, strongest first (merged anonymous
        ids resolve to their candidate); None for an unknown candidate."""
        return await jobs.candidate_jobs(self, tenant_id, candidate_id, now)

    async def run_rank(self, keys: list[str], args: list[Any]) -> int:
        """The rank script (sequence compare-and-set into tier sets) on ``keys`` with ``args``."""
        return int(await self._scripts["rank"](keys=keys, args=args))

    async def run_rank_jobs(self, keys: list[str], args: list[Any]) -> int:
        """The rank_jobs script (the rank script over several jobs' groups of keys)."""
        return int(await self._scripts["rank_jobs"](keys=keys, args=args))

    async def tier_counts(self, tenant_id: str, now: float) -> dict[str, int]:
        """Candidates per tier at ``now`` (decay applied), lowest tier first."""
        return await rank_reads.tier_counts(self, tenant_id, now)

    async def job_tier_counts(self, tenant_id: str, job_id: str, now: float) -> dict[str, int]:
        """A job's candidates per job tier at ``now`` (decay applied), lowest tier first."""
        return await rank_reads.job_tier_counts(self, tenant_id, job_id, now)

    async def tenants(self) -> list[str]:
        """Every tenant id with scored candidates, sorted."""
        return sorted(text(t) for t in await self.redis.smembers(self.keys.tenants))
