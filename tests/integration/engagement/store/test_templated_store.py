"""A tenant's generations of keys (``engagement.store.templated_store.GenerationLayout``): what a
rebuild's replay writes into its generation stays out of the live one, the tenant's job list too."""

from __future__ import annotations

import redis.asyncio as aioredis

from engagement.store import job_store
from engagement.store.redis_store import ScoreStore
from engagement.store.templated_store import GenerationLayout, generation_store
from services.scorer.tenant_rebuild import drop_generation
from tests.integration.engagement.store.test_job_profiles import job_event
from tests.unit.engagement.model.strategies import RULES, T0


async def listed(store: ScoreStore) -> list[str]:
    page = await job_store.tenant_jobs(store, "acme", 500, None, T0 + 1)
    return [job.job_id for job in page.jobs]


async def test_a_replay_into_a_new_generation_lists_its_jobs_there_not_in_the_live_list(
    store: ScoreStore,
) -> None:
    # given a live event naming J-live, and a rebuild's replay into generation 1 naming J-replay
    await store.apply_batch([job_event("m1", T0, "J-live", user="ann")])
    replay = generation_store(store, RULES, 1)
    await replay.apply_batch([job_event("m2", T0, "J-replay", user="bob")])
    # when each generation's job list is read
    live, rebuilt = await listed(store), await listed(replay)
    # then each lists only the jobs scored into it
    assert live == ["J-live"]
    assert rebuilt == ["J-replay"]


async def test_dropping_a_generation_drops_its_job_list_and_leaves_the_live_one(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given jobs listed live and in an attempt's generation 1
    await store.apply_batch([job_event("m1", T0, "J-live", user="ann")])
    replay = generation_store(store, RULES, 1)
    await replay.apply_batch([job_event("m2", T0, "J-replay", user="bob")])
    # when the attempt's generation is dropped
    await drop_generation(redis_client, redis_prefix, "acme", 1)
    # then its job list is gone, the live one stays
    assert not await redis_client.exists(GenerationLayout(redis_prefix, 1).jobs("acme"))
    assert await listed(store) == ["J-live"]


def test_generation_zero_lists_jobs_in_the_plain_key() -> None:
    assert GenerationLayout("p:", 0).jobs("acme") == "p:{acme}:jobs"
    assert GenerationLayout("p:", 2).jobs("acme") == "p:g2{acme}:jobs"
