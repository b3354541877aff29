"""``POST /v1/rules/rebuild`` and ``GET /v1/rules/rebuild`` (docs/api.md, "Score templates"): the
tenant's admin key requests a rebuild under its newest version, at most one at a time, and any
of its keys follows its state (a scorer runs it: tests/integration/scorer/test_tenant_rebuild.py)."""

from __future__ import annotations

from typing import Any

import httpx
import redis.asyncio as aioredis

from engagement.store.rebuild_requests import RebuildRequests
from engagement.store.redis_keys import KeyLayout
from tests.integration.ingest.test_rules_api import admin, reader, template


async def test_a_rebuild_needs_the_tenants_admin_key(client: httpx.AsyncClient):
    await client.put("/v1/rules", content=template("a-1"), headers=admin())
    assert (await client.post("/v1/rules/rebuild")).status_code == 401
    as_reader = await client.post("/v1/rules/rebuild", headers=reader())
    assert as_reader.status_code == 401, as_reader.text
    assert (await client.get("/v1/rules/rebuild", headers=reader())).status_code == 404


async def test_a_tenant_without_a_template_of_its_own_has_nothing_to_rebuild(
    client: httpx.AsyncClient,
):
    answer = await client.post("/v1/rules/rebuild", headers=admin())
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "no_template"


async def test_a_rebuild_is_accepted_and_its_state_is_visible(client: httpx.AsyncClient):
    await client.put("/v1/rules", content=template("s-1"), headers=admin())
    await client.put("/v1/rules", content=template("s-2", half_life=60), headers=admin())
    answer = await client.post("/v1/rules/rebuild", headers=admin())
    assert answer.status_code == 202, answer.text
    assert answer.headers["location"] == "/v1/rules/rebuild"
    accepted = answer.json()
    assert (accepted["state"], accepted["version"]) == ("requested", "s-2")
    followed = (await client.get("/v1/rules/rebuild", headers=reader())).json()
    assert followed == accepted


async def test_a_second_rebuild_while_one_is_in_progress_answers_that_one(
    client: httpx.AsyncClient,
):
    await client.put("/v1/rules", content=template("p-1"), headers=admin())
    first = (await client.post("/v1/rules/rebuild", headers=admin())).json()
    again = await client.post("/v1/rules/rebuild", headers=admin())
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "rebuild_in_progress"
    assert again.json()["rebuild"]["id"] == first["id"]
    assert (await client.get("/v1/rules/rebuild", headers=reader())).json()["id"] == first["id"]


async def test_a_new_rebuild_is_accepted_once_the_last_one_finished(
    client: httpx.AsyncClient, redis_url: str, redis_prefix: str, tenant: str
):
    await client.put("/v1/rules", content=template("f-1"), headers=admin())
    first = (await client.post("/v1/rules/rebuild", headers=admin())).json()
    redis = aioredis.from_url(redis_url)
    try:  # a scorer gave it up
        requests = RebuildRequests(redis, KeyLayout(redis_prefix))
        assert await requests.queued() == [tenant], "queued for the scorers"
        await requests.finish(tenant, "aborted", "2026-01-01T00:00:00+00:00", error="gave up")
    finally:
        await redis.aclose()
    aborted = (await client.get("/v1/rules/rebuild", headers=reader())).json()
    assert (aborted["state"], aborted["error"]) == ("aborted", "gave up")
    second = await client.post("/v1/rules/rebuild", headers=admin())
    assert second.status_code == 202, second.text
    assert second.json()["id"] != first["id"]


async def test_each_version_lists_the_state_of_its_rebuild_as_the_store_knows_it(
    client: httpx.AsyncClient, redis_url: str, redis_prefix: str, tenant: str
):
    # given a rebuild requested under the tenant's newest version
    await client.put("/v1/rules", content=template("v-1"), headers=admin())
    await client.put("/v1/rules", content=template("v-2", half_life=60), headers=admin())
    requested = (await client.post("/v1/rules/rebuild", headers=admin())).json()

    def rebuilds(answer: httpx.Response) -> dict[str, Any]:
        assert answer.status_code == 200, answer.text
        return {v["version"]: v["rebuild"] for v in answer.json()["versions"]}

    # when the versions are listed, before and after a scorer gave it up
    before = rebuilds(await client.get("/v1/rules/versions", headers=reader()))
    redis = aioredis.from_url(redis_url)
    try:
        requests = RebuildRequests(redis, KeyLayout(redis_prefix))
        await requests.finish(tenant, "aborted", "2026-01-01T00:00:00+00:00", error="gave up")
    finally:
        await redis.aclose()
    after = rebuilds(await client.get("/v1/rules/versions", headers=reader()))

    # then the version it names shows its state, the other none
    assert before["v-1"] is None and after["v-1"] is None
    assert (before["v-2"]["id"], before["v-2"]["state"]) == (requested["id"], "requested")
    assert (after["v-2"]["state"], after["v-2"]["error"]) == ("aborted", "gave up")
    assert "version" not in after["v-2"] and "tenantId" not in after["v-2"]
