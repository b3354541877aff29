"""Review of the bound on job profiles in a merge (lua/merge_add.lua: several jobs added, then one
bound found from the job profiles): the merge keeps the strongest jobs whatever side they came
from, logs each dropped job at the merge's sequence, and its replay changes nothing and re-sends
the drops."""

from __future__ import annotations

import redis.asyncio as aioredis

from engagement.store.redis_store import ScoreStore
from tests.integration.engagement.store.test_job_profiles import job_event
from tests.unit.engagement.model.strategies import RULES, T0, alias


async def test_a_merge_bringing_two_stronger_jobs_drops_both_of_the_targets_at_once(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given u1 keeping 2 job profiles, with J-1 and J-2 (2 points each), and old with J-3 and J-4
    # (55 and 4 points), and J-2 shared (2 more)
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=RULES, jobs_kept=2)
    await store.apply_batch(
        [
            job_event("a", T0, "J-1"),
            job_event("b", T0, "J-2"),
            job_event("c", T0, "J-3", user="old", event="Application Submitted"),
            job_event("d", T0, "J-4", user="old", event="Article Read"),
        ]
    )

    # when old is folded into u1
    [merged] = await store.apply_batch([alias("al", "old", "u1")])

    # then u1 keeps J-3 and J-4; J-1 and J-2 leave at the merge's sequence, logged as left
    assert merged.outcome == "merged" and merged.after is not None
    seq = merged.after.sequence
    of_u1 = {(s.job_id, s.removed, s.sequence) for s in merged.jobs if s.candidate_id == "u1"}
    assert of_u1 == {
        ("J-3", False, seq),
        ("J-4", False, seq),
        ("J-1", True, seq),
        ("J-2", True, seq),
    }
    view = await store.candidate_jobs("acme", "u1", T0 + 2)
    assert view is not None and sorted(j.job_id for j in view.jobs) == ["J-3", "J-4"]
    left = await redis_client.zrange(
        store.keys.candidate("acme", "u1").jobs_left, 0, -1, withscores=True
    )
    assert sorted(left) == [(b"J-1", float(seq)), (b"J-2", float(seq))]
    for job, ranked in (("J-1", []), ("J-2", []), ("J-3", ["u1"]), ("J-4", ["u1"])):
        page = await store.job_leaderboard("acme", job, now=T0 + 2)
        assert [e.candidate_id for e in page.entries] == ranked

    # and a replay of the merge changes no profile and re-sends the drops
    profiles = await redis_client.hgetall(store.keys.candidate("acme", "u1").jobs)
    [replay] = await store.apply_batch([alias("al", "old", "u1")])
    assert replay.outcome == "duplicate"
    assert await redis_client.hgetall(store.keys.candidate("acme", "u1").jobs) == profiles
    dropped = {(s.job_id, s.sequence) for s in replay.jobs if s.candidate_id == "u1" and s.removed}
    assert dropped == {("J-1", seq), ("J-2", seq)}
