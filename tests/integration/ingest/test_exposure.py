"""What the service exposes beyond its API: /metrics only to the scraper when a token is set, and
analytics.js settings that never echo a client's Host header into a shared cache."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from engagement.tools.localstack import free_port
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from tests.integration.ingest.conftest import WRITE_KEY
from tests.support.server import serve

TOKEN = "metrics-scrape-token"
PUBLIC_URL = "https://ingest.acme.example/collect"


@pytest.fixture
def guarded_url(settings: IngestSettings) -> Iterator[str]:
    configured = settings.model_copy(
        update={"ingest_metrics_token": SecretStr(TOKEN), "ingest_public_url": PUBLIC_URL}
    )
    with serve(create_app(configured), ready_path="/readyz") as url:
        yield url


async def test_metrics_with_a_token_configured_refuse_a_scrape_without_it(guarded_url):
    async with httpx.AsyncClient(base_url=guarded_url) as http:
        anonymous = await http.get("/metrics")
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
        scraper = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert (anonymous.status_code, wrong.status_code, scraper.status_code) == (401, 401, 200)
    assert "engagement_ingest_events_total" not in anonymous.text
    assert "engagement_ingest_requests_total" in scraper.text


async def test_settings_point_at_the_configured_public_url_whatever_the_host_header(guarded_url):
    async with httpx.AsyncClient(base_url=guarded_url) as http:
        response = await http.get(
            f"/v1/projects/{WRITE_KEY}/settings", headers={"Host": "evil.example"}
        )
    destination = response.json()["integrations"]["Segment.io"]
    assert (destination["apiHost"], destination["protocol"]) == (
        "ingest.acme.example/collect/v1",
        "https",
    )
    assert response.headers["cache-control"].startswith("public")


async def test_settings_without_a_public_url_are_never_cached_by_a_shared_cache(client):
    response = await client.get(
        f"/v1/projects/{WRITE_KEY}/settings", headers={"Host": "evil.example"}
    )
    assert response.status_code == 200
    assert "public" not in response.headers["cache-control"]
    assert "no-store" in response.headers["cache-control"]


@pytest.fixture
def separate_metrics(settings: IngestSettings) -> Iterator[tuple[str, str]]:
    port = free_port()
    configured = settings.model_copy(
        update={"ingest_metrics_host": "127.0.0.1", "ingest_metrics_port": port}
    )
    with serve(create_app(configured), ready_path="/readyz") as url:
        yield url, f"http://127.0.0.1:{port}"


async def test_metrics_on_their_own_port_are_not_served_on_the_api_port(separate_metrics):
    api, metrics = separate_metrics
    async with httpx.AsyncClient(timeout=10) as http:
        on_api = await http.get(f"{api}/metrics")
        on_own_port = await http.get(f"{metrics}/metrics")
        elsewhere = await http.get(f"{metrics}/v1/tiers")
    assert on_api.status_code == 404
    assert on_own_port.status_code == 200
    assert "engagement_ingest_requests_total" in on_own_port.text
    assert elsewhere.status_code == 404
