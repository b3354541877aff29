"""Leaderboard pages through candidates tied on the rank key (real Redis).

Candidates whose scored events are the same at the same instant (a batch import, a campaign
blast) have the same rank key; the cursor then orders them by id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from engagement.model.scoring import rank_bound
from engagement.store.redis_store import ScoreStore
from tests.unit.engagement.model.strategies import RULES, T0, interaction

TIED = 400


async def tied_candidates(store: ScoreStore, n: int = TIED) -> list[str]:
    """``n`` warm candidates with the same single event at the same instant, best first."""
    batch = [
        interaction(f"m{c}", T0, event="Application Submitted", user_id=f"c{c:03}")
        for c in range(n)
    ]
    await store.apply_batch(batch)
    return sorted((f"c{c:03}" for c in range(n)), reverse=True)  # ties: id descending


async def paged(
    store: ScoreStore,
    tier: str,
    *,
    limit: int,
    now: float,
    before_page: Callable[[], Awaitable[None]] | None = None,
    after_page: Callable[[], Awaitable[None]] | None = None,
) -> list[str]:
    """Every candidate id of ``tier``'s leaderboard, page after page (hooks around each page)."""
    seen: list[str] = []
    cursor = None
    while True:
        if before_page is not None:
            await before_page()
        page = await store.leaderboard("acme", tier, limit=limit, cursor=cursor, now=now)
        if after_page is not None:
            await after_page()
        seen += [e.candidate_id for e in page.entries]
        cursor = page.next_cursor
        if cursor is None:
            return seen


async def range_reads(redis: aioredis.Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_zrange", {}).get("calls", 0))


async def test_pages_deep_in_a_tie_read_each_candidate_once_at_the_cost_of_the_first(
    store: ScoreStore, redis_client: aioredis.Redis
) -> None:
    # given 400 candidates tied on the rank key
    expected = await tied_candidates(store)
    # when the warm tier is paged 50 at a time
    reads: list[int] = []

    async def count_before() -> None:
        reads.append(-(await range_reads(redis_client)))

    async def count_after() -> None:
        reads[-1] += await range_reads(redis_client)

    seen = await paged(
        store, "warm", limit=50, now=T0, before_page=count_before, after_page=count_after
    )
    # then every candidate comes once, in leaderboard order, and the last page costs as many
    # range reads as the first (reading by rank key, it would step through the whole tie)
    assert seen == expected
    assert max(reads) <= reads[0] + 1


async def test_a_cursor_whose_candidate_moved_away_still_continues_after_it(
    store: ScoreStore,
) -> None:
    # given 120 tied candidates and a first page of 50
    expected = await tied_candidates(store, 120)
    page = await store.leaderboard("acme", "warm", limit=50, now=T0)
    assert [e.candidate_id for e in page.entries] == expected[:50]
    # when the page's last candidate scores again (it leaves the tie) before the next page
    await store.apply_batch(
        [interaction("again", T0 + 60, event="Article Read", user_id=expected[49])]
    )
    rest: list[str] = []
    cursor = page.next_cursor
    while cursor is not None:
        page = await store.leaderboard("acme", "warm", limit=50, cursor=cursor, now=T0 + 60)
        rest += [e.candidate_id for e in page.entries]
        cursor = page.next_cursor
    # then the following pages hold exactly the candidates after it in the tie
    assert rest == expected[50:]


async def test_a_cursor_on_a_tiers_upper_bound_never_brings_in_a_candidate_of_the_tier_above(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given, at the rank key where "hot" starts now (its exit bound), two warm-set candidates and
    # a hot-set candidate (still hot: it has not decayed below that bound)
    now = T0
    edge = rank_bound(RULES.tiers[2].exit, now, RULES.score_scale, RULES.half_life_seconds)
    await redis_client.zadd(f"{redis_prefix}{{acme}}:tier:warm", {"w1": edge, "w2": edge})
    await redis_client.zadd(f"{redis_prefix}{{acme}}:tier:hot", {"h": edge})
    # when the warm tier is paged one candidate at a time (the cursor sits on that bound)
    seen = await paged(store, "warm", limit=1, now=now)
    # then the warm candidates come once each and the hot one is not listed as warm
    assert seen == ["w2", "w1"]
    hot = await store.leaderboard("acme", "hot", limit=5, now=now)
    assert [e.candidate_id for e in hot.entries] == ["h"]
