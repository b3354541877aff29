"""The decay sweep of job alerts: range queries on each watched job's tier sets, as the tenant's.

A job's tier sets hold rank keys like the tenant's (``P{T}:jobtier:<tier>:<J>``, the candidate's
sequence of each state in ``P{T}:jobseq:<J>``), so ``services.notifier.sweep.crossings`` finds
who fell below a job tier's exit in (watermark, now]. Only the jobs the notifier watches are
swept (``JobNotifiedStore.watched``): the score-record handler watches a job until the last
instant a candidate it saw above the floor falls below the lowest exit, so a tenant's idle jobs
cost nothing. The job sweep has its own per-tenant watermark, moved only after the tenant's job
alerts are out; a job whose deadline is behind it is no longer watched.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from engagement.model.alerts import tier_level
from engagement.model.decisions import decide_swept
from engagement.model.job_alerts import JobKey, job_alerts, job_rules
from engagement.model.records import JobAlert
from engagement.model.rules import Rules
from engagement.store.connection import RedisClient
from engagement.store.redis_keys import KeyLayout
from services.notifier.announce import DecidedJobs, settle_jobs
from services.notifier.job_state import JobNotifiedStore, LoadedJobs
from services.notifier.publisher import AlertPublisher
from services.notifier.sweep import Hit, crossings


@dataclass
class JobSweep:
    """Sweeps the watched jobs of a tenant; run by ``DecaySweep`` under its lock."""

    redis: RedisClient
    layout: KeyLayout
    state: JobNotifiedStore
    publisher: AlertPublisher
    layout_for: Callable[[str], KeyLayout] | None = None  # the tenant's generation's keys

    def _layout(self, tenant: str) -> KeyLayout:
        return self.layout if self.layout_for is None else self.layout_for(tenant)

    async def tenant(self, tenant: str, now: float, rules: Rules) -> list[JobAlert]:
        """Announce the decay crossings of the tenant's watched jobs up to ``now``."""
        since = await self.state.watermark(tenant)
        since = -math.inf if since is None else since
        if since >= now:
            return []
        job_tiers = job_rules(rules)
        alerts: list[JobAlert] = []
        for job in await self.state.watched(tenant, since):

            def sets(name: str, job: str = job) -> str:
                return self._layout(tenant).job_tier_set(tenant, job, name)

            async for hits in crossings(
                self.redis, self._layout(tenant), job_tiers, tenant, since, now, sets=sets
            ):
                alerts += await self._decide(tenant, job, hits, now, job_tiers)
        await self.state.unwatch(tenant, since)
        await self.state.set_watermark(tenant, now)
        return alerts

    async def _decide(
        self, tenant: str, job: str, hits: dict[str, Hit], now: float, rules: Rules
    ) -> list[JobAlert]:
        """Decide each candidate found in a crossing range of the job from its job profile as
        the store holds it, read with its announced state (as the candidates' sweep does:
        ``services.notifier.sweep``)."""
        moment = datetime.fromtimestamp(now, UTC)

        def decide(loaded: LoadedJobs) -> tuple[DecidedJobs, list[JobAlert]]:
            decided: DecidedJobs = {}
            alerts: list[JobAlert] = []
            for key, known in loaded.states.items():
                cand = key[0].split(":", 1)[1]
                found = decide_swept(tenant, cand, loaded.stored.get(key), known, rules, moment)
                if found.state is not None:
                    decided[key] = (found.state, tier_level(rules, found.state.tier))
                    alerts += job_alerts(found.alerts, job)
            return decided, alerts

        keys: list[JobKey] = [(f"{tenant}:{cand}", job) for cand in sorted(hits)]
        published, _ = await settle_jobs(self.state, self.publisher, keys, decide)
        return published
