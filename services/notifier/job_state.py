"""Redis state of the notifier's job alerts: the job tier announced per (candidate, job) with its
outbox, the jobs the decay sweep looks at, and the job sweep's watermark.

Keys (``engagement.store.redis_keys``): ``{prefix}{tenant:candidate}:notified:jobs`` (hash, in the
candidate's slot: ``<job>`` → ``seq␟level␟tier``, ``<job>␟p`` → the alerts that state announced,
until they are published: the outbox; ␟ = \\x1f, which no job id holds), ``{prefix}{tenant}:sweepjobs``
(zset: job → the latest instant a candidate of it the notifier announced above the floor falls
below the lowest exit: after it, the job's tier sets hold no crossing the sweep has not seen) and
``{prefix}{notifier}:sweep:job-watermark`` (hash tenant → epoch s).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engagement.model.alerts import Notified
from engagement.model.decisions import Stored
from engagement.model.job_alerts import JobKey
from engagement.store.connection import RedisClient
from engagement.store.redis_keys import KeyLayout
from engagement.store.store_scripts import Command, run_pipelined, text
from services.notifier.state import Writes

# The job's state as services.notifier.state's _CAS writes a candidate's: only over the very
# state it was decided from (ARGV[6], ARGV[7]: its sequence and tier as loaded; '' for none), never
# with an older sequence, with the alerts it announces as the job's outbox. Returns 1 when
# written, -1 when the stored state is no longer the one decided from, 0 when refused as it stands.
_CAS = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local oseq, otier = '', ''
if cur then oseq, otier = string.match(cur, '^([^\\31]*)\\31[^\\31]*\\31(.*)$') end
if oseq ~= ARGV[6] or otier ~= ARGV[7] then return -1 end
if cur and tonumber(ARGV[2]) < tonumber(oseq) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '\\31' .. ARGV[4] .. '\\31' .. ARGV[3])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], ARGV[1] .. '\\31p', ARGV[5]) end
return 1
"""

# Empty a job's outbox once its alerts are published (unless another write replaced it).
_CLEAR = """
if redis.call('HGET', KEYS[1], ARGV[1] .. '\\31p') == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1] .. '\\31p')
end
return 0
"""

PENDING = "\x1fp"


@dataclass(frozen=True)
class LoadedJobs:
    """What the notifier stored of some (candidate, job) pairs: the tier it announced, the
    alerts it stored with it but may not have published (JSON), and the scorer's job profile."""

    states: dict[JobKey, Notified | None]
    pending: dict[JobKey, bytes]
    stored: dict[JobKey, Stored]  # the job's profile as the scorer's store holds it now


class JobNotifiedStore:
    """Per (candidate, job) announced tier with sequence compare-and-set, and the sweep's index."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        prefix: str,
        tiers_of: Callable[[str], Sequence[str]] | None = None,
        layout_for: Callable[[str], KeyLayout] | None = None,
    ) -> None:
        self._redis = redis
        self._keys = KeyLayout(prefix)
        self._tiers_of = tiers_of  # a tenant's job tier names, lowest first (the profile's ``g``)
        self._layout_for = layout_for  # the keys of a tenant's generation (the scorer's profiles)
        self._cas = redis.register_script(_CAS)
        self._clear = redis.register_script(_CLEAR)
        self._sources = {str(s.sha): str(s.script) for s in (self._cas, self._clear)}

    def key(self, candidate_key: str) -> str:
        """The job states' hash of ``tenant:candidate``."""
        return self._keys.notified_jobs(candidate_key)

    def profiles(self, candidate_key: str) -> str:
        """The scorer's job profiles of ``tenant:candidate`` (``engagement.store.job_store``)."""
        tenant, candidate = candidate_key.split(":", 1)
        layout = self._keys if self._layout_for is None else self._layout_for(tenant)
        return layout.candidate(tenant, candidate).jobs

    async def load(self, keys: Iterable[JobKey]) -> LoadedJobs:
        """The stored state and outbox of each (candidate, job), and its job profile: one
        pipelined round trip."""
        jobs: dict[str, list[str]] = defaultdict(list)
        for candidate_key, job in dict.fromkeys(keys):
            jobs[candidate_key].append(job)
        async with self._redis.pipeline(transaction=False) as pipe:
            for candidate_key, theirs in jobs.items():
                pipe.hmget(
                    self.key(candidate_key), [f for job in theirs for f in (job, job + PENDING)]
                )
                pipe.hmget(self.profiles(candidate_key), theirs)  # the same slot
            rows = await pipe.execute()
        loaded = LoadedJobs({}, {}, {})
        for (candidate_key, theirs), ours, profiles in zip(
            jobs.items(), rows[0::2], rows[1::2], strict=True
        ):
            for k, job in enumerate(theirs):
                state, outbox, profile = ours[2 * k], ours[2 * k + 1], profiles[k]
                key = (candidate_key, job)
                loaded.states[key] = None if state is None else _notified(state)
                if outbox:
                    loaded.pending[key] = bytes(outbox)
                if profile is not None:
                    loaded.stored[key] = self._stored(candidate_key, profile)
        return loaded

    def _stored(self, candidate_key: str, packed: bytes) -> Stored:
        """A job profile (``t␟r␟e␟a␟i␟g␟s``, lua/job_profile.lua) as the decisions take it."""
        t, r, _e, _a, _i, g, seq = text(packed).split("\x1f")
        tiers = [] if self._tiers_of is None else list(self._tiers_of(candidate_key.split(":")[0]))
        tier = tiers[min(max(int(g) - 1, 0), len(tiers) - 1)] if tiers else None
        return Stored(int(seq), float(r), float(t), tier)

    async def store(
        self,
        states: Mapping[JobKey, tuple[Notified, int, bytes]],
        *,
        base: Mapping[JobKey, Notified | None],
    ) -> Writes[JobKey]:
        """Write (state, level, pending alerts) per (candidate, job) over the state it was
        decided from (``base``: as loaded; a pair missing from it is taken to have none); the
        pairs written, and those whose stored state is no longer the one decided from."""
        keys = list(states)
        commands: list[Command] = []
        for candidate_key, job in keys:
            state, level, pending = states[(candidate_key, job)]
            was = base.get((candidate_key, job))
            expected = ("", "") if was is None else (was.sequence, was.tier)
            args = (job, state.sequence, state.tier, level, pending, *expected)
            commands.append(("EVALSHA", self._cas.sha, 1, self.key(candidate_key), *args))
        results = await run_pipelined(self._redis, commands, self._sources) if commands else []
        outcomes = dict(zip(keys, results, strict=True))
        return Writes(
            written={key for key, result in outcomes.items() if result == 1},
            moved={key for key, result in outcomes.items() if result == -1},
        )

    async def erase(self, candidate_keys: Iterable[str]) -> None:
        """Forget every job state of these candidates (erased)."""
        commands: list[Command] = [("DEL", self.key(key)) for key in candidate_keys]
        if commands:
            await run_pipelined(self._redis, commands, self._sources)

    async def clear_pending(self, pending: Mapping[JobKey, bytes]) -> None:
        """Empty each job's outbox, unless it holds other alerts by now."""
        sha = self._clear.sha
        commands: list[Command] = [
            ("EVALSHA", sha, 1, self.key(candidate_key), job, value)
            for (candidate_key, job), value in pending.items()
        ]
        if commands:
            await run_pipelined(self._redis, commands, self._sources)

    # --- the decay sweep's jobs -------------------------------------------------------------

    async def watch(self, deadlines: Mapping[tuple[str, str], float]) -> None:
        """Have the sweep look at each (tenant, job) until at least its deadline (``ZADD GT``)."""
        by_tenant: dict[str, list[Any]] = defaultdict(list)
        for (tenant, job), deadline in deadlines.items():
            by_tenant[tenant] += [repr(deadline), job]
        commands: list[Command] = [
            ("ZADD", self._keys.sweep_jobs(tenant), "GT", *args)
            for tenant, args in by_tenant.items()
        ]
        if commands:
            await run_pipelined(self._redis, commands, self._sources)

    async def watched(self, tenant: str, since: float) -> list[str]:
        """The tenant's jobs whose deadline is not before ``since``."""
        low = "-inf" if since == float("-inf") else repr(since)
        jobs = await self._redis.zrange(self._keys.sweep_jobs(tenant), low, "+inf", byscore=True)
        return [text(job) for job in jobs]

    async def unwatch(self, tenant: str, before: float) -> None:
        """Stop looking at the jobs whose deadline is before ``before`` (swept past it)."""
        if before != float("-inf"):
            await self._redis.zremrangebyscore(
                self._keys.sweep_jobs(tenant), "-inf", f"({before!r}"
            )

    async def watermark(self, tenant: str) -> float | None:
        """The time (epoch s) up to which ``tenant``'s jobs have been swept."""
        raw = await self._redis.hget(self._keys.notifier_sweep("job-watermark"), tenant)
        return float(raw) if raw is not None else None

    async def set_watermark(self, tenant: str, until: float) -> None:
        """Record that ``tenant``'s jobs have been swept up to ``until`` (epoch s)."""
        await self._redis.hset(self._keys.notifier_sweep("job-watermark"), tenant, repr(until))


def _notified(value: bytes | str) -> Notified:
    seq, _level, tier = text(value).split("\x1f", 2)
    return Notified(tier, int(seq))
