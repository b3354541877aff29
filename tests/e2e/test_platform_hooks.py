"""Platform webhooks end to end: handshakes, signatures on raw bytes, leads on the interactions topic."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from engagement.kafka.cloudevents import headers_dict
from services.ingest.platform_hooks import LEAD_EVENT, HookSource
from tests.e2e.pages.stack import settings_for, sources_toml, web_app
from tests.support.kafka import read_topic
from tests.support.server import serve
from tests.unit.ingest.fixtures.platform_payloads import (
    GENERIC_LEAD,
    GOOGLE_TEST_LEAD,
    LINKEDIN_LEAD_CREATED,
    META_LEADGEN,
)

APP_SECRET = "meta-app-secret"
VERIFY_TOKEN = "meta-verify-token"
LI_SECRET = "linkedin-client-secret"
GOOGLE_KEY = GOOGLE_TEST_LEAD["google_key"]
GENERIC_SECRET = "whsec_" + base64.b64encode(b"generic-hook-key-0123456789abcd").decode()


@pytest.fixture
def tenant(unique: str) -> str:
    return f"acme{unique}"


@pytest.fixture
def hook_url(
    kafka_bootstrap, redis_url, topic_prefix, redis_prefix, tmp_path, tenant
) -> Iterator[str]:
    sources = tmp_path / "sources.toml"
    sources.write_text(sources_toml(tenant, "http://127.0.0.1"))
    settings = settings_for(
        kafka=kafka_bootstrap,
        redis=redis_url,
        topic_prefix=topic_prefix,
        redis_prefix=redis_prefix,
        sources=sources,
    )
    hooks = [
        HookSource(
            source_id="fb",
            tenant_id=tenant,
            provider="meta",
            secret=APP_SECRET,
            verify_token=VERIFY_TOKEN,
        ),
        HookSource(source_id="li", tenant_id=tenant, provider="linkedin", secret=LI_SECRET),
        HookSource(source_id="gads", tenant_id=tenant, provider="google", secret=GOOGLE_KEY),
        HookSource(
            source_id="board",
            tenant_id=tenant,
            provider="generic",
            secret=GENERIC_SECRET,
            channel="social",
        ),
    ]
    with serve(web_app(settings, hook_sources=hooks), ready_path="/readyz") as url:
        yield url


def _hex(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def _signed(provider: str, body: bytes) -> dict[str, str]:
    if provider == "meta":
        return {"X-Hub-Signature-256": "sha256=" + _hex(APP_SECRET, body)}
    if provider == "linkedin":
        return {"X-LI-Signature": _hex(LI_SECRET, b"hmacsha256=" + body)}
    if provider == "generic":
        now = datetime.now(UTC)
        signature = Webhook(GENERIC_SECRET).sign("msg_abc", now, body.decode())
        return {
            "webhook-id": "msg_abc",
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        }
    return {}


CASES = [
    ("meta", "fb", META_LEADGEN, "meta-lead:123123123123", "ad"),
    ("linkedin", "li", LINKEDIN_LEAD_CREATED, "linkedin-lead:1a2b3c-4", "ad"),
    ("google", "gads", GOOGLE_TEST_LEAD, "google-lead:" + GOOGLE_TEST_LEAD["lead_id"], "ad"),
    ("generic", "board", GENERIC_LEAD, "generic-lead:jobboard-778", "social"),
]


@pytest.mark.parametrize(("provider", "source_id", "payload", "anonymous_id", "channel"), CASES)
async def test_signed_lead_arrives_on_the_interactions_topic(
    hook_url, kafka_bootstrap, topics, tenant, provider, source_id, payload, anonymous_id, channel
):
    # given a lead payload signed as the platform signs it
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", **_signed(provider, body)}
    # when the platform posts it
    async with httpx.AsyncClient(base_url=hook_url) as http:
        response = await http.post(
            f"/v1/hooks/{provider}/{source_id}", content=body, headers=headers
        )
    # then it is acknowledged and one Lead Form Submitted interaction is on Kafka
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    [record] = await read_topic(kafka_bootstrap, topics.interactions, count=1)
    value = orjson.loads(record.value)
    assert record.key == f"{tenant}:anon:{anonymous_id}".encode()
    assert (value["event"], value["tenantId"], value["sourceId"]) == (LEAD_EVENT, tenant, source_id)
    assert value["channel"] == channel
    assert headers_dict(record.headers)["ce_id"] == value["messageId"]


@pytest.mark.parametrize(("provider", "source_id", "payload"), [c[:3] for c in CASES])
async def test_tampered_body_is_refused_with_401(hook_url, provider, source_id, payload):
    # given a correctly signed body
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", **_signed(provider, body)}
    tampered = (
        body.replace(b"}", b', "x": 1}', 1)
        if provider != "google"
        else json.dumps({**payload, "google_key": "forged"}).encode()
    )
    # when one byte of meaning changes after signing
    async with httpx.AsyncClient(base_url=hook_url) as http:
        response = await http.post(
            f"/v1/hooks/{provider}/{source_id}", content=tampered, headers=headers
        )
    # then the hook refuses it
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"


async def test_meta_verification_echoes_the_challenge_for_the_right_token(hook_url):
    params = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    async with httpx.AsyncClient(base_url=hook_url) as http:
        good = await http.get("/v1/hooks/meta/fb", params=params)
        bad = await http.get("/v1/hooks/meta/fb", params={**params, "hub.verify_token": "wrong"})
    assert (good.status_code, good.text) == (200, "1158201444")
    assert bad.status_code == 403


async def test_linkedin_validation_answers_the_challenge_code(hook_url):
    code = "890e4665-4dfe-4ab1-b689-ed553bceeed0"
    async with httpx.AsyncClient(base_url=hook_url) as http:
        response = await http.get("/v1/hooks/linkedin/li", params={"challengeCode": code})
    assert response.status_code == 200
    assert response.json() == {
        "challengeCode": code,
        "challengeResponse": _hex(LI_SECRET, code.encode()),
    }


async def test_unknown_source_or_wrong_provider_is_404(hook_url):
    async with httpx.AsyncClient(base_url=hook_url) as http:
        assert (await http.post("/v1/hooks/meta/nope", content=b"{}")).status_code == 404
        assert (await http.post("/v1/hooks/linkedin/fb", content=b"{}")).status_code == 404
