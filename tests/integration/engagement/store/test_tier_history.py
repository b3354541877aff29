"""Tier counts per UTC day (``engagement.store.tier_history``) in the real Redis: the first sample
of a day is kept, days without one read as such, and old days go."""

from __future__ import annotations

from datetime import timedelta

import redis.asyncio as aioredis

from engagement.store import tier_history
from engagement.store.redis_keys import KeyLayout
from engagement.store.redis_store import ScoreStore
from tests.unit.engagement.model.strategies import RULES, T0, interaction

DAY = 86400.0
MIDNIGHT = T0 - T0 % DAY  # 00:00 UTC of T0's day


async def test_the_first_sample_of_a_day_is_kept_and_the_next_day_gets_its_own(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    layout = KeyLayout(redis_prefix)
    # given a warm candidate at 00:10, sampled then
    await store.apply_batch([interaction("m1", MIDNIGHT, event="Application Submitted")])
    assert await tier_history.sample(redis_client, layout, RULES, "acme", MIDNIGHT + 600)
    # when it has cooled by the evening's sample, and the next day is sampled too
    kept = await tier_history.sample(redis_client, layout, RULES, "acme", MIDNIGHT + 0.9 * DAY)
    assert await tier_history.sample(redis_client, layout, RULES, "acme", MIDNIGHT + 1.1 * DAY)
    # then the first day keeps its first sample, the second has its own, earlier days none
    first = tier_history.utc_day(MIDNIGHT)
    found = await tier_history.days(redis_client, layout, "acme", first + timedelta(days=1), 3)
    assert not kept
    assert [(d.day, d.at, d.counts) for d in found] == [
        ((first - timedelta(days=1)).isoformat(), None, None),
        (first.isoformat(), MIDNIGHT + 600, {"cold": 0, "warm": 1, "hot": 0}),
        ((first + timedelta(days=1)).isoformat(), MIDNIGHT + 1.1 * DAY, {"cold": 1, "warm": 0, "hot": 0}),
    ]  # fmt: skip


async def test_days_past_the_kept_ninety_go_with_the_next_sample(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    layout = KeyLayout(redis_prefix)
    key = tier_history.history_key(layout, "acme")
    today = tier_history.utc_day(T0)
    # given samples of 91 and of 90 days ago
    for back in (91, 90):
        await tier_history.record(redis_client, key, today - timedelta(days=back), T0, {"cold": 1})
    # when today is sampled
    await tier_history.sample(redis_client, layout, RULES, "acme", T0)
    # then the one of 91 days ago is gone
    assert sorted(f.decode() for f in await redis_client.hkeys(key)) == [
        (today - timedelta(days=90)).isoformat(),
        today.isoformat(),
    ]


async def test_a_day_stored_before_samples_had_their_instant_reads_without_it(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    layout = KeyLayout(redis_prefix)
    today = tier_history.utc_day(T0)
    key = tier_history.history_key(layout, "acme")
    await redis_client.hset(key, today.isoformat(), b'{"cold":3,"warm":2,"hot":1}')
    [day] = await tier_history.days(redis_client, layout, "acme", today, 1)
    assert (day.at, day.counts) == (None, {"cold": 3, "warm": 2, "hot": 1})
