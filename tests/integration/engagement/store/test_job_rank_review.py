"""Review of the job rank round in one rank_jobs call per tenant (lua/rank_jobs.lua, rank_lib.lua;
engagement.store.job_store.rank_commands): each job's updates are read at their own offsets, so a
stale update of one job neither blocks nor shifts another's; the probe member that converts a tier
set is never left in one."""

from __future__ import annotations

import redis.asyncio as aioredis

from engagement.model.jobs import JobState
from engagement.store.job_store import RANK_JOBS_PER_CALL, JobKey, rank_commands
from engagement.store.rank_reads import job_tier_counts
from engagement.store.redis_store import ScoreStore
from engagement.store.store_scripts import text
from tests.unit.engagement.model.strategies import T0


def state(job: str, candidate: str, sequence: int, raw: float, tier: str | None) -> JobState:
    return JobState(job, candidate, sequence, T0, raw, 1, tier)


async def run_round(store: ScoreStore, states: list[JobState]) -> int:
    """The rank_jobs calls rank_commands builds for ``states`` (tenant acme); updates applied."""
    latest: dict[JobKey, JobState] = {("acme", s.job_id, s.candidate_id): s for s in states}
    script = store._scripts["rank_jobs"]
    applied = 0
    for command in rank_commands(store, latest, script.sha):
        if command[0] == "EVALSHA":
            n = int(command[2])
            keys, args = list(command[3 : 3 + n]), list(command[3 + n :])
            applied += int(await script(keys=keys, args=args))
    return applied


async def members(redis: aioredis.Redis, store: ScoreStore, job: str, tier: str) -> list[str]:
    key = store.keys.job_tier_set("acme", job, tier)
    return [text(m) for m in await redis.zrange(key, 0, -1)]


async def test_a_stale_update_of_one_job_neither_blocks_nor_shifts_another_jobs_updates(
    store: ScoreStore, redis_client: aioredis.Redis
) -> None:
    # given u1 ranked in J-a at sequence 9
    assert await run_round(store, [state("J-a", "u1", 9, 8.0, "warm")]) == 1

    # when one call carries J-a: u1 stale (sequence 5, hot), u2 new, u3 removed; and J-b: three
    # candidates in three tiers
    applied = await run_round(
        store,
        [
            state("J-a", "u1", 5, 90.0, "hot"),
            state("J-a", "u2", 3, 2.0, "cold"),
            state("J-a", "u3", 4, 0.0, None),
            state("J-b", "u1", 6, 90.0, "hot"),
            state("J-b", "u4", 2, 8.0, "warm"),
            state("J-b", "u5", 7, 2.0, "cold"),
        ],
    )

    # then only the stale update was skipped, and every other landed in its own job's sets
    assert applied == 5
    assert await members(redis_client, store, "J-a", "warm") == ["u1"]
    assert await members(redis_client, store, "J-a", "hot") == []
    assert await members(redis_client, store, "J-a", "cold") == ["u2"]
    assert [await members(redis_client, store, "J-b", t) for t in ("cold", "warm", "hot")] == [
        ["u5"], ["u4"], ["u1"]
    ]  # fmt: skip
    seqs_a = await redis_client.hgetall(store.keys.job_sequences("acme", "J-a"))
    seqs_b = await redis_client.hgetall(store.keys.job_sequences("acme", "J-b"))
    assert seqs_a == {b"u1": b"9", b"u2": b"3", b"u3": b"4"}
    assert seqs_b == {b"u1": b"6", b"u4": b"2", b"u5": b"7"}


async def test_a_call_converting_several_jobs_sets_leaves_no_probe_in_any(
    store: ScoreStore, redis_client: aioredis.Redis
) -> None:
    # given two jobs whose cold sets reach 20 members in one call, and a third job of 3
    users = [f"u{k:02}" for k in range(20)]
    states = [state(j, u, 1, 2.0, "cold") for j in ("J-a", "J-b") for u in users]
    states += [state("J-c", u, 1, 2.0, "cold") for u in users[:3]]

    # when the call runs, and again (every update stale now)
    assert await run_round(store, states) == 43
    assert await run_round(store, states) == 0

    # then each set holds exactly its candidates (the probe converted the large ones and left)
    for job, expected in (("J-a", users), ("J-b", users), ("J-c", users[:3])):
        assert await members(redis_client, store, job, "cold") == expected
    big = store.keys.job_tier_set("acme", "J-b", "cold")
    assert (await redis_client.object("encoding", big)).decode() == "skiplist"
    counts = await job_tier_counts(store, "acme", "J-a", T0)
    assert counts == {"cold": 20, "warm": 0, "hot": 0}


async def test_jobs_past_one_calls_worth_go_in_further_calls_with_their_own_offsets(
    store: ScoreStore, redis_client: aioredis.Redis
) -> None:
    # given more jobs than one rank_jobs call takes, each with a different number of updates
    n = 2 * RANK_JOBS_PER_CALL + 1
    jobs = [f"J-{k}" for k in range(n)]
    states = [
        state(job, f"u{c}", 1, 2.0, "cold") for k, job in enumerate(jobs) for c in range(k % 3 + 1)
    ]

    # when they go in one rank round
    latest = {("acme", s.job_id, s.candidate_id): s for s in states}
    calls = [c for c in rank_commands(store, latest, "sha") if c[0] == "EVALSHA"]
    applied = await run_round(store, states)

    # then in three calls, each job's candidates in its own cold set
    assert len(calls) == 3 and applied == len(states)
    for k in (0, RANK_JOBS_PER_CALL - 1, RANK_JOBS_PER_CALL, n - 1):
        expected = [f"u{c}" for c in range(k % 3 + 1)]
        assert await members(redis_client, store, jobs[k], "cold") == expected
