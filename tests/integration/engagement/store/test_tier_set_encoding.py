"""Tier sets (the tenant's and each job's) are kept skiplists from 16 members on
(lua/rank_lib.lua): a rank update moves a member on every event, which in a listpack is linear
in the set's size. The conversion changes nothing a reader sees."""

from __future__ import annotations

import redis.asyncio as aioredis

from engagement.store.job_store import job_rank_keys
from engagement.store.redis_store import ScoreStore
from tests.integration.engagement.store.test_job_profiles import T0, job_event

SKIPLIST_AT = 16


async def encoding(redis: aioredis.Redis, key: str) -> str:
    return (await redis.object("encoding", key)).decode()


async def test_a_tier_set_of_16_members_is_a_skiplist_and_reads_the_same(
    store: ScoreStore, redis_client: aioredis.Redis
) -> None:
    # given 15 candidates of job J-big and of the tenant, all cold, and 3 of J-small
    users = [f"u{k:02}" for k in range(SKIPLIST_AT)]
    await store.apply_batch([job_event(f"m{u}", T0, "J-big", user=u) for u in users[:-1]])
    await store.apply_batch([job_event(f"s{u}", T0, "J-small", user=u) for u in users[:3]])
    big = store.keys.job_tier_set("acme", "J-big", "cold")
    small = store.keys.job_tier_set("acme", "J-small", "cold")
    cold = store.keys.tier_set("acme", "cold")
    assert {await encoding(redis_client, k) for k in (big, cold)} <= {"listpack", "ziplist"}
    before = await store.job_leaderboard("acme", "J-big", now=T0)

    # when a sixteenth joins
    await store.apply_batch([job_event("last", T0, "J-big", user=users[-1])])

    # then the job's and the tenant's cold sets are skiplists, the small job's is not, and the
    # leaderboard lists the same candidates in the same order, plus the new one (the probe
    # member that converted the sets is gone)
    assert await encoding(redis_client, big) == "skiplist"
    assert await encoding(redis_client, cold) == "skiplist"
    assert await encoding(redis_client, small) in ("listpack", "ziplist")
    after = await store.job_leaderboard("acme", "J-big", limit=100, now=T0)
    assert [e.candidate_id for e in after.entries if e.candidate_id != users[-1]] == [
        e.candidate_id for e in before.entries
    ]
    assert sorted(e.candidate_id for e in after.entries) == users
    assert await redis_client.zcard(big) == SKIPLIST_AT


async def test_a_large_set_loaded_back_as_a_listpack_is_converted_by_its_next_member(
    store: ScoreStore, redis_client: aioredis.Redis
) -> None:
    # given a job's cold set of 20 members as a listpack (as Redis loads it after a restart)
    keys = job_rank_keys(store, "acme", "J-7")
    cold = keys[1]
    await redis_client.zadd(cold, {f"old{k}": -100.0 - k for k in range(20)})
    assert await encoding(redis_client, cold) in ("listpack", "ziplist")

    # when the rank round adds a member to it
    await store.apply_batch([job_event("m1", T0, "J-7")])

    # then it is a skiplist holding the 21 members
    assert await encoding(redis_client, cold) == "skiplist"
    assert await redis_client.zcard(cold) == 21
