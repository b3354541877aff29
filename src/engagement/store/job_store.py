"""(Candidate, job) profiles in the score store: their states out of the scripts' replies, the
per-job leaderboards (tier sets) they feed, a candidate's jobs, and leaving them on erasure.

The profiles live in the candidate's slot (``P{T:C}:j``), written by the same
script as the candidate's sums (``apply_job``, ``merge_add``: lua/job_profile.lua), so they are
exact and idempotent with them. Each job's leaderboard is one sorted set per job tier in the
tenant's slot, updated in ``ScoreStore.apply_batch``'s rank round, all the batch's jobs of a
tenant in one call of the rank_jobs script (lua/rank_lib.lua: sequence compare-and-set, the
candidate's sequence of the change). Layout:
``engagement.store.redis_keys``.

A job dropped as the candidate's weakest (past ``jobs_kept``) is logged in the same script
(``P{T:C}:jl``: job → the sequence of the drop, the newest ``jobs_kept``, until the candidate is
back in the job), and a replayed event naming a job (or a replayed merge that moved jobs) returns
the log beside the job's current state: the replay's record carries the drops its lost records
announced (a ``D`` entry at the drop's sequence), so the notifier cools a job the candidate left
and the job's tier sets lose the candidate even when the rank round of the lost batch never ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from engagement.model.jobs import (
    CandidateJobs,
    JobsPage,
    JobState,
    JobSummary,
    JobView,
    parse_job_entries,
)
from engagement.model.rules import Rules
from engagement.model.scoring import decay, rank_key, score_of
from engagement.model.tiers import decayed_index
from engagement.store.connection import RedisClient
from engagement.store.merge_store import MAX_HOPS
from engagement.store.rank_reads import ScoreStore as Ranked
from engagement.store.rank_reads import decode_cursor, encode_cursor, jobs_tier_counts
from engagement.store.redis_keys import KeyLayout
from engagement.store.store_jobs import Job
from engagement.store.store_scripts import Command, text

JobKey = tuple[str, str, str]  # (tenant, job, candidate)


class JobStore(Protocol):
    """What the job parts need of ``engagement.store.redis_store.ScoreStore``."""

    redis: RedisClient
    keys: KeyLayout
    rules: Rules

    async def run_rank(self, keys: list[str], args: list[Any]) -> int: ...


class ErasingStore(JobStore, Protocol):
    """What an erasure's ``forget`` needs besides: the rank_jobs script."""

    async def run_rank_jobs(self, keys: list[str], args: list[Any]) -> int: ...


def states_of(store: JobStore, job: Job, kind: str, result: list[Any]) -> tuple[JobState, ...]:
    """The job states a settled apply or merge step 2 changed: its reply's job entries, and for a
    merge, the source leaving its jobs (their sums moved into the candidate's)."""
    names = store.rules.job_tier_names
    states = parse_job_entries(result[3], job.candidate, names) if len(result) > 3 else ()
    source = job.source_state
    if job.stage == "add" and kind in ("merged", "duplicate") and source is not None:
        leaving = (JobState(j, job.source or "", source.sequence) for j in job.source_jobs)
        states += tuple(leaving)
    return states


def keep_latest(latest: dict[JobKey, JobState], tenant: str, states: tuple[JobState, ...]) -> None:
    """Keep each (tenant, job, candidate)'s newest state of a batch in ``latest``."""
    for state in states:
        key = (tenant, state.job_id, state.candidate_id)
        seen = latest.get(key)
        if seen is None or state.sequence > seen.sequence:
            latest[key] = state


def rank_commands(store: JobStore, latest: dict[JobKey, JobState], sha: str) -> list[Command]:
    """Calls of the rank_jobs script (``sha``) putting each job's candidates' newest states into
    its tier sets (a removed state takes the candidate out, keeping its sequence): one per tenant
    and RANK_JOBS_PER_CALL jobs. Then one ``ZADD GT`` per tenant moving each job's latest event
    time in the tenant's job list."""
    by_tenant: dict[str, dict[str, list[Any]]] = {}
    seen: dict[str, dict[str, float]] = {}
    h = store.rules.half_life_seconds
    number = {name: k + 1 for k, name in enumerate(store.rules.job_tier_names)}
    for (tenant, job, candidate), state in latest.items():
        if state.tier is None:
            args: list[Any] = [candidate, state.sequence, 0, "0"]
        else:
            rank = rank_key(state.raw, state.as_of or 0.0, h)
            args = [candidate, state.sequence, number[state.tier], repr(rank)]
            at = seen.setdefault(tenant, {})
            at[job] = max(at.get(job, 0.0), state.as_of or 0.0)
        by_tenant.setdefault(tenant, {}).setdefault(job, []).extend(args)
    commands: list[Command] = [
        ("EVALSHA", sha, len(keys), *keys, *args)
        for tenant, jobs in by_tenant.items()
        for keys, args in rank_jobs_calls(store, tenant, list(jobs.items()))
    ]
    for tenant, times in seen.items():
        pairs = [x for job, t in times.items() for x in (repr(t), job)]
        commands.append(("ZADD", store.keys.jobs(tenant), "GT", *pairs))
    return commands


RANK_JOBS_PER_CALL = 100  # jobs per rank_jobs call: a batch's rank round never blocks Redis long


def rank_jobs_calls(
    store: JobStore, tenant: str, groups: list[tuple[str, list[Any]]]
) -> Iterator[tuple[list[str], list[Any]]]:
    """The keys and arguments of the rank_jobs calls for ``groups`` of one tenant (a job and its
    rank updates, 4 arguments each), RANK_JOBS_PER_CALL jobs per call."""
    tiers = len(store.rules.job_tier_names)
    for k in range(0, len(groups), RANK_JOBS_PER_CALL):
        keys: list[str] = []
        args: list[Any] = [tiers]
        for job, updates in groups[k : k + RANK_JOBS_PER_CALL]:
            keys += job_rank_keys(store, tenant, job)
            args += [len(updates) // 4, *updates]
        yield keys, args


def job_rank_keys(store: JobStore, tenant: str, job: str) -> list[str]:
    """The rank script's keys for one job: its sequence hash, then its tier sets, lowest first."""
    tiers = [store.keys.job_tier_set(tenant, job, name) for name in store.rules.job_tier_names]
    return [store.keys.job_sequences(tenant, job), *tiers]


async def forget(store: ErasingStore, tenant: str, ids: list[str]) -> None:
    """Take ``ids`` out of every job of the tenant's job list, its tier sets and its sequence
    hash (an erasure's job step, after the keys went: a rank round that ranked them meanwhile is
    undone too; the rank_jobs script's erase). Every job with tier sets or a sequence hash is in
    the list (pruning drops them together), so this also reaches the jobs a candidate left
    (dropped as its weakest, or merged into another: out of the tier sets, its sequence kept
    against replays of older states) and those an older release ranked it in
    (docs/operations.md §6). Idempotent."""
    key = store.keys.jobs(tenant)
    erase = [x for candidate in ids for x in (candidate, 0, -1, "0")]
    start = 0
    while True:
        jobs = await store.redis.zrange(key, start, start + RANK_JOBS_PER_CALL - 1)
        for keys, args in rank_jobs_calls(store, tenant, [(text(j), erase) for j in jobs]):
            await store.run_rank_jobs(keys, args)
        if len(jobs) < RANK_JOBS_PER_CALL:
            return
        start += RANK_JOBS_PER_CALL


async def candidate_jobs(
    store: JobStore, tenant: str, candidate: str, now: float, hops: int = 0
) -> CandidateJobs | None:
    """The candidate's job profiles decayed to ``now``, strongest first (ties: job id); follows
    merged anonymous ids to their candidate; None when it has no profile."""
    keys = store.keys.candidate(tenant, candidate)
    pipe = store.redis.pipeline(transaction=False)
    pipe.hmget(keys.profile, "t", "m")
    pipe.hgetall(keys.jobs)
    (t, merged_into), stored = await pipe.execute()
    if merged_into is not None and hops < MAX_HOPS:
        return await candidate_jobs(store, tenant, text(merged_into), now, hops + 1)
    if t is None:
        return None
    views = [_job_view(store.rules, text(job), text(packed), now) for job, packed in stored.items()]
    views.sort(key=lambda v: (-v.raw, v.job_id))
    return CandidateJobs(tenant, candidate, tuple(views), now)


def _job_view(rules: Rules, job: str, packed: str, now: float) -> JobView:
    t, r, e, a, i, g, _s = packed.split("\x1f")
    t_ref = float(t)
    dt, h = max(now, t_ref) - t_ref, rules.half_life_seconds
    raw = decay(float(r), dt, h)
    score = score_of(raw, rules.score_scale)
    tiers = rules.tiers_of_jobs
    tier = tiers[decayed_index(int(g) - 1, score, tiers)].name
    pillars = {"entrance": float(e), "activity": float(a), "interaction": float(i)}
    pillars = {name: decay(value, dt, h) for name, value in pillars.items()}
    return JobView(job, score, tier, raw, pillars, t_ref)


async def tenant_jobs(
    store: Ranked, tenant: str, limit: int, cursor: str | None, now: float
) -> JobsPage:
    """The tenant's jobs, most recently engaged first (the latest event time naming each, then
    the job id, both descending), keyset-paginated, each with its candidates per job tier at
    ``now``: one read of the job list, then a handful of ZCOUNTs per job, O(log n) each, all in
    one pipeline (one connection, one round trip, whatever the page's size)."""
    key = store.keys.jobs(tenant)
    after = decode_cursor(cursor) if cursor else None
    rows = await _jobs_after(store, key, after, limit + 1)
    page = rows[:limit]
    counts = await jobs_tier_counts(store, tenant, [text(j) for _, j in page], now)
    entries = tuple(
        JobSummary(text(job), t, tiers) for (t, job), tiers in zip(page, counts, strict=True)
    )
    more = len(rows) > limit and limit > 0
    next_cursor = encode_cursor(page[-1][0], page[-1][1]) if more else None
    return JobsPage(entries, next_cursor, now)


async def _jobs_after(
    store: Ranked, key: str, after: tuple[float, bytes] | None, limit: int
) -> list[tuple[float, bytes]]:
    """Up to ``limit`` (time, job) of the job list after the cursor ``after``, in list order."""
    if after is not None:
        following = await store.rank_after(key, after[1], after[0], limit)
        if following is not None:  # the cursor's job is where it was: read by position
            return following
    high = "+inf" if after is None else repr(after[0])  # else by time, from the cursor's
    out: list[tuple[float, bytes]] = []
    offset = 0
    while len(out) < limit:
        rows: list[Any] = await store.redis.zrange(
            key, high, "-inf", desc=True, byscore=True, offset=offset, num=limit + 1,
            withscores=True,
        )  # fmt: skip
        for job, t in rows:
            if after is None or t < after[0] or (t == after[0] and job < after[1]):
                out.append((float(t), job))
        if len(rows) < limit + 1:
            break
        offset += len(rows)
    return out[:limit]


# KEYS: the job list, then per job its sequence hash and its ARGV[2] tier sets. ARGV: the instant,
# tiers per job, the job ids. Takes out each job listed before the instant with no candidate in
# its tier sets; the jobs taken out. The rank round puts a candidate into a job's tier sets before
# it moves the job in the list: a job it is ranking keeps a candidate, or is listed anew after.
_PRUNE = """
local list, before, n = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local pruned = {}
for at = 3, #ARGV do
  local base, left = 1 + (at - 3) * (n + 1), 0
  for k = base + 2, base + 1 + n do left = left + redis.call('ZCARD', KEYS[k]) end
  local t = redis.call('ZSCORE', list, ARGV[at])
  if left == 0 and t and tonumber(t) < before then
    redis.call('ZREM', list, ARGV[at])
    redis.call('DEL', KEYS[base + 1])
    pruned[#pruned + 1] = ARGV[at]
  end
end
return pruned
"""
PRUNE_PAGE = 500  # jobs per script call


async def prune_jobs(store: JobStore, tenant: str, *, before: float) -> list[str]:
    """Take out of the tenant's job list every job no event named since ``before`` (epoch
    seconds) and no candidate is left in (its tier sets empty), and its sequence hash; the jobs
    taken out. Atomic per job: one the rank round meanwhile gives a candidate stays (or is
    listed again)."""
    key = store.keys.jobs(tenant)
    pruned: list[str] = []
    offset = 0
    while True:
        rows = await store.redis.zrange(
            key, "-inf", f"({before!r}", byscore=True, offset=offset, num=PRUNE_PAGE
        )
        gone = await _prune(store, tenant, [text(j) for j in rows], before) if rows else []
        pruned += gone
        offset += len(rows) - len(gone)
        if len(rows) < PRUNE_PAGE:
            return pruned


async def _prune(store: JobStore, tenant: str, jobs: list[str], before: float) -> list[str]:
    """One call of the prune script on ``jobs``: those it took out."""
    keys = [store.keys.jobs(tenant)]
    for job in jobs:
        keys += job_rank_keys(store, tenant, job)
    tiers = len(store.rules.job_tier_names)
    reply = await store.redis.eval(_PRUNE, len(keys), *keys, repr(before), tiers, *jobs)
    return [text(j) for j in reply]
