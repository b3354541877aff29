"""The cursors of the paginated reads (``GET /v1/candidates``, ``GET /v1/jobs``, ``GET
/v1/jobs/{id}/candidates``) over HTTP against the running ingest (real Redis): a cursor no page
answered is a 400 ``invalid_cursor`` on every route, every cursor a page answered reads on."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import redis.asyncio as aioredis

from engagement.model.rules import load_rules
from engagement.store.rank_reads import decode_cursor
from engagement.store.redis_store import ScoreStore
from tests.integration.ingest.test_job_api import BEARER, naming

PAGED = ("/v1/candidates", "/v1/jobs", "/v1/jobs/J-1/candidates")


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


async def test_a_cursor_whose_number_is_nan_or_infinite_is_a_400_on_every_route(
    settings: Any,
    client: httpx.AsyncClient,
    redis_client: aioredis.Redis,
    redis_prefix: str,
    tenant: str,
) -> None:
    # given a candidate of job J-1, so every route has a page to read
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=load_rules(settings.rules_file))
    await store.apply_batch([naming("J-1", "m1", "ann", tenant, "Job Viewed")])
    # when each route is asked for the page after a cursor whose number Redis takes no bound of
    answers = {
        (path, text): await client.get(path, params={"cursor": cursor(text)}, headers=BEARER)
        for path in PAGED
        for text in ("nan|ann", "inf|J-1", "1e999|ann", "nan|")
    }
    # then every one is refused as a cursor this API never returned
    assert {k: a.status_code for k, a in answers.items()} == dict.fromkeys(answers, 400)
    assert {a.json()["error"]["code"] for a in answers.values()} == {"invalid_cursor"}


async def test_a_page_ending_with_a_candidate_at_no_points_reads_on(
    settings: Any,
    client: httpx.AsyncClient,
    redis_client: aioredis.Redis,
    redis_prefix: str,
    tenant: str,
) -> None:
    # given two candidates of job J-1 whose only event took points away (rank key -inf)
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=load_rules(settings.rules_file))
    await store.apply_batch(
        [naming("J-1", f"m-{who}", who, tenant, "Job Alert Unsubscribed") for who in ("al", "bo")]
    )
    for path in ("/v1/candidates", "/v1/jobs/J-1/candidates"):
        # when their leaderboard is read one candidate a page
        first = (await client.get(path, params={"limit": 1}, headers=BEARER)).json()
        following = await client.get(
            path, params={"limit": 1, "cursor": first["nextCursor"]}, headers=BEARER
        )
        # then the first page's cursor (at -inf) gives the other candidate
        assert decode_cursor(first["nextCursor"])[0] == float("-inf")
        assert following.status_code == 200, following.text
        ids = [c["candidateId"] for c in first["candidates"] + following.json()["candidates"]]
        assert sorted(ids) == ["al", "bo"]
