"""The score store: exact scores in Redis, one Lua script per operation, pipelined in batches.

Key layout and how to read the tier sets: see ``engagement.redis_keys``. ``apply_batch`` does a
batch in three pipelined round trips (``transaction=False``): (1) every apply script and merge
step 1, (2) redirects of merged anonymous ids and merge step 2, (3) rank updates with sequence
compare-and-set. Every step is idempotent, so replaying a batch (after a crash) changes nothing.
A batch with merges first reads the ``merged_into`` links on their targets' paths (one round trip
per link followed) and refuses the merges that would close a loop (``engagement.identity``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import orjson
import redis.asyncio as aioredis

from engagement import pending_erasure, rank_reads
from engagement.identity import screen_merges
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
Stage = Literal["apply", "take", "add", "release"]
OnOutcome = Callable[[int, ApplyOutcome], None]
Link = tuple[str, str]  # (tenant, candidate)
REFUSALS = {
    "cycle": "the target already resolves to the source: they are one candidate, held by the source",
    "too_deep": f"the source would be more than {MAX_HOPS} redirects away from its candidate",
    "merged_elsewhere": "the source was already folded into another candidate",
}

log = logging.getLogger("engagement.store")


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
    marked: bool = False  # step 1 of this job marked the source (only then may it release it)
    refusal: str | None = None  # why a marked source is released (a key of REFUSALS)


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
            for name in ("apply", "merge_take", "merge_add", "merge_release", "erase", "rank")
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
        pending = await self._screen(pending, outcomes, on_outcome)
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

    async def _screen(
        self, jobs: list[_Job], outcomes: list[ApplyOutcome | None], on_outcome: OnOutcome | None
    ) -> list[_Job]:
        """The jobs that go ahead: merges that would close a loop or a too long chain settle as
        conflicts before anything is written (decided in batch order, as if one by one)."""
        merges = [job for job in jobs if job.stage == "take"]
        if not merges:
            return jobs
        links = await self._merge_links(merges)
        pairs = [((job.tenant, job.source or ""), (job.tenant, job.candidate)) for job in merges]
        verdicts = screen_merges(pairs, links, max_depth=MAX_HOPS - 1)
        refused: set[int] = set()
        for job, verdict in zip(merges, verdicts, strict=True):
            if verdict != "go":
                refused.add(job.index)
                self._refuse(job, verdict, outcomes, at="screen")
                if on_outcome is not None:
                    on_outcome(job.index, outcomes[job.index])  # type: ignore[arg-type]
        return [job for job in jobs if job.index not in refused]

    async def _merge_links(self, merges: list[_Job]) -> dict[Link, Link | None]:
        """``merged_into`` of every merge's source and of the ids on its target's path, up to
        MAX_HOPS - 1 links from the target (one pipelined round trip per link followed)."""
        links: dict[Link, Link | None] = {}
        path = {(job.tenant, job.candidate) for job in merges}
        ask = path | {(job.tenant, job.source or "") for job in merges}
        for _ in range(MAX_HOPS):
            missing = sorted(ask - links.keys())
            profiles = [("HGET", self.keys.candidate(*link).profile, "m") for link in missing]
            replies = await run_pipelined(self.redis, profiles, self._sources) if missing else []
            for (tenant, candidate), reply in zip(missing, replies, strict=True):
                links[(tenant, candidate)] = None if reply is None else (tenant, text(reply))
            ask = path = {nxt for node in path if (nxt := links[node]) is not None}
        return links

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
        src = self.keys.candidate(job.tenant, job.source or "")
        if job.stage == "take":
            keys = (src.profile, src.caps, src.contributions, src.merged)
            return ("EVALSHA", self._scripts["merge_take"].sha, 4, *keys, job.candidate)
        if job.stage == "release":
            target = job.interaction.userId or ""
            return ("EVALSHA", self._scripts["merge_release"].sha, 1, src.profile, target)
        dst = self.keys.candidate(job.tenant, job.candidate)
        keys = (dst.profile, dst.merged, dst.caps, dst.contributions)
        return ("EVALSHA", self._scripts["merge_add"].sha, 4, *keys, *job.frozen)

    def _settle(
        self, job: _Job, result: list[Any], outcomes: list[ApplyOutcome | None]
    ) -> list[_Job]:
        kind = text(result[0])
        if kind == "redirect":
            return self._redirect(job, text(result[1]), outcomes)
        if job.stage == "take":
            return self._after_take(job, kind, result, outcomes)
        if job.stage == "release":
            return self._refuse(job, job.refusal or "cycle", outcomes, result[1], "merge_release")
        before, after = parse_replies(kind, result, self.rules)
        outcome: Outcome = kind  # type: ignore[assignment]
        outcomes[job.index] = self._outcome(job, outcome, before, after)
        return []

    def _redirect(self, job: _Job, target: str, outcomes: list[ApplyOutcome | None]) -> list[_Job]:
        if job.stage == "add" and (target == job.source or job.hops >= MAX_HOPS):
            # only a merge racing on another worker (or a chain grown since _screen) gets here
            refusal = "cycle" if target == job.source else "too_deep"
            if job.marked:  # nothing of the source was added anywhere: undo step 1
                return [replace(job, stage="release", refusal=refusal)]
            return self._refuse(job, refusal, outcomes, at="merge_add")
        if job.hops >= MAX_HOPS:
            outcomes[job.index] = self._outcome(job, "conflict", None, None)
            fields: dict[str, Any] = {"event": "store.redirect_conflict", "tenant": job.tenant}
            fields |= {"candidate": job.redirected_from, "messageId": job.interaction.messageId}
            log.warning("event not scored: %s", orjson.dumps(fields).decode(), extra=fields)
            return []
        redirected = job.redirected_from or job.candidate
        return [replace(job, candidate=target, redirected_from=redirected, hops=job.hops + 1)]

    def _after_take(
        self, job: _Job, kind: str, result: list[Any], outcomes: list[ApplyOutcome | None]
    ) -> list[_Job]:
        if kind == "conflict":
            return self._refuse(job, "merged_elsewhere", outcomes, result[1], "merge_take")
        frozen = frozen_args(job.source or "", result)
        source_state = parse_snapshot(result[1], self.rules)
        marked = kind == "taken"
        return [replace(job, stage="add", frozen=frozen, source_state=source_state, marked=marked)]

    def _refuse(
        self,
        job: _Job,
        refusal: str,
        outcomes: list[ApplyOutcome | None],
        source_snapshot: Any = None,
        at: str = "screen",
    ) -> list[_Job]:
        """Settle a merge as a conflict (nothing of the source moved); log why and where."""
        target = job.interaction.userId or ""
        state = None if source_snapshot is None else parse_snapshot(source_snapshot, self.rules)
        job = replace(job, candidate=target, source_state=None)
        outcomes[job.index] = self._outcome(job, "conflict", None, None, state)
        fields: dict[str, Any] = {"event": "store.merge_refused", "reason": refusal}
        fields |= {"why": REFUSALS[refusal], "tenant": job.tenant, "source": job.source}
        fields |= {"target": target, "messageId": job.interaction.messageId, "at": at}
        log.warning("identity merge refused: %s", orjson.dumps(fields).decode(), extra=fields)
        return []

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
        """Remove every key of the candidate and of ids merged into it (transitively), and their
        ranks. Idempotent, and complete when repeated after a failure at any point: the merged ids
        and the last sequence are recorded first in a pending erasure, which outlives the keys
        (``erasure_published`` deletes it), so a retry returns them again."""
        last_sequence, merged = await pending_erasure.record(
            self.redis, self.keys, tenant_id, candidate_id
        )
        todo, removed = [candidate_id, *merged], 0
        while todo:
            keys = self.keys.candidate(tenant_id, todo.pop())
            _seq, count, nested = await self._scripts["erase"](keys=list(keys.all), args=[])
            removed += int(count)
            late = {text(m) for m in nested} - {candidate_id, *merged}
            if late:  # merged in after ``record`` looked (a concurrent identify or alias)
                last_sequence, merged = await pending_erasure.record(
                    self.redis, self.keys, tenant_id, candidate_id, late
                )
                todo.extend(late)
        for cand in (candidate_id, *merged):
            await self._scripts["rank"](keys=self._rank_keys(tenant_id), args=[cand, 0, -1, "0"])
        return Erasure(tenant_id, candidate_id, removed > 0, removed, last_sequence, merged)

    async def erasure_published(self, erasure: Erasure) -> None:
        """Forget the pending erasure once Kafka acknowledged all of its records. Idempotent."""
        await pending_erasure.forget(self.redis, self.keys, erasure)

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
