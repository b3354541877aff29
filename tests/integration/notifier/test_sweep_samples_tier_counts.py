"""The decay sweep samples each tenant's tier counts once per UTC day: the dashboard's 30-day
chart (``engagement.store.tier_history``, docs/dashboard.md). Real Redis, the store and the sweep
in process."""

from __future__ import annotations

from datetime import timedelta

import redis.asyncio as aioredis

from engagement.store import tier_history
from engagement.store.redis_keys import KeyLayout
from engagement.store.redis_store import ScoreStore
from tests.integration.notifier.test_exactly_once_alerts import Topic
from tests.integration.notifier.test_quiet_rise import sweep_on
from tests.unit.engagement.model.strategies import RULES, T0, interaction

DAY = 86400.0
MIDNIGHT = T0 - T0 % DAY


async def test_each_tenants_tier_counts_are_sampled_by_the_first_sweep_of_each_day(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given a warm candidate of acme and a hot one of beta
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=RULES)
    await store.apply_batch(
        [
            interaction("a1", MIDNIGHT, event="Application Submitted", user_id="ann"),
            interaction("b1", MIDNIGHT, event="Application Submitted", tenant="beta"),
            interaction("b2", MIDNIGHT, event="Application Submitted", tenant="beta"),
        ]
    )
    sweep = sweep_on(redis_client, redis_prefix, Topic())
    # when the sweep runs after midnight, again in the evening, and the next morning
    for t in (MIDNIGHT + 60, MIDNIGHT + 0.9 * DAY, MIDNIGHT + 1.1 * DAY):
        assert await sweep.run(now=t) is not None
    # then each tenant has the counts of the day's first sweep, and the next day's
    layout, first = KeyLayout(redis_prefix), tier_history.utc_day(MIDNIGHT)
    expected = {"acme": [(0, 1, 0), (1, 0, 0)], "beta": [(0, 0, 1), (0, 1, 0)]}
    for tenant, (day_one, day_two) in expected.items():
        found = await tier_history.days(redis_client, layout, tenant, first + timedelta(days=1), 2)
        assert [(d.at, d.counts) for d in found] == [
            (MIDNIGHT + 60, counts(day_one)),
            (MIDNIGHT + 1.1 * DAY, counts(day_two)),
        ], tenant


def counts(cold_warm_hot: tuple[int, int, int]) -> dict[str, int]:
    return dict(zip(("cold", "warm", "hot"), cold_warm_hot, strict=True))
