"""The bound on a candidate's job profiles, found from its job profiles alone (lua/job_profile.lua
job_bound): equally weak jobs drop in byte order of their ids, and the job ranks earlier versions
kept (``P{T:C}:jr``) go with an erasure."""

from __future__ import annotations

import redis.asyncio as aioredis

from engagement.store.redis_store import ScoreStore
from tests.integration.engagement.store.test_job_profiles import RULES, T0, job_event


async def test_equally_weak_jobs_drop_in_byte_order_of_their_ids(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given a candidate keeping 2 job profiles, viewing 3 jobs at the same instant (same points)
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=RULES, jobs_kept=2)
    await store.apply_batch([job_event("b", T0, "b"), job_event("a", T0, "a")])
    # when it views a third: Z sorts first by bytes (0x5A < 0x61), last in most locales
    [outcome] = await store.apply_batch([job_event("z", T0, "Z")])
    # then Z, one of the weakest now and the first of them by bytes, is dropped
    assert [(s.job_id, s.removed) for s in outcome.jobs] == [("Z", True)]
    view = await store.candidate_jobs("acme", "u1", T0)
    assert view is not None and sorted(j.job_id for j in view.jobs) == ["a", "b"]


async def test_a_stronger_job_drops_the_weakest_after_a_partial_decay(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given J-old (40 points, 3 half-lives ago: 5 now) and J-new (2 points now)
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=RULES, jobs_kept=2)
    h = RULES.half_life_seconds
    await store.apply_batch([job_event("o", T0, "J-old", event="Application Submitted")])
    await store.apply_batch([job_event("n", T0 + 3 * h, "J-new")])
    # when a third job gets 4 points
    [outcome] = await store.apply_batch([job_event("t", T0 + 3 * h, "J-3", event="Article Read")])
    # then the weakest now (J-new, 2 < 4 < 5) is dropped, not the oldest
    assert [(s.job_id, s.removed) for s in outcome.jobs] == [("J-3", False), ("J-new", True)]


async def test_erasure_deletes_the_job_ranks_of_earlier_versions(
    store: ScoreStore, redis_client: aioredis.Redis
) -> None:
    # given a candidate with the job ranks zset an earlier version kept
    await store.apply_batch([job_event("m1", T0, "J-7")])
    legacy = store.keys.candidate("acme", "u1").job_ranks_before
    await redis_client.zadd(legacy, {"J-7": 1.0})
    # when it is erased, then the zset is gone too
    await store.erase("acme", "u1")
    assert await redis_client.exists(legacy) == 0
