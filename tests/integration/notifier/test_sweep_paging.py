"""The sweep's range reads against a real Redis, with the scorer's moves interleaved between pages.

``ranked_members`` is driven item by item; after each item the test changes the sorted set the way
the scorer does (a member leaves the range with a higher rank key, a member joins it, ties), so
every page is read after a change. Small pages keep the sets small.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from services.notifier.sweep import ranked_members

PAGE = 5
LOW, HIGH = 0.0, 100.0
OUT = 1000.0  # a rank key above the range: the member received an event


def tier_set(redis_prefix: str) -> str:
    return f"{redis_prefix}{{acme}}:tier:hot"


async def sweep_range(
    redis: aioredis.Redis, key: str, between: Callable[[str, float], Awaitable[None]]
) -> list[tuple[str, float]]:
    """Every item of one range read, calling ``between`` after each (before the next is asked)."""
    items = ranked_members(redis, key, LOW, HIGH, page=PAGE)
    seen: list[tuple[str, float]] = []
    async for member, rank in items:
        seen.append((member, rank))
        await between(member, rank)
    return seen


async def test_members_leaving_the_range_behind_the_cursor_hide_none_after_it(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given 17 members in range (more than three pages), ranks 1..17
    key = tier_set(redis_prefix)
    await redis_client.zadd(key, {f"c{i:02}": float(i + 1) for i in range(17)})

    # when each member, once read, receives an event and leaves the range
    async def leave(member: str, _rank: float) -> None:
        await redis_client.zadd(key, {member: OUT})

    seen = await sweep_range(redis_client, key, leave)
    # then every member is read exactly once, in rank order
    assert seen == [(f"c{i:02}", float(i + 1)) for i in range(17)]


async def test_members_joining_the_range_behind_the_cursor_repeat_none_before_it(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given 15 members in range, ranks 10..24
    key = tier_set(redis_prefix)
    await redis_client.zadd(key, {f"c{i:02}": float(i + 10) for i in range(15)})
    joined = iter(range(1000))

    # when after each read a new member joins the range below everything read so far
    async def join(_member: str, _rank: float) -> None:
        await redis_client.zadd(key, {f"new{next(joined):03}": 1.0})

    seen = await sweep_range(redis_client, key, join)
    # then each original member is read exactly once and nothing is read twice
    assert [m for m, _ in seen if m.startswith("c")] == [f"c{i:02}" for i in range(15)]
    assert max(Counter(m for m, _ in seen).values()) == 1


async def test_members_with_equal_ranks_across_page_boundaries_come_once_each(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given 3 members at rank 2, 13 tied at rank 7 (over two pages), and 4 at rank 9
    key = tier_set(redis_prefix)
    ranks = {f"a{i}": 2.0 for i in range(3)}
    ranks |= {f"t{i:02}": 7.0 for i in range(13)}
    ranks |= {f"z{i}": 9.0 for i in range(4)}
    await redis_client.zadd(key, ranks)

    async def nothing(_member: str, _rank: float) -> None:
        return None

    # when the range is read in pages of 5
    seen = await sweep_range(redis_client, key, nothing)
    # then every member comes exactly once, ordered by rank then member
    assert seen == sorted(ranks.items(), key=lambda item: (item[1], item[0]))


async def test_tied_members_leaving_and_joining_meanwhile_neither_hide_nor_repeat_one(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given 23 members tied at rank 7 (more than four pages)
    key = tier_set(redis_prefix)
    tied = [f"t{i:02}" for i in range(23)]
    await redis_client.zadd(key, dict.fromkeys(tied, 7.0))
    joined = iter(range(1000))

    # when, after each read, the member read before it leaves the range and a new member joins
    # the tie ordered before everything read so far
    async def churn(member: str, _rank: float) -> None:
        previous = tied[tied.index(member) - 1] if member in tied and member != tied[0] else None
        if previous is not None:
            await redis_client.zadd(key, {previous: OUT})
        await redis_client.zadd(key, {f"a{next(joined):03}": 7.0})

    seen = await sweep_range(redis_client, key, churn)
    # then each tied member is read exactly once, in member order, and none that joined is read
    assert seen == [(m, 7.0) for m in tied]


async def test_random_moves_during_a_read_never_hide_or_repeat_a_member_that_stays(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    for seed in range(25):
        await random_moves_keep_the_range_exact(
            redis_client, f"{tier_set(redis_prefix)}:{seed}", seed
        )


async def random_moves_keep_the_range_exact(redis: aioredis.Redis, key: str, seed: int) -> None:
    # given 40 members with ranks drawn from few values (many ties) in the range
    rng = random.Random(seed)
    ranks = {f"c{i:02}": float(rng.randint(1, 6)) for i in range(40)}
    await redis.zadd(key, ranks)
    moved: set[str] = set()
    fresh = iter(range(1000))

    # when, after each read, the scorer moves random members: out of the range, to another rank
    # inside it, or a new member joins
    async def move(_member: str, _rank: float) -> None:
        for _ in range(rng.randint(0, 3)):
            action, name = rng.random(), rng.choice(sorted(ranks))
            if action < 0.4:
                await redis.zadd(key, {name: OUT})
            elif action < 0.7:
                await redis.zadd(key, {name: float(rng.randint(1, 6))})
            else:
                name = f"n{next(fresh):03}"
                await redis.zadd(key, {name: float(rng.randint(1, 6))})
            moved.add(name)

    seen = await sweep_range(redis, key, move)
    # then every member never moved is read exactly once with its rank, and reads ascend strictly
    # by (rank, member), so no (member, rank) comes twice
    stayed = sorted((m, r) for m, r in ranks.items() if m not in moved)
    assert sorted((m, r) for m, r in seen if m in ranks and m not in moved) == stayed, seed
    order = [(r, m) for m, r in seen]
    assert all(a < b for a, b in itertools.pairwise(order)), seed
