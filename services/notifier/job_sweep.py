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

from engagement.model.alerts import Notified, tier_level
from engagement.model.job_alerts import JobKey, decide_job_decay, job_rules
from engagement.model.records import JobAlert
from engagement.model.rules import Rules
from engagement.store.connection import RedisClient
from engagement.store.redis_keys import KeyLayout
from services.notifier.announce import announce_jobs, recover_jobs
from services.notifier.job_state import JobNotifiedStore
from services.notifier.publisher import AlertPublisher
from services.notifier.sweep import Hit, crossings, decayed_hit


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
        ids = sorted(hits)
        sequences = await self.redis.hmget(self._layout(tenant).job_sequences(tenant, job), ids)
        keys: list[JobKey] = [(f"{tenant}:{cand}", job) for cand in ids]
        loaded = await self.state.load(keys)
        await recover_jobs(self.state, self.publisher, loaded.pending)
        moment = datetime.fromtimestamp(now, UTC)
        alerts: list[JobAlert] = []
        writes: dict[JobKey, tuple[Notified, int]] = {}
        for cand, key, seq in zip(ids, keys, sequences, strict=True):
            if seq is None:
                continue  # left the job meanwhile
            found = decayed_hit(tenant, hits[cand], int(seq), now, rules)
            found_alerts, state = decide_job_decay(found, job, loaded.states[key], rules, moment)
            alerts += found_alerts
            if state is not None:
                writes[key] = (state, tier_level(rules, state.tier))
        return await announce_jobs(self.state, self.publisher, writes, alerts, mode="decay")
