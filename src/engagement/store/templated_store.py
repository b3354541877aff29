"""The score store with a template per tenant (``engagement.model.templates.Templates``).

A ``ScoreStore`` bakes one template into its Lua scripts (``store_scripts.config_block``), so a
tenant with its own template is scored by a ``ScoreStore`` of that template, sharing the Redis
client, the key layout and the erasure fences; ``TemplatedStore`` is the default template's store
and hands each tenant's work to the store of the template the tenant has now.

Invariant: every operation of one batch (and every read) of a tenant uses one template, the one
``Templates.rules_for`` gave when the operation started; a version activated meanwhile applies
from the next batch. Tenants without a template of their own — all of them, in a deployment
that sets none — go through the default store exactly as before (one check per batch).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engagement.model.records import Interaction
from engagement.model.rules import Rules
from engagement.model.score_views import (
    ApplyOutcome,
    CandidateView,
    Erasure,
    LeaderboardPage,
    Snapshot,
)
from engagement.model.templates import Templates
from engagement.store.connection import RedisClient
from engagement.store.redis_keys import CandidateKeys, KeyLayout
from engagement.store.redis_store import ScoreStore
from engagement.store.store_jobs import OnOutcome


@dataclass(frozen=True)
class GenerationLayout(KeyLayout):
    """``KeyLayout`` whose tenant and candidate keys are those of one generation of a tenant's
    keys (``P`` + ``g<n>``); generation 0 is the plain layout. Global keys are unchanged."""

    generation: int = 0

    @property
    def _scoped(self) -> KeyLayout:
        return KeyLayout(f"{self.prefix}g{self.generation}" if self.generation else self.prefix)

    def candidate(self, tenant_id: str, candidate_id: str) -> CandidateKeys:
        """The candidate's keys in this generation."""
        return self._scoped.candidate(tenant_id, candidate_id)

    def candidate_base(self, tenant_id: str, candidate_id: str) -> str:
        """The common start of the candidate's keys in this generation."""
        return self._scoped.candidate_base(tenant_id, candidate_id)

    def pending_erasure(self, tenant_id: str, candidate_id: str) -> str:
        """The candidate's pending erasure in this generation."""
        return self._scoped.pending_erasure(tenant_id, candidate_id)

    def tier_set(self, tenant_id: str, tier: str) -> str:
        """The tier set in this generation."""
        return self._scoped.tier_set(tenant_id, tier)

    def sequences(self, tenant_id: str) -> str:
        """The tenant's sequence hash in this generation."""
        return self._scoped.sequences(tenant_id)

    def job_tier_set(self, tenant_id: str, job_id: str, tier: str) -> str:
        """The job tier set in this generation."""
        return self._scoped.job_tier_set(tenant_id, job_id, tier)

    def job_sequences(self, tenant_id: str, job_id: str) -> str:
        """The job's sequence hash in this generation."""
        return self._scoped.job_sequences(tenant_id, job_id)

    def jobs(self, tenant_id: str) -> str:
        """The tenant's job list in this generation: a rebuild's replay (also one of an attempt
        given up) lists the jobs it rescored there, never in the live list."""
        return self._scoped.jobs(tenant_id)

    def anonymous(self, tenant_id: str) -> str:
        """The tenant's anonymous candidates in this generation."""
        return self._scoped.anonymous(tenant_id)


def tenant_layouts(prefix: str, templates: Templates) -> Callable[[str], KeyLayout]:
    """The key layout of each tenant's generation now: how the notifier and the read API find a
    tenant's keys after ``engagement rebuild --tenant`` moved it to a new generation."""
    layouts: dict[int, KeyLayout] = {}

    def layout(tenant_id: str) -> KeyLayout:
        generation = templates.generation(tenant_id)
        found = layouts.get(generation)
        if found is None:
            found = layouts[generation] = GenerationLayout(prefix, generation)
        return found

    return layout


def handover_key(layout: KeyLayout, tenant_id: str, generation: int) -> str:
    """``activated`` or ``aborted``, whoever wrote it first: the rebuild making ``generation``
    the tenant's, or a live scorer that waited too long at its marker, or a scorer taking the
    rebuild over, fencing the earlier attempt off (``services.scorer.tenant_rebuild``,
    ``services.scorer.rebuild_runner``)."""
    return f"{layout.prefix}{{{tenant_id}}}:handover:{generation}"


def generation_store(base: ScoreStore, rules: Rules, generation: int, **options: Any) -> ScoreStore:
    """A ``ScoreStore`` of ``rules`` on generation ``generation`` of the keys of ``base``'s
    prefix, sharing its client, log key and fence cache."""
    prefix = base.keys.prefix
    store = ScoreStore(base.redis, prefix=prefix, rules=rules, **options)
    store.keys = GenerationLayout(prefix, generation)
    store.log_key = base.log_key
    store._fences = base._fences  # one fence cache: the fences are global
    return store


class TemplatedStore(ScoreStore):
    """Scores each tenant with its own template, the default one for the others."""

    def __init__(
        self, redis: RedisClient, *, prefix: str, templates: Templates, **options: Any
    ) -> None:
        super().__init__(redis, prefix=prefix, rules=templates.default, **options)
        self.templates = templates
        self._options = options
        self._by_rules: dict[tuple[int, int], tuple[Rules, ScoreStore]] = {}

    def rules_for(self, tenant_id: str) -> Rules:
        """The rules the tenant is scored with now."""
        return self.templates.rules_for(tenant_id)

    def for_tenant(self, tenant_id: str) -> ScoreStore:
        """The store of the tenant's template and generation now (built once per pair)."""
        rules = self.templates.rules_for(tenant_id)
        generation = self.templates.generation(tenant_id)
        if rules is self.rules and generation == 0:
            return self
        found = self._by_rules.get((id(rules), generation))
        if found is not None and found[0] is rules:  # the entry keeps ``rules`` alive: no reuse
            return found[1]
        store = generation_store(self, rules, generation, **self._options)
        self._by_rules[(id(rules), generation)] = (rules, store)
        return store

    async def apply_batch(
        self,
        interactions: Iterable[Interaction],
        *,
        on_outcome: OnOutcome | None = None,
        while_ranking: Callable[[list[ApplyOutcome]], None] | None = None,
    ) -> list[ApplyOutcome]:
        """``ScoreStore.apply_batch`` per template: the interactions of the tenants of one
        template in one call, one call after the other; outcomes in the batch's order."""
        if not self.templates.own:
            return await ScoreStore.apply_batch(
                self, interactions, on_outcome=on_outcome, while_ranking=while_ranking
            )
        taken = list(interactions)
        groups: dict[int, tuple[ScoreStore, list[int]]] = {}
        for k, interaction in enumerate(taken):
            store = self.for_tenant(interaction.tenantId)
            groups.setdefault(id(store), (store, []))[1].append(k)
        parts = list(groups.values()) or [(self, [])]
        outcomes: list[ApplyOutcome | None] = [None] * len(taken)
        for n, (store, indexes) in enumerate(parts):
            last = n == len(parts) - 1
            done = await ScoreStore.apply_batch(
                store,
                [taken[k] for k in indexes],
                on_outcome=_remapped(on_outcome, indexes),
                while_ranking=_all_known(while_ranking, outcomes, indexes) if last else None,
            )
            for k, outcome in zip(indexes, done, strict=True):
                outcomes[k] = outcome
        return [o for o in outcomes if o is not None]

    async def get_candidate(
        self, tenant_id: str, candidate_id: str, now: float
    ) -> CandidateView | None:
        """``ScoreStore.get_candidate`` under the tenant's template."""
        return await ScoreStore.get_candidate(
            self.for_tenant(tenant_id), tenant_id, candidate_id, now
        )

    async def leaderboard(
        self,
        tenant_id: str,
        tier: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        *,
        now: float,
    ) -> LeaderboardPage:
        """``ScoreStore.leaderboard`` under the tenant's template."""
        store = self.for_tenant(tenant_id)
        return await ScoreStore.leaderboard(store, tenant_id, tier, limit, cursor, now=now)

    async def tier_counts(self, tenant_id: str, now: float) -> dict[str, int]:
        """``ScoreStore.tier_counts`` under the tenant's template."""
        return await ScoreStore.tier_counts(self.for_tenant(tenant_id), tenant_id, now)

    async def update_ranks(self, tenant_id: str, states: Sequence[tuple[str, Snapshot]]) -> int:
        """``ScoreStore.update_ranks`` under the tenant's template."""
        return await ScoreStore.update_ranks(self.for_tenant(tenant_id), tenant_id, states)

    async def keep_sequences(self, tenant_id: str, sequences: Sequence[tuple[str, int]]) -> None:
        """``ScoreStore.keep_sequences`` under the tenant's template."""
        await ScoreStore.keep_sequences(self.for_tenant(tenant_id), tenant_id, sequences)

    async def idle_anonymous(self, tenant_id: str, *, before: float, limit: int) -> list[str]:
        """``ScoreStore.idle_anonymous`` on the tenant's generation."""
        store = self.for_tenant(tenant_id)
        return await ScoreStore.idle_anonymous(store, tenant_id, before=before, limit=limit)

    async def still_idle(self, tenant_id: str, candidate_id: str, *, before: float) -> bool:
        """``ScoreStore.still_idle`` on the tenant's generation."""
        store = self.for_tenant(tenant_id)
        return await ScoreStore.still_idle(store, tenant_id, candidate_id, before=before)

    async def forget_idle(self, tenant_id: str, ids: Sequence[str], *, before: float) -> None:
        """``ScoreStore.forget_idle`` on the tenant's generation."""
        await ScoreStore.forget_idle(self.for_tenant(tenant_id), tenant_id, ids, before=before)

    async def prune_jobs(self, tenant_id: str, *, before: float) -> list[str]:
        """``ScoreStore.prune_jobs`` on the tenant's generation, under its template's job tiers."""
        return await ScoreStore.prune_jobs(self.for_tenant(tenant_id), tenant_id, before=before)

    async def erase(
        self, tenant_id: str, candidate_id: str, *, fence_at: datetime | None = None
    ) -> Erasure:
        """``ScoreStore.erase`` under the tenant's template (its tier sets)."""
        store = self.for_tenant(tenant_id)
        return await ScoreStore.erase(store, tenant_id, candidate_id, fence_at=fence_at)


def _remapped(on_outcome: OnOutcome | None, indexes: list[int]) -> OnOutcome | None:
    """``on_outcome`` of a group's outcome under its index in the whole batch."""
    if on_outcome is None:
        return None
    return lambda j, outcome: on_outcome(indexes[j], outcome)


def _all_known(
    while_ranking: Callable[[list[ApplyOutcome]], None] | None,
    outcomes: list[ApplyOutcome | None],
    indexes: list[int],
) -> Callable[[list[ApplyOutcome]], None] | None:
    """``while_ranking`` of the last group, called with the whole batch's outcomes."""
    if while_ranking is None:
        return None

    def call(done: list[ApplyOutcome]) -> None:
        for k, outcome in zip(indexes, done, strict=True):
            outcomes[k] = outcome
        while_ranking([o for o in outcomes if o is not None])

    return call
