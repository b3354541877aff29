"""The score store: exact scores in Redis, one Lua script per operation, pipelined in batches.

Key layout and how to read the tier sets: see ``engagement.store.redis_keys``. ``apply_batch`` does a
batch in pipelined rounds (``transaction=False``): (1) every apply script and merge step 1,
written in chunks as the jobs are planned, (2) redirects of merged anonymous ids and merge step 2,
(3) rank updates with sequence compare-and-set. Every step is idempotent, so replaying a batch (after a crash) changes nothing.
A batch with merges first reads the ``merged_into`` links on their targets' paths (one round trip
per link followed) and refuses the merges that would close a loop.

Split by concern: one interaction's job and its outcome are in ``engagement.store.store_jobs``, the
identity-merge screening and refusals in ``engagement.store.merge_store``, erasure in
``engagement.store.pending_erasure`` and the reads in ``engagement.store.rank_reads``; this module holds the
rounds of ``apply_batch`` and the rank updates.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson

from engagement.model.identity import ANONYMOUS
from engagement.model.jobs import JOBS_KEPT, CandidateJobs, JobState
from engagement.model.log_privacy import hashed_id
from engagement.model.records import Interaction
from engagement.model.rules import Rules
from engagement.model.score_views import (
    ApplyOutcome,
    CandidateView,
    Erasure,
    LeaderboardPage,
    Outcome,
    Snapshot,
    parse_replies,
)
from engagement.model.scoring import rank_key
from engagement.store import erasure_fence, merge_store, pending_erasure, quiet, rank_reads
from engagement.store import job_store as jobs
from engagement.store.connection import RedisClient
from engagement.store.merge_store import MAX_HOPS, Link
from engagement.store.redis_keys import KeyLayout
from engagement.store.store_jobs import MERGE_TYPES, Job, OnOutcome, outcome_of, plan, unscored
from engagement.store.store_scripts import (
    Command,
    config_block,
    event_args,
    job_config_block,
    lua_source,
    run_pipelined,
    text,
)

DEDUPE_WINDOW_SECONDS = 8 * 86400
CONTRIBUTIONS_KEPT = 6

log = logging.getLogger("engagement.store")


class ScoreStore:
    """Scores, tiers and ranks of every candidate of every tenant in one Redis (or cluster)."""

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
                "rank_after",
                "forget_idle",
            )
        }
        self._sources = {str(s.sha): str(s.script) for s in self._scripts.values()}
        self._window = repr(float(dedupe_window_seconds))
        self._tier_number = {name: k + 1 for k, name in enumerate(rules.tier_names)}  # Lua's
        self._fences = erasure_fence.FenceCache()

    async def apply_batch(
        self,
        interactions: Iterable[Interaction],
        *,
        on_outcome: OnOutcome | None = None,
        while_ranking: Callable[[list[ApplyOutcome]], None] | None = None,
    ) -> list[ApplyOutcome]:
        """Apply a batch; one outcome per interaction, in order. Idempotent per messageId.

        ``interactions`` may be lazy (records parsed as they are taken): the first round takes
        them as it sends their commands, so Redis runs the first while the rest are parsed and
        planned. From the first identify/alias on, the rest of the batch is taken at once: its
        merges are screened before they are sent.

        Two hooks let the caller work while Redis does (nothing here waits for them to be
        useful): ``on_outcome(index, outcome)`` is called once per interaction as soon as its
        outcome is known, most of them while Redis still runs the rest of the batch, and
        ``while_ranking(outcomes)`` once every outcome is known, while Redis updates the ranks.
        """
        taken: list[Interaction] = []
        outcomes: list[ApplyOutcome | None] = []
        source = iter(interactions)
        merge_from: list[int] = []  # where the first identify/alias is, once taken

        def until_merge() -> Iterator[tuple[int, Interaction]]:
            for interaction in source:
                taken.append(interaction)
                outcomes.append(None)
                if interaction.type in MERGE_TYPES:
                    merge_from.append(len(taken) - 1)
                    return
                yield len(taken) - 1, interaction

        await self._rounds(self._jobs(until_merge(), outcomes, on_outcome), outcomes, on_outcome)
        if merge_from:
            for interaction in source:
                taken.append(interaction)
                outcomes.append(None)
            rest = ((k, taken[k]) for k in range(merge_from[0], len(taken)))
            follow = await self._screen(
                list(self._jobs(rest, outcomes, on_outcome)), outcomes, on_outcome
            )
            await self._rounds(follow, outcomes, on_outcome)
        done = self._settled(taken, outcomes, on_outcome)
        await self._update_ranks(
            done, None if while_ranking is None else lambda: while_ranking(done)
        )
        return done

    async def _rounds(
        self, jobs: Iterable[Job], outcomes: list[ApplyOutcome | None], on_outcome: OnOutcome | None
    ) -> None:
        """Run rounds until no job follows (a job follows its merge redirect)."""
        follow = await self._round(jobs, outcomes, on_outcome)
        while follow:
            follow = await self._round(follow, outcomes, on_outcome)

    def _settled(
        self,
        taken: list[Interaction],
        outcomes: list[ApplyOutcome | None],
        on_outcome: OnOutcome | None,
    ) -> list[ApplyOutcome]:
        done: list[ApplyOutcome] = []
        for index, outcome in enumerate(outcomes):
            if outcome is None:  # defensive: every job settles with an outcome
                outcome = unscored(taken[index], self.rules.version)
                if on_outcome is not None:
                    on_outcome(index, outcome)
            done.append(outcome)
        return done

    def _jobs(
        self,
        interactions: Iterable[tuple[int, Interaction]],
        outcomes: list[ApplyOutcome | None],
        on_outcome: OnOutcome | None,
    ) -> Iterator[Job]:
        """The jobs of (index, interaction)s, in order; one with nothing to score settles here."""
        rules = self.rules
        for index, interaction in interactions:
            job = plan(index, interaction, rules)
            if job is not None:
                yield job
                continue
            outcome = outcomes[index] = unscored(interaction, rules.version)
            if on_outcome is not None:
                on_outcome(index, outcome)

    async def _screen(
        self, jobs: list[Job], outcomes: list[ApplyOutcome | None], on_outcome: OnOutcome | None
    ) -> list[Job]:
        """The jobs that go ahead: a batch's merges are screened first (``merge_store.screen``)."""
        merges = [job for job in jobs if job.stage == "take"]
        if not merges:
            return jobs
        links = await self._merge_links(merges)
        return merge_store.screen(
            jobs, links, outcomes, rules=self.rules, on_outcome=on_outcome, log_key=self.log_key
        )

    async def _merge_links(self, merges: list[Job]) -> dict[Link, Link | None]:
        """``merged_into`` links on the paths of ``merges`` (``merge_store.path_links``)."""
        return await merge_store.path_links(self.redis, self.keys, self._sources, merges)

    async def _round(
        self,
        jobs: Iterable[Job],
        outcomes: list[ApplyOutcome | None],
        on_outcome: OnOutcome | None,
    ) -> list[Job]:
        sent: list[Job] = []
        follow: list[Job] = []

        def commands() -> Iterator[Command]:  # taken lazily, chunk by chunk, as they are sent
            for job in jobs:
                sent.append(job)
                yield self._command(job)

        def settle(k: int, result: Any) -> None:  # as each reply arrives, while Redis goes on
            job = sent[k]
            follow.extend(self._settle(job, result, outcomes))
            outcome = outcomes[job.index]
            if on_outcome is not None and outcome is not None:
                on_outcome(job.index, outcome)

        await run_pipelined(self.redis, commands(), self._sources, on_reply=settle)
        return follow

    def _command(self, job: Job) -> Command:
        if job.event is not None:
            base = self.keys.candidate_base(job.tenant, job.candidate)
            keys = (f"{base}:p", f"{base}:d", f"{base}:k", f"{base}:c")
            if job.job_id is not None:  # the apply that also scores into the job's profile
                sha = self._scripts["apply_job"].sha
                args = (*event_args(job.event, self._window), job.job_id)
                return ("EVALSHA", sha, 6, *keys, f"{base}:j", f"{base}:jr", *args)
            sha = self._scripts["apply"].sha
            return ("EVALSHA", sha, 4, *keys, *event_args(job.event, self._window))
        src = self.keys.candidate(job.tenant, job.source or "")
        if job.stage == "take":
            take = (src.profile, src.caps, src.contributions, src.merged, src.jobs)
            return ("EVALSHA", self._scripts["merge_take"].sha, 5, *take, job.candidate)
        if job.stage == "release":
            target = job.interaction.userId or ""
            return ("EVALSHA", self._scripts["merge_release"].sha, 1, src.profile, target)
        dst = self.keys.candidate(job.tenant, job.candidate)
        add = (dst.profile, dst.merged, dst.caps, dst.contributions, dst.jobs, dst.job_ranks)
        return ("EVALSHA", self._scripts["merge_add"].sha, 6, *add, *job.frozen)

    def _settle(
        self, job: Job, result: list[Any], outcomes: list[ApplyOutcome | None]
    ) -> list[Job]:
        kind = text(result[0])
        if kind == "redirect":
            return self._redirect(job, text(result[1]), outcomes)
        if job.stage == "take":
            return merge_store.after_take(
                job, kind, result, outcomes, rules=self.rules, log_key=self.log_key
            )
        if job.stage == "release":
            return merge_store.released(
                job, result, outcomes, rules=self.rules, log_key=self.log_key
            )
        job_states: tuple[JobState, ...] = ()
        if len(result) > 3 or job.source_jobs:  # a change of (candidate, job) profiles
            job_states = jobs.states_of(self, job, kind, result)
            result = result[:3]
        before, after = parse_replies(kind, result, self.rules)
        outcome: Outcome = kind  # type: ignore[assignment]
        outcomes[job.index] = outcome_of(
            job, outcome, before, after, self.rules.version, jobs=job_states
        )
        return []

    def _redirect(self, job: Job, target: str, outcomes: list[ApplyOutcome | None]) -> list[Job]:
        if job.stage == "add" and (target == job.source or job.hops >= MAX_HOPS):
            return merge_store.refuse_add(
                job, target, outcomes, rules=self.rules, log_key=self.log_key
            )
        if job.hops >= MAX_HOPS:
            outcomes[job.index] = outcome_of(job, "conflict", None, None, self.rules.version)
            fields: dict[str, Any] = {"event": "store.redirect_conflict", "tenant": job.tenant}
            candidate = hashed_id(job.redirected_from or job.candidate, key=self.log_key)
            fields |= {"candidate": candidate, "messageId": job.interaction.messageId}
            log.warning("event not scored: %s", orjson.dumps(fields).decode(), extra=fields)
            return []
        redirected = job.redirected_from or job.candidate
        return [replace(job, candidate=target, redirected_from=redirected, hops=job.hops + 1)]

    async def _update_ranks(
        self, outcomes: list[ApplyOutcome], meanwhile: Callable[[], None] | None = None
    ) -> None:
        latest, job_states = _latest_states(outcomes)
        if not latest:
            if meanwhile is not None:
                meanwhile()
            return
        by_tenant: dict[str, list[Any]] = {}
        for (tenant, cand), snap in latest.items():
            by_tenant.setdefault(tenant, []).extend(self._rank_args(cand, snap))
        rank_sha = self._scripts["rank"].sha
        commands: list[Command] = [("SADD", self.keys.tenants, *by_tenant)]
        for tenant, args in by_tenant.items():  # one call per tenant: its keys share a slot
            keys = self._rank_keys(tenant)
            commands.append(("EVALSHA", rank_sha, len(keys), *keys, *args))
        commands += self._anonymous_commands(latest)
        commands += quiet.commands(self.keys, outcomes, latest, self.rules.tiers[0].name)
        commands += jobs.rank_commands(self, job_states, rank_sha)
        await run_pipelined(self.redis, commands, self._sources, meanwhile=meanwhile)

    def _anonymous_commands(self, latest: dict[tuple[str, str], Snapshot]) -> list[Command]:
        """Index the anonymous candidates of a batch by their latest event time (ZADD GT: a
        replayed older state never lowers it); one merged into a candidate leaves the index."""
        seen: dict[str, list[Any]] = {}
        gone: dict[str, list[str]] = {}
        for (tenant, cand), snap in latest.items():
            if not cand.startswith(ANONYMOUS) or snap.as_of is None:
                continue
            if snap.merged_into:
                gone.setdefault(tenant, []).append(cand)
            else:
                seen.setdefault(tenant, []).extend((repr(snap.as_of), cand))
        commands: list[Command] = [
            ("ZADD", self.keys.anonymous(t), "GT", *args) for t, args in seen.items()
        ]
        return commands + [("ZREM", self.keys.anonymous(t), *ids) for t, ids in gone.items()]

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
        """Remove every key of the candidate and of ids merged into it (transitively), and their
        ranks, job leaderboards too (``job_store.leave_jobs``); ``fence_at``: fence each merged id
        as of then before its keys go (``raise_fences``; the candidate's own fence is the
        caller's). Idempotent, and complete when repeated after a
        failure at any point: the merged ids and the last sequence are recorded first in a pending
        erasure, which outlives the keys (``erasure_published`` deletes it), so a retry returns
        them again."""
        left = await jobs.leave_jobs(self, tenant_id, candidate_id)  # before the keys go
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
        await jobs.leave(self, tenant_id, candidate_id, left)  # again: ranked during the wipe
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
        return await rank_reads.candidate_view(self, tenant_id, candidate_id, now)

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

    async def tier_counts(self, tenant_id: str, now: float) -> dict[str, int]:
        """Candidates per tier at ``now`` (decay applied), lowest tier first."""
        return await rank_reads.tier_counts(self, tenant_id, now)

    async def tenants(self) -> list[str]:
        """Every tenant id with scored candidates, sorted."""
        return sorted(text(t) for t in await self.redis.smembers(self.keys.tenants))


def _latest_states(
    outcomes: list[ApplyOutcome],
) -> tuple[dict[tuple[str, str], Snapshot], dict[jobs.JobKey, JobState]]:
    """Each (tenant, candidate)'s newest state of a batch, and each (tenant, job, candidate)'s."""
    latest: dict[tuple[str, str], Snapshot] = {}

    def keep(tenant: str, cand: str, snap: Snapshot) -> None:
        seen = latest.get((tenant, cand))
        if seen is None or snap.sequence > seen.sequence:
            latest[(tenant, cand)] = snap

    job_states: dict[jobs.JobKey, JobState] = {}
    for o in outcomes:
        after = o.after
        if after is not None and after.sequence:
            keep(o.tenant_id, o.candidate_id, after)
        if o.jobs:
            jobs.keep_latest(job_states, o.tenant_id, o.jobs)
        source = o.merged_source
        if o.merged_from is not None and source is not None and source.sequence:
            keep(o.tenant_id, o.merged_from, source)
    return latest, job_states
