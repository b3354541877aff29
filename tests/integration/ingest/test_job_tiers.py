"""``GET /v1/jobs/{jobId}/tiers`` over HTTP against the running ingest (real Redis): a job's
candidates per job tier now, in the shape of ``GET /v1/tiers`` plus the job id."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import redis.asyncio as aioredis

from services.ingest.job_tiers import JobTierCounts
from tests.integration.ingest.conftest import READ_KEY
from tests.integration.ingest.test_job_api import seed

BEARER = {"Authorization": f"Bearer {READ_KEY}"}


async def test_a_jobs_tier_counts_count_its_leaderboard_by_job_tier(
    settings: Any,
    client: httpx.AsyncClient,
    redis_client: aioredis.Redis,
    redis_prefix: str,
    tenant: str,
) -> None:
    # given ann (warm) and bob (cold) engaging with J/7, ann with J-8 too
    await seed(settings, redis_client, redis_prefix, tenant)
    # when J/7's tier counts are read, and its leaderboard
    answer = await client.get(f"/v1/jobs/{quote('J/7', safe='')}/tiers", headers=BEARER)
    board = await client.get(f"/v1/jobs/{quote('J/7', safe='')}/candidates", headers=BEARER)
    # then they count the leaderboard's candidates by job tier, named after the job
    assert answer.status_code == 200, answer.text
    body = answer.json()
    JobTierCounts.model_validate(body)
    assert set(body) == {"jobId", "tiers", "asOf"}
    assert body["jobId"] == "J/7"
    assert body["tiers"] == {"cold": 1, "warm": 1, "hot": 0}
    assert sorted(c["tier"] for c in board.json()["candidates"]) == ["cold", "warm"]


async def test_a_job_nobody_engages_with_counts_none_in_each_tier(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/v1/jobs/nobody%3Fx%2Ftiers/tiers", headers=BEARER)
    assert answer.status_code == 200, answer.text
    assert answer.json()["jobId"] == "nobody?x/tiers"
    assert answer.json()["tiers"] == {"cold": 0, "warm": 0, "hot": 0}


async def test_a_jobs_tier_counts_need_a_read_key(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/jobs/J/tiers")).status_code == 401


async def test_the_openapi_document_describes_the_job_tier_counts(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    get = paths["/v1/jobs/{job_id}/tiers"]["get"]
    assert set(get["responses"]) >= {"200", "400", "401", "429", "503"}
    schema = get["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"] == "#/components/schemas/JobTierCounts"
