"""The scorer's expiry look also prunes each tenant's job list (``services.scorer.expiry``): a job
whose candidates expired or left, named by no event for the retention, leaves it (real Redis;
the handler in process, its records captured)."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from engagement.kafka.score_records import OutRecord
from engagement.store import job_store
from engagement.store.redis_store import ScoreStore
from services.scorer.expiry import expire_idle
from tests.integration.engagement.store.test_job_profiles import job_event
from tests.integration.scorer.test_anonymous_expiry import NOW, RETENTION, raw
from tests.support.handlers import batch_handler
from tests.unit.engagement.model.strategies import RULES, T0


async def test_a_job_whose_only_candidate_expired_leaves_the_list_at_the_next_look(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=RULES)
    # given J-anon, viewed 100 days ago by an anonymous visitor only, and J-known, viewed then
    # by an identified candidate
    await store.apply_batch(
        [
            job_event("m1", T0, "J-anon", user=None, anonymous="v1"),
            job_event("m2", T0, "J-known", user="known"),
        ]
    )
    sent: list[OutRecord] = []

    async def send(records: Sequence[OutRecord]) -> None:
        sent.extend(records)

    async def look() -> int:
        return await expire_idle(
            store, send, interactions_topic="interactions", retention_seconds=RETENTION, now=NOW
        )

    # when the scorer looks, erases the idle visitor it requested, and looks again
    await look()
    await batch_handler(store, send, clock=lambda: NOW).handle([raw(sent[0].value, sent[0].key)])
    await look()
    # then J-anon left the list, J-known stays
    page = await job_store.tenant_jobs(store, "acme", 50, None, NOW.timestamp())
    assert [job.job_id for job in page.jobs] == ["J-known"]
