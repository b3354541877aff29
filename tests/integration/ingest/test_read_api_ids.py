"""Every id the door accepts can be read and erased over the read API (path characters too)."""

from __future__ import annotations

import time
from urllib.parse import quote

import httpx
import pytest
import redis.asyncio as aioredis

from engagement.model.rules import load_rules
from engagement.store.redis_store import ScoreStore
from tests.integration.ingest.conftest import ADMIN_KEY, READ_KEY
from tests.unit.engagement.model.strategies import interaction

PATH_LIKE_IDS = [
    "a/b",
    "/lead",
    "trail/",
    "a//b",
    "x%2Fy",
    "q?x=1",
    "h#1",
    "sp ace",
    "100%",
    "a/..",
]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _scored(settings, redis_client: aioredis.Redis, prefix: str, tenant: str, user: str):
    store = ScoreStore(redis_client, prefix=prefix, rules=load_rules(settings.rules_file))
    await store.apply_batch([interaction("m1", time.time() - 5, user_id=user, tenant=tenant)])


@pytest.mark.parametrize("candidate", PATH_LIKE_IDS)
async def test_a_candidate_whose_id_looks_like_a_path_is_read_and_erased(
    settings,
    client: httpx.AsyncClient,
    redis_client: aioredis.Redis,
    redis_prefix: str,
    tenant: str,
    candidate: str,
) -> None:
    # given a scored candidate whose id holds URL syntax
    await _scored(settings, redis_client, redis_prefix, tenant, candidate)
    path = "/v1/candidates/" + quote(candidate, safe="")  # as encodeURIComponent writes it
    # when it is read, then its score is answered under its own id
    read = await client.get(path, headers=bearer(READ_KEY))
    assert read.status_code == 200, read.text
    assert read.json()["candidateId"] == candidate
    # and when it is erased, then it is gone
    erased = await client.delete(path, headers=bearer(ADMIN_KEY))
    assert erased.status_code == 204, erased.text
    assert (await client.get(path, headers=bearer(READ_KEY))).status_code == 404


async def test_an_empty_candidate_id_is_a_400(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/candidates/", headers=bearer(READ_KEY))
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_request"
