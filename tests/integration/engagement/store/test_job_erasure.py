"""Erasure leaves no id in any job: a candidate that left a job (dropped as its weakest, or an id
merged into it that moved its jobs) is out of the job's tier sets but keeps its sequence in the
job's sequence hash (a removal keeps the sequence, against replays: lua/rank_lib.lua), so the
erasure takes the erased ids out of every job's sequence hash too (job_store.forget). Both tests
fail without it."""

from __future__ import annotations

import redis.asyncio as aioredis

from engagement.store.redis_store import ScoreStore
from tests.integration.engagement.store.test_job_profiles import job_event
from tests.unit.engagement.model.strategies import RULES, T0, alias


async def test_an_erased_candidate_is_named_by_no_job_it_dropped(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given u1 keeping 2 job profiles, which viewed J-1, J-2 then applied to J-3 (J-1 dropped)
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=RULES, jobs_kept=2)
    await store.apply_batch([job_event("a", T0, "J-1"), job_event("b", T0 + 1, "J-2")])
    await store.apply_batch([job_event("c", T0 + 2, "J-3", event="Application Submitted")])
    await store.apply_batch([job_event("d", T0 + 2, "J-3", user="u2")])
    view = await store.candidate_jobs("acme", "u1", T0 + 2)
    assert view is not None and sorted(j.job_id for j in view.jobs) == ["J-2", "J-3"]

    # when u1 is erased
    await store.erase("acme", "u1")

    # then no job's leaderboard or sequences name it; u2 stays in J-3
    for job in ("J-1", "J-2", "J-3"):
        page = await store.job_leaderboard("acme", job, now=T0 + 2)
        assert [e.candidate_id for e in page.entries] == (["u2"] if job == "J-3" else [])
        assert await redis_client.hexists(store.keys.job_sequences("acme", job), "u1") == 0


async def test_an_erased_candidate_leaves_no_merged_id_in_the_jobs_it_moved(
    store: ScoreStore, redis_client: aioredis.Redis
) -> None:
    # given old, ranked in J-1, folded into u1 (old leaves J-1's tier sets, u1 enters them)
    await store.apply_batch([job_event("a", T0, "J-1", user="old")])
    await store.apply_batch([alias("al", "old", "u1")])
    page = await store.job_leaderboard("acme", "J-1", now=T0 + 2)
    assert [e.candidate_id for e in page.entries] == ["u1"]

    # when u1 is erased (and with it every id merged into it)
    erasure = await store.erase("acme", "u1")
    assert list(erasure.merged_ids) == ["old"]

    # then J-1's sequence hash names neither
    assert await redis_client.hkeys(store.keys.job_sequences("acme", "J-1")) == []


async def test_an_erased_candidate_leaves_jobs_its_profiles_no_longer_name(
    store: ScoreStore, redis_client: aioredis.Redis
) -> None:
    # given u1 ranked in J-1's hot set and sequence hash without a profile for J-1 (as a release
    # that found jobs elsewhere could leave it), and u2 ranked there too
    await store.apply_batch([job_event("a", T0, "J-1"), job_event("b", T0, "J-1", user="u2")])
    await redis_client.hdel(store.keys.candidate("acme", "u1").jobs, "J-1")

    # when u1 is erased, then J-1 names only u2
    await store.erase("acme", "u1")
    page = await store.job_leaderboard("acme", "J-1", now=T0)
    assert [e.candidate_id for e in page.entries] == ["u2"]
    assert await redis_client.hkeys(store.keys.job_sequences("acme", "J-1")) == [b"u2"]
