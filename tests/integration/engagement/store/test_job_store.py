"""The tenant's job list (``P{T}:jobs``) in the real Redis store: pruned of the jobs no event named
for the retention and no candidate is left in (``job_store.prune_jobs``), never of one a
candidate is still in or an event named since."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from engagement.store import job_store
from engagement.store.redis_store import ScoreStore
from tests.integration.engagement.store.test_job_profiles import job_event
from tests.unit.engagement.model.strategies import T0

DAY = 86400.0
BEFORE = T0 + 90 * DAY  # a retention of 90 days, 100 days after T0


async def listed(store: ScoreStore) -> list[str]:
    page = await job_store.tenant_jobs(store, "acme", 500, None, T0 + 100 * DAY)
    return sorted(job.job_id for job in page.jobs)


async def test_a_job_no_candidate_is_left_in_and_named_before_the_retention_is_pruned(
    store: ScoreStore, redis_client: aioredis.Redis
) -> None:
    # given J-old, left by its only candidate (erased), J-kept, whose candidate stays, both
    # named 100 days ago, and J-new, left by its candidate too but named 5 days ago
    await store.apply_batch(
        [
            job_event("m1", T0, "J-old", user="ann"),
            job_event("m2", T0, "J-kept", user="bob"),
            job_event("m3", T0 + 95 * DAY, "J-new", user="cid"),
        ]
    )
    for candidate in ("ann", "cid"):
        await store.erase("acme", candidate)
    # when the jobs left before the retention are pruned
    pruned = await store.prune_jobs("acme", before=BEFORE)
    # then only J-old leaves the list, with its sequence hash
    assert pruned == ["J-old"]
    assert await listed(store) == ["J-kept", "J-new"]
    assert not await redis_client.exists(store.keys.job_sequences("acme", "J-old"))
    assert await store.prune_jobs("acme", before=BEFORE) == []


async def test_a_pruned_job_named_again_is_listed_again_with_its_candidate(
    store: ScoreStore,
) -> None:
    # given J-1 pruned once its only candidate left it
    await store.apply_batch([job_event("m1", T0, "J-1", user="ann")])
    await store.erase("acme", "ann")
    assert await store.prune_jobs("acme", before=BEFORE) == ["J-1"]
    # when an event names it again
    await store.apply_batch([job_event("m2", T0 + 99 * DAY, "J-1", user="bob")])
    # then it is listed with bob
    page = await job_store.tenant_jobs(store, "acme", 50, None, T0 + 100 * DAY)
    assert [(job.job_id, sum(job.candidates.values())) for job in page.jobs] == [("J-1", 1)]


async def test_pruning_reads_past_a_page_of_jobs_candidates_are_still_in(
    store: ScoreStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given more old jobs candidates are still in than one prune call looks at, then a left one
    kept = [job_event(f"k{k}", T0 + k, f"J-{k:03}", user=f"u{k}") for k in range(7)]
    await store.apply_batch([*kept, job_event("m", T0 + 50, "J-left", user="ann")])
    await store.erase("acme", "ann")
    # when the list is pruned three jobs a call
    monkeypatch.setattr(job_store, "PRUNE_PAGE", 3)
    pruned = await store.prune_jobs("acme", before=BEFORE)
    # then the left job behind them is pruned too
    assert pruned == ["J-left"]
