"""The read API of engagement per job, over HTTP against the running ingest (real Redis)."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

import httpx
import redis.asyncio as aioredis

from engagement.model.records import Interaction
from engagement.model.rules import load_rules
from engagement.store.redis_store import ScoreStore
from services.ingest.answers import LeaderboardPage
from services.ingest.job_api import CandidateJobs, TenantJobs
from tests.integration.ingest.conftest import READ_KEY
from tests.unit.engagement.model.strategies import interaction

BEARER = {"Authorization": f"Bearer {READ_KEY}"}


def naming(job: str, message_id: str, user: str, tenant: str, event: str) -> Interaction:
    """A track event of ``user`` naming ``job``, five seconds ago."""
    base = interaction(message_id, time.time() - 5, event=event, user_id=user, tenant=tenant)
    return base.model_copy(update={"properties": {"jobId": job}})


async def seed(settings: Any, redis_client: aioredis.Redis, prefix: str, tenant: str) -> None:
    """ann applied to J/7 and viewed J-8; bob viewed J/7; cid read an article about no job."""
    store = ScoreStore(redis_client, prefix=prefix, rules=load_rules(settings.rules_file))
    await store.apply_batch(
        [
            naming("J/7", "m1", "ann", tenant, "Application Submitted"),
            naming("J-8", "m2", "ann", tenant, "Job Viewed"),
            naming("J/7", "m3", "bob", tenant, "Job Viewed"),
            interaction("m4", time.time() - 5, event="Article Read", user_id="cid", tenant=tenant),
        ]
    )


async def test_a_jobs_leaderboard_answers_in_the_shape_of_the_tenants(
    settings: Any,
    client: httpx.AsyncClient,
    redis_client: aioredis.Redis,
    redis_prefix: str,
    tenant: str,
) -> None:
    await seed(settings, redis_client, redis_prefix, tenant)
    path = f"/v1/jobs/{quote('J/7', safe='')}/candidates"
    answer = await client.get(path, headers=BEARER)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    LeaderboardPage.model_validate(body)
    assert set(body) == {"candidates", "nextCursor", "asOf"}
    assert [(c["candidateId"], c["tier"]) for c in body["candidates"]] == [
        ("ann", "warm"), ("bob", "cold")
    ]  # fmt: skip
    warm = (await client.get(path, params={"tier": "warm"}, headers=BEARER)).json()
    assert [c["candidateId"] for c in warm["candidates"]] == ["ann"]
    first = (await client.get(path, params={"limit": 1}, headers=BEARER)).json()
    rest = await client.get(
        path, params={"limit": 1, "cursor": first["nextCursor"]}, headers=BEARER
    )
    assert [c["candidateId"] for c in rest.json()["candidates"]] == ["bob"]


async def test_an_unknown_job_is_an_empty_page_and_an_unknown_tier_a_400(
    client: httpx.AsyncClient,
) -> None:
    empty = await client.get("/v1/jobs/nobody/candidates", headers=BEARER)
    assert empty.status_code == 200 and empty.json()["candidates"] == []
    refused = await client.get("/v1/jobs/J/candidates", params={"tier": "boiling"}, headers=BEARER)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "unknown_tier"


async def test_a_candidates_jobs_are_ranked_by_their_score(
    settings: Any,
    client: httpx.AsyncClient,
    redis_client: aioredis.Redis,
    redis_prefix: str,
    tenant: str,
) -> None:
    await seed(settings, redis_client, redis_prefix, tenant)
    answer = await client.get("/v1/candidates/ann/jobs", headers=BEARER)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    CandidateJobs.model_validate(body)
    assert body["candidateId"] == "ann"
    assert [(j["jobId"], j["score"]) for j in body["jobs"]] == [("J/7", 55), ("J-8", 4)]
    assert body["jobs"][0]["pillars"]["interaction"] > 39.99
    none = await client.get("/v1/candidates/cid/jobs", headers=BEARER)
    assert none.status_code == 200 and none.json()["jobs"] == []
    unknown = await client.get("/v1/candidates/nobody/jobs", headers=BEARER)
    assert unknown.status_code == 404


async def test_a_candidate_id_ending_in_slash_jobs_is_still_that_candidate(
    settings: Any,
    client: httpx.AsyncClient,
    redis_client: aioredis.Redis,
    redis_prefix: str,
    tenant: str,
) -> None:
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=load_rules(settings.rules_file))
    await store.apply_batch([interaction("m1", time.time() - 5, user_id="a/jobs", tenant=tenant)])
    answer = await client.get("/v1/candidates/" + quote("a/jobs", safe=""), headers=BEARER)
    assert answer.status_code == 200, answer.text
    assert answer.json()["candidateId"] == "a/jobs"


async def test_the_tenants_jobs_are_listed_most_recently_engaged_first_with_their_tiers(
    settings: Any,
    client: httpx.AsyncClient,
    redis_client: aioredis.Redis,
    redis_prefix: str,
    tenant: str,
) -> None:
    # given bob's view of J/7 as the tenant's latest event naming a job
    await seed(settings, redis_client, redis_prefix, tenant)
    # when the tenant's jobs are listed, a page at a time
    answer = await client.get("/v1/jobs", headers=BEARER)
    first = await client.get("/v1/jobs", params={"limit": 1}, headers=BEARER)
    cursor = first.json()["nextCursor"]
    rest = await client.get("/v1/jobs", params={"limit": 1, "cursor": cursor}, headers=BEARER)
    # then J/7 (ann warm, bob cold) comes before J-8 (ann cold), each page after the last
    assert answer.status_code == 200, answer.text
    body = answer.json()
    TenantJobs.model_validate(body)
    assert [(j["jobId"], j["candidates"], j["total"]) for j in body["jobs"]] == [
        ("J/7", {"cold": 1, "warm": 1, "hot": 0}, 2),
        ("J-8", {"cold": 1, "warm": 0, "hot": 0}, 1),
    ]
    assert body["nextCursor"] is None
    assert [j["jobId"] for j in first.json()["jobs"]] == ["J/7"]
    assert [j["jobId"] for j in rest.json()["jobs"]] == ["J-8"]
    assert rest.json()["nextCursor"] is None
    bad = await client.get("/v1/jobs", params={"cursor": "nonsense"}, headers=BEARER)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"


async def test_the_job_routes_need_a_read_key(client: httpx.AsyncClient) -> None:
    for path in ("/v1/jobs", "/v1/jobs/J/candidates", "/v1/candidates/ann/jobs"):
        assert (await client.get(path)).status_code == 401


async def seed_jobs(settings: Any, redis_client: aioredis.Redis, prefix: str, tenant: str) -> None:
    """120 jobs J-0 .. J-119, each viewed by a candidate of its own; the even ones also applied
    to by another (warm)."""
    store = ScoreStore(redis_client, prefix=prefix, rules=load_rules(settings.rules_file))
    views = [naming(f"J-{k}", f"v{k}", f"c{k}", tenant, "Job Viewed") for k in range(120)]
    applied = [
        naming(f"J-{k}", f"a{k}", f"d{k}", tenant, "Application Submitted")
        for k in range(0, 120, 2)
    ]
    await store.apply_batch(views + applied)


def expected_counts(job: str) -> tuple[dict[str, int], int]:
    even = int(job.removeprefix("J-")) % 2 == 0
    return {"cold": 1, "warm": int(even), "hot": 0}, 1 + int(even)


async def test_a_page_of_more_than_100_jobs_answers_each_with_its_counts(
    settings: Any,
    client: httpx.AsyncClient,
    redis_client: aioredis.Redis,
    redis_prefix: str,
    tenant: str,
) -> None:
    # given 120 jobs (more than the connections a Redis client pools by default)
    await seed_jobs(settings, redis_client, redis_prefix, tenant)
    # when they are listed in one page
    answer = await client.get("/v1/jobs", params={"limit": 500}, headers=BEARER)
    # then every job is answered with its candidates per tier
    assert answer.status_code == 200, answer.text
    jobs = answer.json()["jobs"]
    assert sorted(j["jobId"] for j in jobs) == sorted(f"J-{k}" for k in range(120))
    assert all((j["candidates"], j["total"]) == expected_counts(j["jobId"]) for j in jobs)
    assert answer.json()["nextCursor"] is None


async def test_pages_of_jobs_requested_side_by_side_are_all_answered(
    settings: Any,
    client: httpx.AsyncClient,
    redis_client: aioredis.Redis,
    redis_prefix: str,
    tenant: str,
) -> None:
    # given 120 jobs
    await seed_jobs(settings, redis_client, redis_prefix, tenant)
    # when six pages of 100 and a leaderboard are requested at the same time
    answers = await asyncio.gather(
        *(client.get("/v1/jobs", params={"limit": 100}, headers=BEARER) for _ in range(6)),
        client.get("/v1/candidates", headers=BEARER),
    )
    # then each is answered, the pages of jobs alike
    assert [a.status_code for a in answers] == [200] * 7, [a.text[:80] for a in answers]
    pages = [[(j["jobId"], j["total"]) for j in a.json()["jobs"]] for a in answers[:6]]
    assert len(pages[0]) == 100 and all(page == pages[0] for page in pages)
