"""Platform hooks under hostile and sloppy input, over HTTP: 400/401 for whatever a platform or
an attacker sends, never a 5xx (platforms retry 5xx forever), and no signature obtainable from
the unauthenticated LinkedIn handshake."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from standardwebhooks.webhooks import Webhook

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from tests.integration.ingest.conftest import ingest_settings
from tests.support.server import serve
from tests.unit.ingest.fixtures.platform_payloads import (
    GENERIC_LEAD,
    GOOGLE_TEST_LEAD,
    LINKEDIN_LEAD_CREATED,
    META_LEADGEN,
)
from tests.unit.ingest.hook_payloads import payloads, replaced

APP_SECRET = "meta-app-secret"
LI_SECRET = "linkedin-client-secret"
GOOGLE_KEY = GOOGLE_TEST_LEAD["google_key"]
GENERIC_SECRET = "whsec_" + base64.b64encode(b"generic-hook-key-0123456789abcd").decode()
CHALLENGE = "890e4665-4dfe-4ab1-b689-ed553bceeed0"

HOOK_SOURCES = f"""
[[sources]]
source_id = "fb"
tenant_id = "TENANT"
channel = "ad"
write_key = "wk_hook_fb"
hook_provider = "meta"
hook_secret = "{APP_SECRET}"
hook_verify_token = "meta-verify-token"

[[sources]]
source_id = "li"
tenant_id = "TENANT"
channel = "ad"
write_key = "wk_hook_li"
hook_provider = "linkedin"
hook_secret = "{LI_SECRET}"

[[sources]]
source_id = "gads"
tenant_id = "TENANT"
channel = "ad"
write_key = "wk_hook_gads"
hook_provider = "google"
hook_secret = "{GOOGLE_KEY}"

[[sources]]
source_id = "board"
tenant_id = "TENANT"
channel = "social"
write_key = "wk_hook_board"
hook_provider = "generic"
hook_secret = "{GENERIC_SECRET}"
"""
PATHS = {
    "meta": "/v1/hooks/meta/fb",
    "linkedin": "/v1/hooks/linkedin/li",
    "google": "/v1/hooks/google/gads",
    "generic": "/v1/hooks/generic/board",
}


@pytest.fixture
def hook_settings(
    kafka_bootstrap, redis_url, topic_prefix, redis_prefix, tmp_path: Path, tenant: str
) -> IngestSettings:
    sources = tmp_path / "hook-sources.toml"
    sources.write_text(HOOK_SOURCES.replace("TENANT", tenant))
    return ingest_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=topic_prefix,
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
        sources_file=sources,
    )


@pytest.fixture
def hooks_url(hook_settings: IngestSettings) -> Iterator[str]:
    with serve(create_app(hook_settings), ready_path="/readyz") as url:
        yield url


def _hex(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def _signed(provider: str, body: bytes) -> dict[str, str]:
    """The headers the platform would sign ``body`` with."""
    headers = {"Content-Type": "application/json"}
    if provider == "meta":
        headers["X-Hub-Signature-256"] = "sha256=" + _hex(APP_SECRET, body)
    elif provider == "linkedin":
        headers["X-LI-Signature"] = _hex(LI_SECRET, b"hmacsha256=" + body)
    elif provider == "generic":
        now = datetime.now(UTC)
        headers["webhook-id"] = "msg_fuzz"
        headers["webhook-timestamp"] = str(int(now.timestamp()))
        headers["webhook-signature"] = Webhook(GENERIC_SECRET).sign("msg_fuzz", now, body.decode())
    return headers


def _body(provider: str, payload: Any) -> bytes:
    if provider == "google" and isinstance(payload, dict):
        payload = {**payload, "google_key": GOOGLE_KEY}
    return json.dumps(payload).encode()


@pytest.mark.parametrize("provider", list(PATHS))
def test_any_signed_json_body_gets_an_answer_below_500(hooks_url, provider):
    with httpx.Client(base_url=hooks_url, timeout=30) as http:

        @settings(
            max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        @given(payload=payloads(provider))
        def check(payload: Any) -> None:
            # given any JSON, signed as the platform signs
            body = _body(provider, payload)
            # when the platform posts it, then it is accepted or refused, never a server error
            response = http.post(PATHS[provider], content=body, headers=_signed(provider, body))
            assert response.status_code < 500, f"{body!r}: {response.text}"

        check()


AUDIT_PAYLOADS = [
    (
        "meta",
        replaced(META_LEADGEN, ("entry", 0, "changes", 0, "value", "created_time"), "yesterday"),
    ),
    ("meta", {**META_LEADGEN, "entry": ["x"]}),
    ("google", {**GOOGLE_TEST_LEAD, "user_column_data": ["x"]}),
    ("generic", replaced(GENERIC_LEAD, ("data", "properties"), [1, 2])),
    ("linkedin", {**LINKEDIN_LEAD_CREATED, "owner": "x"}),
]


@pytest.mark.parametrize(("provider", "payload"), AUDIT_PAYLOADS)
async def test_the_audit_payloads_are_answered_below_500(hooks_url, provider, payload):
    body = _body(provider, payload)
    async with httpx.AsyncClient(base_url=hooks_url, timeout=30) as http:
        response = await http.post(PATHS[provider], content=body, headers=_signed(provider, body))
    assert response.status_code in (200, 400), response.text


@pytest.mark.parametrize("stamp", ["1" * 400, "\u00b2"])
async def test_malformed_webhook_timestamp_is_401(hooks_url, stamp):
    body = json.dumps(GENERIC_LEAD).encode()
    headers = {**_signed("generic", body), "webhook-timestamp": stamp}
    async with httpx.AsyncClient(base_url=hooks_url, timeout=30) as http:
        response = await http.post(
            PATHS["generic"], content=body, headers=httpx.Headers(headers, encoding="latin-1")
        )
    assert response.status_code == 401, response.text


async def test_a_handshake_answer_cannot_sign_a_lead(hooks_url):
    # given an attacker with no secret, who asks the handshake to sign a lead body of theirs
    body = json.dumps({**LINKEDIN_LEAD_CREATED, "leadGenFormResponse": "urn:li:x:forged"}).encode()
    async with httpx.AsyncClient(base_url=hooks_url, timeout=30) as http:
        bare = await http.get(PATHS["linkedin"], params={"challengeCode": body.decode()})
        prefixed = await http.get(
            PATHS["linkedin"], params={"challengeCode": "hmacsha256=" + body.decode()}
        )
        uuid = await http.get(PATHS["linkedin"], params={"challengeCode": CHALLENGE})
        # then only the UUID is answered
        assert (bare.status_code, prefixed.status_code, uuid.status_code) == (400, 400, 200)
        assert bare.json()["error"]["code"] == "invalid_challenge"
        # and the UUID's answer signs no body
        forged = await http.post(
            PATHS["linkedin"],
            content=CHALLENGE.encode(),
            headers={"X-LI-Signature": uuid.json()["challengeResponse"]},
        )
    assert forged.status_code == 401
