"""Every refusal is a 400 ``{"error"}`` (never FastAPI's 422), and the OpenAPI document
describes the answers the service really gives."""

from __future__ import annotations

import time

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import BaseModel

from engagement.model.rules import load_rules
from engagement.store.redis_store import ScoreStore
from services.ingest.answers import (
    CandidateScore,
    Contribution,
    IngestAnswer,
    LeaderboardPage,
    TierCounts,
)
from tests.integration.ingest.conftest import READ_KEY, SERVER_KEY, basic
from tests.unit.engagement.model.strategies import interaction

BEARER = {"Authorization": f"Bearer {READ_KEY}"}


@pytest.mark.parametrize(
    "path",
    [
        "/v1/candidates?limit=0",
        "/v1/candidates?limit=many",
        "/v1/candidates/" + "x" * 513,
        "/v1/candidates/",
        "/dashboard/history?days=0",
    ],
)
async def test_a_refused_parameter_is_a_400_in_the_error_shape(client: httpx.AsyncClient, path):
    answer = await client.get(path, headers=BEARER)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_request"


async def test_the_openapi_document_never_promises_a_422(client: httpx.AsyncClient):
    document = (await client.get("/openapi.json")).json()
    statuses = {
        status
        for operations in document["paths"].values()
        for operation in operations.values()
        for status in operation["responses"]
    }
    assert "422" not in statuses
    assert "HTTPValidationError" not in document["components"]["schemas"]


async def test_the_openapi_document_describes_each_read_and_write_answer(
    client: httpx.AsyncClient,
):
    paths = (await client.get("/openapi.json")).json()["paths"]
    candidate = paths["/v1/candidates/{candidate_id}"]
    assert set(candidate["get"]["responses"]) >= {"200", "400", "401", "404", "429", "503"}
    assert set(candidate["delete"]["responses"]) >= {"204", "400", "401", "429", "503"}
    assert set(paths["/v1/candidates"]["get"]["responses"]) >= {"200", "400", "401", "429", "503"}
    assert set(paths["/v1/batch"]["post"]["responses"]) >= {"200", "400", "413", "503"}
    for path, method, model in [
        ("/v1/candidates/{candidate_id}", "get", CandidateScore),
        ("/v1/candidates", "get", LeaderboardPage),
        ("/v1/tiers", "get", TierCounts),
        ("/v1/batch", "post", IngestAnswer),
        ("/v1/track", "post", IngestAnswer),
    ]:
        schema = paths[path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema["$ref"] == f"#/components/schemas/{model.__name__}"


def _shaped_as(body: dict, model: type[BaseModel]) -> bool:
    model.model_validate(body)
    return set(body) == set(model.model_fields)


async def test_the_200_bodies_have_the_documented_shapes(
    settings, client: httpx.AsyncClient, redis_client: aioredis.Redis, redis_prefix, tenant
):
    # given a scored candidate
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=load_rules(settings.rules_file))
    await store.apply_batch([interaction("m1", time.time() - 5, user_id="u1", tenant=tenant)])
    # when each route answers 200, then its body is shaped as its documented model
    event = {"userId": "u2", "event": "Job Viewed"}
    sent = await client.post("/v1/track", json=event, headers=basic(SERVER_KEY))
    assert _shaped_as(sent.json(), IngestAnswer)
    read = (await client.get("/v1/candidates/u1", headers=BEARER)).json()
    assert _shaped_as(read, CandidateScore)
    assert _shaped_as(read["contributions"][0], Contribution)
    page = (await client.get("/v1/candidates", headers=BEARER)).json()
    assert _shaped_as(page, LeaderboardPage)
    tiers = (await client.get("/v1/tiers", headers=BEARER)).json()
    assert _shaped_as(tiers, TierCounts)
