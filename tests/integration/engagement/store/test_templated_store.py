"""A tenant's generations of keys (``engagement.store.templated_store``): what a rebuild's replay
writes into its generation stays out of the live one, the tenant's job list too, and a tenant's job
list is pruned in the generation it is on."""

from __future__ import annotations

from dataclasses import replace

import redis.asyncio as aioredis

from engagement.model.templates import Templates, TemplateVersion
from engagement.store import job_store
from engagement.store.redis_store import ScoreStore
from engagement.store.templated_store import GenerationLayout, TemplatedStore, generation_store
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


def rebuilt(generation: int) -> TemplateVersion:
    """acme's template as a rebuild into ``generation`` activates it (same points and tiers)."""
    rules = RULES.model_copy(update={"version": f"acme-g{generation}"})
    version = TemplateVersion("acme", rules, "", "toml", "active", "t", "t", True)  # type: ignore[arg-type]
    return replace(version, generation=generation)


async def test_a_rebuilt_tenants_job_list_is_pruned_in_its_generation(
    store: ScoreStore, redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    # given acme rebuilt into generation 1, J-1 named there 100 days ago by ann, since erased,
    # and the live generation 0's list naming J-1 too
    templates = Templates(RULES)
    assert templates.apply(rebuilt(1))
    templated = TemplatedStore(redis_client, prefix=redis_prefix, templates=templates)
    await store.apply_batch([job_event("m0", T0, "J-1", user="bob")])
    await templated.apply_batch([job_event("m1", T0, "J-1", user="ann")])
    await templated.erase("acme", "ann")
    # when the tenant's jobs left before the retention are pruned
    pruned = await templated.prune_jobs("acme", before=T0 + 90 * 86400)
    # then J-1 leaves generation 1's list; generation 0's, which bob is still in, is untouched
    assert pruned == ["J-1"]
    assert await listed(templated.for_tenant("acme")) == []
    assert await listed(store) == ["J-1"]
