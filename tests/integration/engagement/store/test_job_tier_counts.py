"""A job's candidates per job tier (``ScoreStore.job_tier_counts``) in the real Redis store: the
job's leaderboard counted by tier at the same instant, decay included, under the job tiers."""

from __future__ import annotations

from collections import Counter

import redis.asyncio as aioredis

from engagement.model.rules import Rules, TierRule
from engagement.store.redis_store import ScoreStore
from tests.integration.engagement.store.test_job_profiles import job_event
from tests.unit.engagement.model.strategies import RULES, T0

DAY = 86400.0


async def scored(store: ScoreStore) -> None:
    """ann applied twice to J/7 (hot), bob applied once (warm), cid viewed it; dan applied to J-8."""
    await store.apply_batch(
        [
            job_event("a1", T0, "J/7", event="Application Submitted", user="ann"),
            job_event("a2", T0, "J/7", event="Application Submitted", user="ann"),
            job_event("b1", T0, "J/7", event="Application Submitted", user="bob"),
            job_event("c1", T0, "J/7", user="cid"),
            job_event("d1", T0, "J-8", event="Application Submitted", user="dan"),
        ]
    )


async def leaderboard_tiers(store: ScoreStore, job: str, now: float) -> dict[str, int]:
    page = await store.job_leaderboard("acme", job, None, 500, None, now=now)
    found = Counter(entry.tier for entry in page.entries)
    return {name: found[name] for name in store.rules.job_tier_names}


async def test_a_jobs_tier_counts_are_its_leaderboard_counted_by_tier_as_decay_moves_it(
    store: ScoreStore,
) -> None:
    # given three candidates of J/7 in three tiers, and one of J-8
    await scored(store)
    # when the counts are read now and as the candidates decay (half-life: one day)
    seen = {
        t: await store.job_tier_counts("acme", "J/7", t) for t in (T0 + 1, T0 + DAY, T0 + 9 * DAY)
    }
    # then they are the job's leaderboard counted by tier at each instant
    for t, counts in seen.items():
        assert counts == await leaderboard_tiers(store, "J/7", t), t
    assert seen[T0 + 1] == {"cold": 1, "warm": 1, "hot": 1}
    assert seen[T0 + DAY] == {"cold": 2, "warm": 1, "hot": 0}  # ann cooled to warm, bob to cold
    assert seen[T0 + 9 * DAY] == {"cold": 3, "warm": 0, "hot": 0}
    # and another job's candidates are not counted; a job nobody engages with counts none
    assert await store.job_tier_counts("acme", "J-8", T0 + 1) == {"cold": 0, "warm": 1, "hot": 0}
    assert await store.job_tier_counts("acme", "J/9", T0 + 1) == {"cold": 0, "warm": 0, "hot": 0}


async def test_a_jobs_tier_counts_are_by_the_templates_job_tiers(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given a template whose job tiers are not its candidate tiers
    job_tiers = (TierRule(name="cold", enter=1, exit=1), TierRule(name="hot", enter=50, exit=45))
    rules = Rules.model_validate({**RULES.model_dump(), "job_tiers": job_tiers})
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=rules)
    await scored(store)
    # when J/7's counts are read
    counts = await store.job_tier_counts("acme", "J/7", T0 + 1)
    # then they are per job tier: ann (score 80) and bob (55) are hot for the job, cid cold
    assert counts == {"cold": 1, "hot": 2}
    assert counts == await leaderboard_tiers(store, "J/7", T0 + 1)
