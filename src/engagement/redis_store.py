"""The score store: exact scores in Redis, one Lua script per operation, pipelined in batches.

Key layout and how to read the tier sets: see ``engagement.redis_keys``. ``apply_batch`` does a
batch in three pipelined round trips (``transaction=False``): (1) every apply script and merge
step 1, (2) redirects of merged anonymous ids and merge step 2, (3) rank updates with sequence
compare-and-set. Every step is idempotent, so replaying a batch (after a crash) changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import redis.asyncio as aioredis

from engagement import rank_reads
from engagement.records import Interaction
from engagement.redis_keys import KeyLayout
from engagement.rules import Rules
from engagement.score_views import (
    ApplyOutcome,
    CandidateView,
    Erasure,
    LeaderboardPage,
    Outcome,
    Snapshot,
    TierCrossing,
    parse_replies,
    parse_snapshot,
)
from engagement.scoring import ScoredEvent, event_points, rank_key
from engagement.store_scripts import (
    Command,
    config_block,
    event_args,
    frozen_args,
    lua_source,
    merge_source,
    run_pipelined,
    text,
)

DEDUPE_WINDOW_SECONDS = 8 * 86400
CONTRIBUTIONS_KEPT = 6
MAX_HOPS = 3
Stage = Literal["apply", "take", "add"]
OnOutcome = Callable[[int, ApplyOutcome], None]


@dataclass
class _Job:
    """One interaction on its way through the rounds."""

    index: int
    interaction: Interaction
    tenant: str
    candidate: str
    stage: Stage
    event: ScoredEvent | None = None
    source: str | None = None  # merges: the candidate folded into ``candidate``
    redirected_from: str | None = None
    hops: int = 0
    frozen: list[str] = field(default_factory=list)  # merge step 2 arguments
    source_state: Snapshot | None = None


class ScoreStore:
    """Scores, tiers and ranks of every candidate of every tenant in one Redis (or cluster)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        prefix: str,
        rules: Rules,
        dedupe_window_seconds: float = DEDUPE_WINDOW_SECONDS,
        contributions_kept: int = CONTRIBUTIONS_KEPT,
    ) -> None:
        self.redis = redis
        self.rules = rules
        self.keys = KeyLayout(prefix)
        self.dedupe_window_seconds = dedupe_window_seconds
        self.contributions_kept = contributions_kept
        block = config_block(rules, contributions_kept)
        self._scripts = {
            name: redis.register_script(lua_source(name, block))
            for name in ("apply", "merge_take", "merge_add", "erase", "rank")
        }
        self._sources = {str(s.sha): str(s.script) for s in self._scripts.values()}
        self._window = repr(float(dedupe_window_seconds))
        self._tier_number = {name: k + 1 for k, name in enumerate(rules.tier_names)}  # Lua's

    async def apply_batch(
        self,
        interactions: Sequence[Interaction],
        *,
        on_outcome: OnOutcome | None = None,
        while_ranking: Callable[[list[ApplyOutcome]], None] | None = None,
    ) -> list[ApplyOutcome]:
        """Apply a batch; one outcome per interaction, in order. Idempotent per messageId.

        Two hooks let the caller work while Redis does (nothing here waits for them to be
        useful): ``on_outcome(index, outcome)`` is called once per interaction as soon as its
        outcome is known, most of them while Redis still runs the rest of the batch, and
        ``while_ranking(outcomes)`` once every outcome is known, while Redis updates the ranks.
        """
        outcomes: list[ApplyOutcome | None] = [None] * len(interactions)
        pending: list[_Job] = []
        for index, interaction in enumerate(interactions):
            job = self._plan(index, interaction)
            if job is None:
                outcomes[index] = self._unscored(interaction)
                if on_outcome is not None:
                    on_outcome(index, outcomes[index])  # type: ignore[arg-type]
            else:
                pending.append(job)
        while pending:
            pending = await self._round(pending, outcomes, on_outcome)
        done: list[ApplyOutcome] = []
        for index, outcome in enumerate(outcomes):
            if outcome is None:  # defensive: every job settles with an outcome
                outcome = self._unscored(interactions[index])
                if on_outcome is not None:
                    on_outcome(index, outcome)
            done.append(outcome)
        await self._update_ranks(
            done, None if while_ranking is None else lambda: while_ranking(done)
        )
        return done

    def _plan(self, index: int, interaction: Interaction) -> _Job | None:
        tenant = interaction.tenantId
        if interaction.type in ("identify", "alias") and interaction.userId:
            source = merge_source(interaction)
            if source and source != interaction.userId:
                return _Job(index, interaction, tenant, interaction.userId, "take", source=source)
            return None
        scored = event_points(interaction, self.rules)
        if scored is None:
            return None
        candidate = interaction.userId or f"anon:{interaction.anonymousId}"
        return _Job(index, interaction, tenant, candidate, "apply", event=scored)

    def _unscored(self, interaction: Interaction) -> ApplyOutcome:
        candidate = interaction.userId or f"anon:{interaction.anonymousId}"
        return ApplyOutcome(
            outcome="unscored",
            tenant_id=interaction.tenantId,
            candidate_id=candidate,
            message_id=interaction.messageId,
            event=interaction.event or interaction.type,
            rules_version=self.rules.version,
        )

    async def _round(
        self,
        jobs: list[_Job],
        outcomes: list[ApplyOutcome | None],
        on_outcome: OnOutcome | None,
    ) -> list[_Job]:
        commands = [self._command(job) for job in jobs]
        follow: list[_Job] = []

        def settle(k: int, result: Any) -> None:  # as each reply arrives, while Redis goes on
            job = jobs[k]
            follow.extend(self._settle(job, result, outcomes))
            outcome = outcomes[job.index]
            if on_outcome is not None and outcome is not None:
                on_outcome(job.index, outcome)

        await run_pipelined(self.redis, commands, self._sources, on_reply=settle)
        return follow

    def _command(self, job: _Job) -> Command:
        if job.event is not None:
            base = self.keys.candidate_base(job.tenant, job.candidate)
            keys = (f"{base}:p", f"{base}:d", f"{base}:k", f"{base}:c")
            sha = self._scripts["apply"].sha
            return ("EVALSHA", sha, 4, *keys, *event_args(job.event, self._window))
        if job.stage == "take":
            src = self.keys.candidate(job.tenant, job.source or "")
            sha = self._scripts["merge_take"].sha
            return ("EVALSHA", sha, 3, src.profile, src.caps, src.contributions, job.candidate)
        dst = self.keys.candidate(job.tenant, job.candidate)
        keys = (dst.profile, dst.merged, dst.caps, dst.contributions)
        return ("EVALSHA", self._scripts["merge_add"].sha, 4, *keys, *job.frozen)

    def _settle(
        self, job: _Job, result: list[Any], outcomes: list[ApplyOutcome | None]
    ) -> list[_Job]:
        kind = text(result[0])
        if kind == "redirect":
            if job.hops >= MAX_HOPS:
                outcomes[job.index] = self._outcome(job, "conflict", None, None)
                return []
            target = text(result[1])
            redirected = job.redirected_from or job.candidate
            return [replace(job, candidate=target, redirected_from=redirected, hops=job.hops + 1)]
        if job.stage == "take":
            return self._after_take(job, kind, result, outcomes)
        before, after = parse_replies(kind, result, self.rules)
        outcome: Outcome = kind  # type: ignore[assignment]
        outcomes[job.index] = self._outcome(job, outcome, before, after)
        return []

    def _after_take(
        self, job: _Job, kind: str, result: list[Any], outcomes: list[ApplyOutcome | None]
    ) -> list[_Job]:
        source_state = parse_snapshot(result[1], self.rules)
        if kind == "conflict":
            outcomes[job.index] = self._outcome(job, "conflict", None, None, source_state)
            return []
        frozen = frozen_args(job.source or "", result)
        return [replace(job, stage="add", frozen=frozen, source_state=source_state)]

    def _outcome(
        self,
        job: _Job,
        outcome: Outcome,
        before: Snapshot | None,
        after: Snapshot | None,
        source_state: Snapshot | None = None,
    ) -> ApplyOutcome:
        event = job.event.event if job.event else job.interaction.type
        return ApplyOutcome(
            outcome=outcome,
            tenant_id=job.tenant,
            candidate_id=job.candidate,
            message_id=job.interaction.messageId,
            event=event,
            rules_version=self.rules.version,
            before=before,
            after=after,
            redirected_from=job.redirected_from if job.event else None,
            merged_from=job.source,
            merged_source=source_state or job.source_state,
        )

    async def _update_ranks(
        self, outcomes: list[ApplyOutcome], meanwhile: Callable[[], None] | None = None
    ) -> None:
        latest: dict[tuple[str, str], Snapshot] = {}
        for o in outcomes:
            for cand, snap in ((o.candidate_id, o.after), (o.merged_from, o.merged_source)):
                if cand is None or snap is None or snap.sequence == 0:
                    continue
                seen = latest.get((o.tenant_id, cand))
                if seen is None or snap.sequence > seen.sequence:
                    latest[(o.tenant_id, cand)] = snap
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
        await run_pipelined(self.redis, commands, self._sources, meanwhile=meanwhile)

    async def update_rank(self, tenant_id: str, candidate_id: str, snapshot: Snapshot) -> bool:
        """Put a stored state into the tier sets; False (no change) unless its sequence is newer."""
        applied = await self._scripts["rank"](
            keys=self._rank_keys(tenant_id), args=self._rank_args(candidate_id, snapshot)
        )
        return bool(applied)

    def _rank_args(self, cand: str, snap: Snapshot) -> list[Any]:
        tier = 0 if snap.merged_into else self._tier_number[snap.tier]
        rank = rank_key(snap.raw, snap.as_of or 0.0, self.rules.half_life_seconds)
        return [cand, snap.sequence, tier, repr(rank)]

    def _rank_keys(self, tenant: str) -> list[str]:
        tiers = [self.keys.tier_set(tenant, name) for name in self.rules.tier_names]
        return [self.keys.sequences(tenant), *tiers]

    async def erase(self, tenant_id: str, candidate_id: str) -> Erasure:
        """Remove every key of the candidate and of ids merged into it (transitively). Idempotent."""
        keys = self.keys.candidate(tenant_id, candidate_id)
        seq, removed, merged_raw = await self._scripts["erase"](keys=list(keys.all), args=[])
        todo, seen = [text(m) for m in merged_raw], {candidate_id}
        while todo:  # ids merged into merged ids too (alias chains)
            anon = todo.pop()
            if anon in seen:
                continue
            seen.add(anon)
            _s, more, nested = await self._scripts["erase"](
                keys=list(self.keys.candidate(tenant_id, anon).all), args=[]
            )
            removed += more
            todo.extend(text(m) for m in nested)
        merged = tuple(sorted(seen - {candidate_id}))
        for cand in (candidate_id, *merged):
            await self._scripts["rank"](keys=self._rank_keys(tenant_id), args=[cand, 0, -1, "0"])
        return Erasure(tenant_id, candidate_id, removed > 0, int(removed), int(seq), merged)

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

    async def tier_counts(self, tenant_id: str, now: float) -> dict[str, int]:
        """Candidates per tier at ``now`` (decay applied), lowest tier first."""
        return await rank_reads.tier_counts(self, tenant_id, now)

    async def decay_crossings(
        self, tenant_id: str, since: float, until: float
    ) -> list[TierCrossing]:
        """Candidates whose tier fell by decay alone during (since, until]."""
        return await rank_reads.decay_crossings(self, tenant_id, since, until)

    async def tenants(self) -> list[str]:
        """Every tenant id with scored candidates, sorted."""
        return sorted(text(t) for t in await self.redis.smembers(self.keys.tenants))
