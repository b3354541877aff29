"""The rank round of ``ScoreStore.apply_batch`` (its third pipelined round, once every outcome of
the batch is known): each candidate's newest state of the batch into its tenant's tier sets (one
rank script call per tenant: sequence compare-and-set, so a replayed older state never moves a
rank back), the tenant list, the anonymous index (``ZADD GT``), the quiet index
(``engagement.store.quiet``) and each job's tier sets (``engagement.store.job_store``: one
rank_jobs call per tenant)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis.commands.core import AsyncScript

from engagement.model.identity import ANONYMOUS
from engagement.model.jobs import JobState
from engagement.model.rules import Rules
from engagement.model.score_views import ApplyOutcome, Snapshot
from engagement.store import job_store as jobs
from engagement.store import quiet
from engagement.store.connection import RedisClient
from engagement.store.redis_keys import KeyLayout
from engagement.store.store_scripts import Command, run_pipelined


class RankRound:
    """The rank round of ``engagement.store.redis_store.ScoreStore``, which sets these."""

    redis: RedisClient
    keys: KeyLayout
    rules: Rules
    _scripts: dict[str, AsyncScript]
    _sources: dict[str, str]

    def _rank_args(self, cand: str, snap: Snapshot) -> list[Any]:
        raise NotImplementedError

    def _rank_keys(self, tenant: str) -> list[str]:
        raise NotImplementedError

    async def run_rank(self, keys: list[str], args: list[Any]) -> int:
        raise NotImplementedError

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
        commands += jobs.rank_commands(self, job_states, self._scripts["rank_jobs"].sha)
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
