"""The tenant's score template through the admin API (docs/api.md, "Score templates"): stored
whole on the rules topic or refused with every problem listed, read back, versioned."""

from __future__ import annotations

import httpx
import orjson

from tests.integration.ingest.conftest import ADMIN_KEY, READ_KEY

TEMPLATE = """
version = "{version}"
half_life_days = {half_life}
score_scale = 50.0
alert_tier = "hot"

[[tiers]]
name = "cold"
enter = 1
exit = 1

[[tiers]]
name = "hot"
enter = 60
exit = 55

[events."Article Read"]
pillar = "activity"
points = {points}
"""

BROKEN = """version = "broken-1"
half_life_days = -1
score_scale = 50.0
alert_tier = "warm"

[[tiers]]
name = "cold"
enter = 1
exit = 1

[[tiers]]
name = "hot"
enter = 60
exit = 65

[events."Article Read"]
pillar = "reading"
points = 4
"""


def admin(content_type: str = "application/toml") -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": content_type}


def reader() -> dict[str, str]:
    return {"Authorization": f"Bearer {READ_KEY}"}


def template(version: str, *, points: float = 9, half_life: float = 30.0) -> str:
    return TEMPLATE.format(version=version, points=points, half_life=half_life)


async def test_a_valid_toml_template_is_stored_active_and_read_back(client: httpx.AsyncClient):
    put = await client.put("/v1/rules", content=template("t-1"), headers=admin())
    assert put.status_code == 201, put.text
    assert put.json()["state"] == "active"
    got = (await client.get("/v1/rules", headers=reader())).json()
    assert (got["version"], got["source"]) == ("t-1", "tenant")
    assert got["template"]["events"]["Article Read"]["points"] == 9
    assert got["text"] == template("t-1")


async def test_a_json_template_of_the_same_structure_is_accepted(client: httpx.AsyncClient):
    as_toml = (await client.put("/v1/rules", content=template("j-0"), headers=admin())).json()
    assert as_toml["state"] == "active"
    body = (await client.get("/v1/rules", headers=reader())).json()["template"]
    body["version"] = "j-1"
    body["events"]["Article Read"]["points"] = 11
    put = await client.put(
        "/v1/rules", content=orjson.dumps(body), headers=admin("application/json")
    )
    assert put.status_code == 201, put.text
    got = (await client.get("/v1/rules", headers=reader())).json()
    assert (got["version"], got["media"]) == ("j-1", "json")
    assert got["template"]["events"]["Article Read"]["points"] == 11


async def test_an_invalid_template_is_refused_with_every_problem_and_nothing_stored(
    client: httpx.AsyncClient,
):
    before = (await client.get("/v1/rules", headers=reader())).json()
    put = await client.put("/v1/rules", content=BROKEN, headers=admin())
    assert put.status_code == 422
    error = put.json()["error"]
    assert error["code"] == "invalid_template"
    found = {(p["line"], p["field"]) for p in error["problems"]}
    assert (
        found
        == {
            (2, "half_life_days"),
            (17, 'events."Article Read".pillar'),
        }
        or {(2, "half_life_days"), (17, 'events."Article Read".pillar')} <= found
    )
    assert (await client.get("/v1/rules", headers=reader())).json() == before
    assert (await client.get("/v1/rules/versions", headers=reader())).json()["versions"] == []


async def test_tier_problems_are_each_named_with_their_line(client: httpx.AsyncClient):
    text = BROKEN.replace("half_life_days = -1", "half_life_days = 2").replace(
        "reading", "activity"
    )
    put = await client.put("/v1/rules", content=text, headers=admin())
    assert put.status_code == 422
    found = {(p["line"], p["field"]) for p in put.json()["error"]["problems"]}
    assert found == {(14, "tiers[1].exit"), (4, "alert_tier")}


async def test_a_json_syntax_error_names_its_line(client: httpx.AsyncClient):
    put = await client.put(
        "/v1/rules", content=b'{\n"version": "x",\n}', headers=admin("application/json")
    )
    assert put.status_code == 422
    [problem] = put.json()["error"]["problems"]
    assert problem["line"] == 3 and problem["message"].startswith("JSON syntax")


async def test_versions_list_the_history_newest_first(client: httpx.AsyncClient):
    for version in ("h-1", "h-2"):
        put = await client.put("/v1/rules", content=template(version), headers=admin())
        assert put.status_code == 201
    listed = (await client.get("/v1/rules/versions", headers=reader())).json()["versions"]
    assert [(v["version"], v["state"]) for v in listed] == [
        ("h-2", "active"),
        ("h-1", "superseded"),
    ]


async def test_another_half_life_waits_for_a_rebuild_and_the_template_in_force_stays(
    client: httpx.AsyncClient,
):
    await client.put("/v1/rules", content=template("hl-1"), headers=admin())
    put = await client.put("/v1/rules", content=template("hl-2", half_life=7), headers=admin())
    assert put.status_code == 201
    assert put.json()["state"] == "pending"
    assert (await client.get("/v1/rules", headers=reader())).json()["version"] == "hl-1"


async def test_a_version_string_is_stored_once(client: httpx.AsyncClient):
    assert (
        await client.put("/v1/rules", content=template("v-1"), headers=admin())
    ).status_code == 201
    again = await client.put("/v1/rules", content=template("v-1"), headers=admin())
    assert again.status_code == 200  # a retried PUT
    other = await client.put("/v1/rules", content=template("v-1", points=3), headers=admin())
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "version_exists"


async def test_only_the_tenants_admin_key_sets_a_template(client: httpx.AsyncClient):
    read_key = {"Authorization": f"Bearer {READ_KEY}", "Content-Type": "application/toml"}
    assert (
        await client.put("/v1/rules", content=template("a-1"), headers=read_key)
    ).status_code == 401
    bare = {"Content-Type": "application/toml"}
    assert (await client.put("/v1/rules", content=template("a-1"), headers=bare)).status_code == 401
    assert (await client.get("/v1/rules")).status_code == 401
    wrong = admin("application/xml")
    assert (
        await client.put("/v1/rules", content=template("a-1"), headers=wrong)
    ).status_code == 415


async def test_a_tenant_without_a_template_reads_the_default(client: httpx.AsyncClient):
    got = (await client.get("/v1/rules", headers=reader())).json()
    assert got["source"] == "default"
    assert got["version"] == "2026-11-default"
