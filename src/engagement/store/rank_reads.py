"""Reads of the score store's rank space: leaderboards and tier counts (a candidate's own view:
``engagement.store.candidate_reads``).

Everything is valued at an instant passed in; the tier sets are read with rank-space bounds
(layout and reasoning: ``engagement.store.redis_keys``), never by scanning candidates.
"""

from __future__ import annotations

import base64
import heapq
import math
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from engagement.model.rules import Rules, TierRule
from engagement.model.score_views import LeaderboardEntry, LeaderboardPage
from engagement.model.scoring import rank_bound, raw_at_rank, score_of
from engagement.model.tiers import decayed_index
from engagement.store.connection import RedisClient
from engagement.store.redis_keys import KeyLayout


class RankSpace(Protocol):
    """What counting the tier sets needs: the client, the key layout, the tenant's rules."""

    redis: RedisClient
    keys: KeyLayout
    rules: Rules


class ScoreStore(RankSpace, Protocol):
    """What the rank reads need of ``engagement.store.redis_store.ScoreStore``."""

    async def rank_after(
        self, key: str, member: bytes, rank: float, limit: int
    ) -> list[tuple[float, bytes]] | None: ...


def _bound(value: float, *, exclusive: bool = False) -> str:
    if value == math.inf:
        return "+inf"
    if value == -math.inf:
        return "-inf"
    return f"({value!r}" if exclusive else repr(value)


def encode_cursor(rank: float, member: bytes) -> str:
    """An opaque keyset cursor for the entry (rank, member)."""
    return base64.urlsafe_b64encode(repr(rank).encode() + b"|" + member).decode()


def decode_cursor(cursor: str) -> tuple[float, bytes]:
    """The (rank, member) a cursor points after; ValueError when malformed, also when its rank is
    ``nan`` or ``+inf`` (never a rank key, nor a bound Redis takes in every command). ``-inf``
    stays: the rank key of a candidate whose raw sum is not positive, which can end a page."""
    rank, member = base64.urlsafe_b64decode(cursor.encode()).split(b"|", 1)
    value = float(rank)
    if math.isnan(value) or value == math.inf:
        raise ValueError(f"cursor rank {value!r} is not a rank key")
    return value, member


def _ranges(
    store: ScoreStore, tiers: Sequence[TierRule], tier: str | None, now: float
) -> list[tuple[int, float, float, bool]]:
    """Per stored tier k: the rank range (lo, hi, hi exclusive) of members now in ``tier``."""
    if tier is None:
        return [(k, -math.inf, math.inf, False) for k in range(len(tiers))]
    x = [t.name for t in tiers].index(tier)
    lo = _rank_bound(store, tiers[x].exit, now)
    out = [(x, lo, math.inf, False)]
    if x + 1 < len(tiers):
        hi = _rank_bound(store, tiers[x + 1].exit, now)
        out += [(k, lo, hi, True) for k in range(x + 1, len(tiers))]
    return out


def _rank_bound(store: RankSpace, score: int, t: float) -> float:
    return rank_bound(score, t, store.rules.score_scale, store.rules.half_life_seconds)


async def _page(
    store: ScoreStore,
    key: str,
    span: tuple[float, float, bool],
    after: tuple[float, bytes] | None,
    limit: int,
) -> list[tuple[float, bytes]]:
    """Up to ``limit`` members of one tier set in ``span``, after the cursor ``after``."""
    lo, hi, hi_excl = span
    if after is not None and (after[0] < hi or (after[0] == hi and not hi_excl)):
        following = await store.rank_after(key, after[1], after[0], limit)
        if following is not None:  # read by position: ties with the cursor cost nothing
            return [(rank, member) for rank, member in following if rank >= lo]
        hi, hi_excl = after[0], False  # else read by rank key from the cursor's, skipping ties
    out: list[tuple[float, bytes]] = []
    offset = 0
    while len(out) < limit:
        batch: list[Any] = await store.redis.zrange(
            key, _bound(hi, exclusive=hi_excl), _bound(lo), desc=True, byscore=True,
            offset=offset, num=limit + 1, withscores=True,
        )  # fmt: skip
        for member, rank in batch:
            if after is None or rank < after[0] or (rank == after[0] and member < after[1]):
                out.append((float(rank), member))
        if len(batch) < limit + 1:
            break
        offset += len(batch)
    return out[:limit]


async def leaderboard(
    store: ScoreStore, tenant_id: str, tier: str | None, limit: int, cursor: str | None, now: float
) -> LeaderboardPage:
    """Candidates by current score (rank key), highest first, keyset-paginated."""
    tiers = store.rules.tiers
    sets = [store.keys.tier_set(tenant_id, t.name) for t in tiers]
    return await _board(store, sets, tiers, tier, limit, cursor, now)


async def job_leaderboard(
    store: ScoreStore,
    tenant_id: str,
    job_id: str,
    tier: str | None,
    limit: int,
    cursor: str | None,
    now: float,
) -> LeaderboardPage:
    """A job's candidates by their current score for it, highest first, keyset-paginated: the
    tenant's leaderboard over the job's tier sets (``KeyLayout.job_tier_set``, the job tiers)."""
    tiers = store.rules.tiers_of_jobs
    sets = [store.keys.job_tier_set(tenant_id, job_id, t.name) for t in tiers]
    return await _board(store, sets, tiers, tier, limit, cursor, now)


async def _board(
    store: ScoreStore,
    sets: list[str],
    tiers: Sequence[TierRule],
    tier: str | None,
    limit: int,
    cursor: str | None,
    now: float,
) -> LeaderboardPage:
    """Members of the tier sets ``sets`` (one per tier of ``tiers``) by rank key, highest first."""
    after = decode_cursor(cursor) if cursor else None
    found: list[tuple[float, bytes, int]] = []
    for k, lo, hi, excl in _ranges(store, tiers, tier, now):
        found += [
            (r, m, k) for r, m in await _page(store, sets[k], (lo, hi, excl), after, limit + 1)
        ]
    top = heapq.nlargest(limit + 1, found, key=lambda item: (item[0], item[1]))
    entries = tuple(_entry(store, tiers, rank, member, k, now) for rank, member, k in top[:limit])
    more = len(top) > limit
    next_cursor = encode_cursor(top[limit - 1][0], top[limit - 1][1]) if more and limit else None
    return LeaderboardPage(entries, next_cursor, now)


def _entry(
    store: ScoreStore, tiers: Sequence[TierRule], rank: float, member: bytes, k: int, now: float
) -> LeaderboardEntry:
    raw = raw_at_rank(rank, now, store.rules.half_life_seconds)
    score = score_of(raw, store.rules.score_scale)
    tier = tiers[decayed_index(k, score, tiers)].name
    return LeaderboardEntry(member.decode(), score, tier, raw, rank)


async def tier_counts(store: RankSpace, tenant_id: str, now: float) -> dict[str, int]:
    """Candidates per tier at ``now``: a member of tier k's set counts where decay put it."""
    tiers = store.rules.tiers
    sets = [store.keys.tier_set(tenant_id, t.name) for t in tiers]
    return await _counts(store, sets, tiers, now)


async def job_tier_counts(
    store: RankSpace, tenant_id: str, job_id: str, now: float
) -> dict[str, int]:
    """A job's candidates per job tier at ``now``, counted like ``tier_counts`` over the job's
    tier sets: a handful of ZCOUNTs, O(log n) each."""
    return (await jobs_tier_counts(store, tenant_id, [job_id], now))[0]


async def jobs_tier_counts(
    store: RankSpace, tenant_id: str, job_ids: Sequence[str], now: float
) -> list[dict[str, int]]:
    """``job_tier_counts`` of each of ``job_ids``, in order, in one pipeline: one connection and
    one round trip however many jobs (their keys share the tenant's slot)."""
    if not job_ids:
        return []
    tiers = store.rules.tiers_of_jobs
    bounds = _count_bounds(store, tiers, now)
    pipe = store.redis.pipeline(transaction=False)
    plans = [
        _queue_counts(
            pipe, [store.keys.job_tier_set(tenant_id, job, t.name) for t in tiers], bounds
        )
        for job in job_ids
    ]
    replies = iter(await pipe.execute())
    return [_tally(tiers, plan, replies) for plan in plans]


async def _counts(
    store: RankSpace, sets: list[str], tiers: Sequence[TierRule], now: float
) -> dict[str, int]:
    """Members of the tier sets ``sets`` (one per tier of ``tiers``) per tier decay put them in."""
    pipe = store.redis.pipeline(transaction=False)
    plan = _queue_counts(pipe, sets, _count_bounds(store, tiers, now))
    return _tally(tiers, plan, iter(await pipe.execute()))


def _count_bounds(store: RankSpace, tiers: Sequence[TierRule], now: float) -> list[float]:
    """The rank key of each tier's exit score at ``now``, then +inf."""
    return [_rank_bound(store, tier.exit, now) for tier in tiers] + [math.inf]


def _queue_counts(pipe: Any, sets: list[str], bounds: list[float]) -> list[int]:
    """Queue on ``pipe`` the ZCOUNTs of the members of tier k's set ``sets[k]`` now in each tier
    j <= k; the tier j of each, in queue order."""
    plan: list[int] = []
    for k, key in enumerate(sets):
        for j in range(k + 1):
            lo = -math.inf if j == 0 else bounds[j]
            hi, excl = (math.inf, False) if j == k else (bounds[j + 1], True)
            pipe.zcount(key, _bound(lo), _bound(hi, exclusive=excl))
            plan.append(j)
    return plan


def _tally(tiers: Sequence[TierRule], plan: list[int], replies: Iterator[Any]) -> dict[str, int]:
    """Counts per tier name of the ZCOUNT ``replies`` of ``plan`` (taken from the iterator)."""
    counts = dict.fromkeys((tier.name for tier in tiers), 0)
    for j in plan:
        counts[tiers[j].name] += int(next(replies))
    return counts
