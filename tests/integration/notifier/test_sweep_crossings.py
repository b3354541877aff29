"""The sweep's crossing query against a real Redis: every crossing once, a page at a time.

Members are placed in the tier sets at rank keys around the exits' bounds at ``since`` and
``now``; the expected hits come straight from the definition (a member of tier set j with rank x
crossed exit k <= j when ``bound(exit_k, since) <= x < bound(exit_k, now)``; the lowest one
counts), not from the query's shortcut.
"""

from __future__ import annotations

import math
import random

import pytest
import redis.asyncio as aioredis

from engagement.model.scoring import rank_bound
from engagement.store.redis_keys import KeyLayout
from services.notifier.sweep import Hit, crossings
from tests.unit.engagement.model.strategies import RULES, T0

H, SCALE = RULES.half_life_seconds, RULES.score_scale
PAGE = 4


def bounds(since: float, now: float) -> list[tuple[float, float]]:
    return [
        (rank_bound(t.exit, since, SCALE, H), rank_bound(t.exit, now, SCALE, H))
        for t in RULES.tiers
    ]


def expected_hits(
    members: dict[str, tuple[int, float]], since: float, now: float
) -> dict[str, tuple[int, int]]:
    ranges = bounds(since, now)
    out: dict[str, tuple[int, int]] = {}
    for member, (j, rank) in members.items():
        crossed = [k for k in range(1, j + 1) if ranges[k][0] <= rank < ranges[k][1]]
        if crossed:
            out[member] = (j, min(crossed))
    return out


async def place(
    redis: aioredis.Redis, layout: KeyLayout, seed: int, since: float, now: float
) -> dict[str, tuple[int, float]]:
    """Members of the warm and hot sets at ranks on, around and between the exits' bounds."""
    rng = random.Random(seed)
    finite = [b for pair in bounds(since, now) for b in pair if math.isfinite(b)]
    lo, hi = min(finite) - 1.0, max(finite) + 1.0
    members: dict[str, tuple[int, float]] = {}
    for n in range(60):
        j = rng.choice([1, 2])
        rank = rng.choice([rng.uniform(lo, hi), rng.choice(finite)])  # on a bound, now and then
        members[f"c{n:02}"] = (j, rank)
        await redis.zadd(layout.tier_set("acme", RULES.tiers[j].name), {f"c{n:02}": rank})
    return members


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("since", [T0, T0 - 40 * 86400, -math.inf], ids=["day", "weeks", "first"])
async def test_each_crossing_comes_once_with_its_lowest_exit_a_page_at_a_time(
    redis_client: aioredis.Redis, redis_prefix: str, seed: int, since: float
) -> None:
    # given warm and hot members around the exits' bounds between two sweeps
    layout = KeyLayout(redis_prefix)
    now = T0 + 3 * 86400
    members = await place(redis_client, layout, seed, since, now)
    # when the crossings are read in pages of PAGE
    pages = [
        page async for page in crossings(redis_client, layout, RULES, "acme", since, now, page=PAGE)
    ]
    # then no page holds more than PAGE hits, no member comes twice, and the hits are exactly
    # the members that crossed an exit, each with its tier set and the lowest exit crossed
    assert all(0 < len(page) <= PAGE for page in pages)
    found: dict[str, Hit] = {}
    for page in pages:
        assert not found.keys() & page.keys()
        found |= page
    assert {m: (hit.set_level, hit.exit_level) for m, hit in found.items()} == expected_hits(
        members, since, now
    )
    assert all(hit.rank == members[m][1] for m, hit in found.items())
    if since == -math.inf:  # a first sweep finds more than a page
        assert len(pages) > 1
