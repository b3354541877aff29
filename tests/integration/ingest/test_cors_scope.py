"""CORS is granted only where a browser page of a source may call: the write paths (and the
analytics.js settings of a key whose source allows the origin), never the read API, erasure,
metrics or hooks; the dashboard reads its own origin and needs no CORS."""

from __future__ import annotations

import pytest

from tests.integration.ingest.conftest import ORIGIN, READ_KEY, SERVER_KEY, WRITE_KEY

ASK_POST = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/v1/candidates/u1"),
        ("GET", "/v1/candidates/u1"),
        ("GET", "/v1/candidates"),
        ("GET", "/v1/tiers"),
        ("GET", "/dashboard/history"),
        ("GET", "/metrics"),
        ("POST", "/v1/hooks/generic/site"),
    ],
)
async def test_preflight_for_a_path_no_page_may_call_is_refused(client, method, path):
    # given an origin that a source of the tenant allows for its write key
    headers = {**ASK_POST, "Access-Control-Request-Method": method}
    # when a page of that origin asks to call a read, erasure, ops or hook path
    response = await client.options(path, headers=headers)
    # then the browser is told no
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers


async def test_preflight_for_a_write_path_allows_post_only(client):
    response = await client.options("/v1/batch", headers=ASK_POST)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ORIGIN
    methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
    assert "DELETE" not in methods and "POST" in methods


async def test_preflight_asking_to_delete_on_a_write_path_is_refused(client):
    headers = {**ASK_POST, "Access-Control-Request-Method": "DELETE"}
    response = await client.options("/v1/batch", headers=headers)
    assert response.status_code == 403


async def test_read_api_answers_carry_no_cors_header_for_a_source_origin(client):
    headers = {"Origin": ORIGIN, "Authorization": f"Bearer {READ_KEY}"}
    response = await client.get("/v1/tiers", headers=headers)
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_settings_preflight_is_per_source(client):
    ask = {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}
    browser = await client.options(f"/v1/projects/{WRITE_KEY}/settings", headers=ask)
    server = await client.options(f"/v1/projects/{SERVER_KEY}/settings", headers=ask)
    assert (browser.status_code, server.status_code) == (204, 403)


@pytest.mark.parametrize("origin", [None, ORIGIN, "https://evil.example"])
async def test_cacheable_browser_answers_vary_by_origin_whoever_asks(client, origin):
    # a shared cache must not hand one origin's answer (or a server's, without CORS) to another
    headers = {"Origin": origin} if origin else {}
    settings = await client.get(f"/v1/projects/{WRITE_KEY}/settings", headers=headers)
    tracker = await client.get("/v1/tracker.js", headers=headers)
    for response in (settings, tracker):
        assert "origin" in response.headers.get("vary", "").lower(), response.headers


async def test_an_allowed_answer_names_origin_once_in_vary(client):
    response = await client.get(f"/v1/projects/{WRITE_KEY}/settings", headers={"Origin": ORIGIN})
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert [v.strip() for v in response.headers["vary"].split(",")].count("Origin") == 1
