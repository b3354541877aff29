"""Platform webhook handshakes, signatures and lead normalisation (pure)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from services.ingest.envelope import Accepted, RequestFacts, classify
from services.ingest.hook_signatures import (
    generic_signature_valid,
    google_key_valid,
    linkedin_challenge,
    linkedin_signature_valid,
    meta_challenge,
    meta_signature_valid,
)
from services.ingest.platform_hooks import (
    LEAD_EVENT,
    generic_leads,
    google_leads,
    linkedin_leads,
    meta_leads,
)
from services.ingest.sources import Source
from tests.unit.ingest.fixtures.platform_payloads import (
    GENERIC_LEAD,
    GOOGLE_TEST_LEAD,
    LINKEDIN_LEAD_CREATED,
    LINKEDIN_LEAD_DELETED,
    META_LEADGEN,
)

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _hex(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def test_meta_handshake_echoes_the_challenge_only_for_the_right_token():
    params = {"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "1158201444"}
    assert meta_challenge(params, verify_token="tok") == "1158201444"
    assert meta_challenge({**params, "hub.verify_token": "nope"}, verify_token="tok") is None
    assert meta_challenge({**params, "hub.mode": "unsubscribe"}, verify_token="tok") is None


def test_meta_signature_is_checked_on_the_raw_body():
    body = json.dumps(META_LEADGEN).encode()
    header = "sha256=" + _hex("app-secret", body)
    assert meta_signature_valid(body, header, app_secret="app-secret")
    assert not meta_signature_valid(body + b" ", header, app_secret="app-secret")
    assert not meta_signature_valid(body, None, app_secret="app-secret")


def test_linkedin_challenge_answer_is_the_hex_hmac_of_the_code():
    code = "890e4665-4dfe-4ab1-b689-ed553bceeed0"
    answer = linkedin_challenge(code, client_secret="cs")
    assert answer == {"challengeCode": code, "challengeResponse": _hex("cs", code.encode())}


def test_linkedin_signature_accepts_the_prefixed_and_bare_forms_and_nothing_else():
    body = json.dumps(LINKEDIN_LEAD_CREATED).encode()
    prefixed = _hex("cs", b"hmacsha256=" + body)
    assert linkedin_signature_valid(body, prefixed, client_secret="cs")
    assert linkedin_signature_valid(body, "hmacsha256=" + prefixed, client_secret="cs")
    assert linkedin_signature_valid(body, _hex("cs", body), client_secret="cs")
    assert not linkedin_signature_valid(body, _hex("other", body), client_secret="cs")
    assert not linkedin_signature_valid(body, "", client_secret="cs")


def test_google_key_must_equal_the_configured_form_key():
    assert google_key_valid(GOOGLE_TEST_LEAD, google_key="google-form-key")
    assert not google_key_valid(GOOGLE_TEST_LEAD, google_key="other")
    assert not google_key_valid({}, google_key="google-form-key")


def test_generic_signature_follows_standard_webhooks_with_a_time_window():
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body = json.dumps(GENERIC_LEAD).encode()
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(NOW.timestamp())),
        "webhook-signature": Webhook(secret).sign("msg_1", NOW, body.decode()),
    }
    assert generic_signature_valid(body, headers, secret=secret, now=NOW)
    assert not generic_signature_valid(body + b"x", headers, secret=secret, now=NOW)
    late = datetime.fromtimestamp(NOW.timestamp() + 301, tz=UTC)
    assert not generic_signature_valid(body, headers, secret=secret, now=late)


def test_meta_lead_becomes_a_lead_form_submission_keyed_by_the_lead_id():
    [lead] = meta_leads(META_LEADGEN)
    assert lead["event"] == LEAD_EVENT
    assert lead["messageId"] == "meta-lead-123123123123"
    assert lead["anonymousId"] == "meta-lead:123123123123"
    assert lead["properties"]["formId"] == "12312312312"
    assert lead["properties"]["channel"] == "ad"
    assert lead["timestamp"] == "2015-08-21T01:26:24Z"
    assert {"id": "123123123123", "type": "meta_lead_id"}.items() <= lead["context"]["externalIds"][
        0
    ].items()


def test_linkedin_created_lead_is_an_ad_lead_and_deletions_yield_nothing():
    [lead] = linkedin_leads(LINKEDIN_LEAD_CREATED)
    assert lead["anonymousId"] == "linkedin-lead:1a2b3c-4"
    assert lead["properties"]["channel"] == "ad"
    assert lead["properties"]["owner"] == "urn:li:sponsoredAccount:123"
    assert linkedin_leads(LINKEDIN_LEAD_DELETED) == []


def test_google_lead_carries_email_and_gclid_as_identity_hints():
    [lead] = google_leads(GOOGLE_TEST_LEAD)
    hints = {item["type"]: item["id"] for item in lead["context"]["externalIds"]}
    assert hints["email"] == "test@example.com"
    assert hints["gclid"] == "gclid-test-123"
    assert lead["properties"]["isTest"] is True
    assert "google_key" not in json.dumps(lead)


def test_generic_lead_keeps_its_channel_and_properties():
    [lead] = generic_leads(GENERIC_LEAD, channel="ad")
    assert lead["properties"]["channel"] == "social"
    assert lead["properties"]["jobId"] == "J-42"
    assert lead["timestamp"] == "2026-11-20T10:00:00Z"


def test_every_normalised_lead_is_a_valid_interaction_for_ingest():
    source = Source(source_id="ads", tenant_id="acme", channel="ad", write_key="wk")
    facts = RequestFacts(source=source, received_at=NOW)
    leads = [
        *meta_leads(META_LEADGEN),
        *linkedin_leads(LINKEDIN_LEAD_CREATED),
        *google_leads(GOOGLE_TEST_LEAD),
        *generic_leads(GENERIC_LEAD, channel="ad"),
    ]
    outcomes = [classify(lead, i, facts=facts) for i, lead in enumerate(leads)]
    assert all(isinstance(o, Accepted) for o in outcomes), outcomes
    assert [o.value["channel"] for o in outcomes] == ["ad", "ad", "ad", "social"]
