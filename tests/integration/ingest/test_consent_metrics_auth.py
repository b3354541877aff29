"""Consent drops, Prometheus metrics and the bearer-key dependencies of the read API."""

from __future__ import annotations

import httpx
import orjson
from fastapi import Depends

from services.ingest.app import create_app
from services.ingest.auth import require_admin_key, require_read_key
from tests.integration.ingest.conftest import ADMIN_KEY, CONSENT_KEY, READ_KEY, SERVER_KEY, basic
from tests.support.kafka import read_topic
from tests.support.server import serve


def _event(message_id: str, preferences: dict | None) -> dict:
    context = {} if preferences is None else {"consent": {"categoryPreferences": preferences}}
    return {"type": "page", "anonymousId": "a1", "messageId": message_id, "context": context}


async def test_source_requiring_consent_drops_events_without_analytics_consent(
    client, kafka_bootstrap, topics
):
    # given a consent-required source and events with and without analytics consent
    batch = [
        _event("yes", {"analytics": True}),
        _event("yes-capitalised", {"Analytics": True}),
        _event("no", {"analytics": False}),
        _event("absent", None),
        _event("empty", {}),
    ]
    # when they are posted
    response = await client.post("/v1/batch", json={"batch": batch}, headers=basic(CONSENT_KEY))
    # then only the consented ones are written; the others are counted as dropped
    assert response.json() == {"success": True, "accepted": 2, "dropped": 3, "rejected": []}
    records = await read_topic(kafka_bootstrap, topics.interactions, count=2, timeout=5)
    assert sorted(orjson.loads(r.value)["messageId"] for r in records) == ["yes", "yes-capitalised"]


async def test_metrics_count_requests_and_events_by_outcome(client, tenant):
    batch = [{"type": "track", "userId": "u", "event": "E"}, {"type": "track", "userId": "u"}]
    await client.post("/v1/batch", json={"batch": batch}, headers=basic(SERVER_KEY))
    text = (await client.get("/metrics")).text
    assert (
        'engagement_ingest_requests_total{endpoint="/v1/batch",reason="",status="200"} 1.0' in text
    )
    for outcome in ("accepted", "rejected"):
        line = f'engagement_ingest_events_total{{outcome="{outcome}",source="backend",tenant="{tenant}"}} 1.0'
        assert line in text
    for histogram in ("request_seconds", "produce_seconds", "batch_events"):
        assert f"engagement_ingest_{histogram}_count" in text


def test_two_apps_in_one_process_have_their_own_metrics(settings):
    first, second = create_app(settings), create_app(settings)
    assert first.state.metrics.registry is not second.state.metrics.registry


async def test_bearer_dependencies_return_the_tenant_of_read_and_admin_keys(settings, tenant):
    # given an app with a read-only and an admin-only probe route
    app = create_app(settings)

    @app.get("/probe/read")
    async def read(tenant_id: str = Depends(require_read_key)) -> dict[str, str]:
        return {"tenant": tenant_id}

    @app.get("/probe/admin")
    async def admin(tenant_id: str = Depends(require_admin_key)) -> dict[str, str]:
        return {"tenant": tenant_id}

    def bearer(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    with serve(app, ready_path="/readyz") as url:
        async with httpx.AsyncClient(base_url=url) as http:
            read_ok = await http.get("/probe/read", headers=bearer(READ_KEY))
            admin_reads = await http.get("/probe/read", headers=bearer(ADMIN_KEY))
            admin_ok = await http.get("/probe/admin", headers=bearer(ADMIN_KEY))
            read_not_admin = await http.get("/probe/admin", headers=bearer(READ_KEY))
            none = await http.get("/probe/read")
            write_key = await http.get("/probe/read", headers=bearer(SERVER_KEY))
    assert [r.json()["tenant"] for r in (read_ok, admin_reads, admin_ok)] == [tenant] * 3
    assert [r.status_code for r in (read_not_admin, none, write_key)] == [401, 401, 401]
    assert none.json()["error"]["code"] == "invalid_key"
