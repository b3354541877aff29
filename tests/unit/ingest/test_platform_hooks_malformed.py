"""Platform hooks under hostile input (pure): a handshake answer never signs a body, malformed
signature headers are refused without raising, and every normaliser either returns envelopes or
rejects the payload with HookRejected, whatever JSON it is given."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.hook_signatures import (
    generic_signature_valid,
    linkedin_challenge,
    linkedin_signature_valid,
    meta_signature_valid,
)
from services.ingest.platform_hooks import (
    HookRejected,
    leads_of,
)
from tests.unit.ingest.fixtures.platform_payloads import (
    GENERIC_LEAD,
    GOOGLE_TEST_LEAD,
    LINKEDIN_LEAD_CREATED,
    META_LEADGEN,
)
from tests.unit.ingest.hook_payloads import FIXTURES, JSON, payloads, replaced

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


@pytest.mark.parametrize("provider", list(FIXTURES))
def test_any_json_is_normalised_or_rejected_never_raises_otherwise(provider):
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(payload=payloads(provider))
    def check(payload: Any) -> None:
        if not isinstance(payload, dict):
            return  # the route answers 400 before normalising anything but an object
        try:
            leads = leads_of(provider, payload, channel="ad")
        except HookRejected:
            return
        assert all(isinstance(lead, dict) for lead in leads)
        json.dumps(leads, allow_nan=False)  # every lead is plain JSON

    check()


CREATED_TIME = ("entry", 0, "changes", 0, "value", "created_time")


@pytest.mark.parametrize(
    ("provider", "payload"),
    [
        ("meta", {**META_LEADGEN, "entry": ["x"]}),
        ("meta", {"object": "page", "entry": [{"changes": ["x"]}]}),
        ("google", {**GOOGLE_TEST_LEAD, "user_column_data": ["x"]}),
        ("generic", replaced(GENERIC_LEAD, ("data", "properties"), [1, 2])),
        ("generic", replaced(GENERIC_LEAD, ("data", "leadId"), {"a": 1})),
        (
            "linkedin",
            {**LINKEDIN_LEAD_CREATED, "leadGenFormResponse": "urn:li:leadGenFormResponse:"},
        ),
    ],
)
def test_payloads_of_the_wrong_shape_are_rejected(provider, payload):
    with pytest.raises(HookRejected):
        leads_of(provider, payload, channel="ad")


@pytest.mark.parametrize(
    ("provider", "payload"),
    [
        ("meta", replaced(META_LEADGEN, CREATED_TIME, "yesterday")),
        ("meta", replaced(META_LEADGEN, CREATED_TIME, 10**30)),
        ("linkedin", {**LINKEDIN_LEAD_CREATED, "occurredAt": 10**30}),
        ("linkedin", {**LINKEDIN_LEAD_CREATED, "occurredAt": "today"}),
    ],
)
def test_a_lead_time_that_is_no_time_is_left_out(provider, payload):
    [lead] = leads_of(provider, payload, channel="ad")
    assert "timestamp" not in lead


def test_a_linkedin_owner_that_is_not_an_object_is_left_out():
    [lead] = leads_of("linkedin", {**LINKEDIN_LEAD_CREATED, "owner": "x"}, channel="ad")
    assert lead["properties"]["owner"] is None


@pytest.mark.parametrize(
    "stamp", ["1" * 400, "\u00b2", "\u0661\u0662", "+1700000000", " 1700000000", "-5", ""]
)
def test_malformed_webhook_timestamp_is_a_bad_signature_not_an_error(stamp):
    headers = {"webhook-id": "msg_1", "webhook-timestamp": stamp, "webhook-signature": "v1,x"}
    assert not generic_signature_valid(b"{}", headers, secret=SECRET, now=NOW)


def _hex(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    "code",
    [
        '{"type": "LEAD_ACTION"}',
        "hmacsha256={}",
        "not-a-uuid",
        "890e4665-4dfe-4ab1-b689-ed553bceeed0x",
        "890e46654dfe4ab1b689ed553bceeed0",
        "",
    ],
)
def test_linkedin_answers_only_challenge_codes_shaped_as_linkedin_sends_them(code):
    assert linkedin_challenge(code, client_secret="cs") is None


def test_linkedin_answers_a_uuid_challenge_code():
    code = "890E4665-4DFE-4AB1-B689-ED553BCEEED0"
    answer = linkedin_challenge(code, client_secret="cs")
    assert answer == {"challengeCode": code, "challengeResponse": _hex("cs", code.encode())}


@given(body=st.binary(max_size=64) | JSON.map(lambda d: json.dumps(d).encode()))
@settings(max_examples=200, deadline=None)
def test_a_handshake_answer_never_verifies_a_body(body):
    # given whatever body an attacker wants signed, asked for as a challenge code
    answer = linkedin_challenge(body.decode("utf-8", "replace"), client_secret="cs")
    # then no answer is given, or the answer verifies no body
    if answer is not None:
        for form in (answer["challengeResponse"], "hmacsha256=" + answer["challengeResponse"]):
            assert not linkedin_signature_valid(body, form, client_secret="cs")
            prefixed = b"hmacsha256=" + body
            assert not linkedin_signature_valid(prefixed, form, client_secret="cs")


def test_a_challenge_shaped_body_is_never_verified():
    code = b"890e4665-4dfe-4ab1-b689-ed553bceeed0"
    assert not linkedin_signature_valid(code, _hex("cs", code), client_secret="cs")


HEADER_TEXT = st.text(st.characters(max_codepoint=255), max_size=40)  # headers arrive as latin-1


@given(
    body=st.binary(max_size=64),
    signature=st.none() | HEADER_TEXT,
    msg_id=HEADER_TEXT,
    stamp=HEADER_TEXT | st.integers(0, 10**20).map(str),
)
@settings(max_examples=300, deadline=None)
def test_signature_checks_answer_false_for_any_header_never_raise(body, signature, msg_id, stamp):
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": signature or "",
    }
    assert not generic_signature_valid(body, headers, secret=SECRET, now=NOW)
    assert not meta_signature_valid(body, signature, app_secret="app-secret")
    assert not linkedin_signature_valid(body, signature, client_secret="cs")
    linkedin_challenge(signature or "", client_secret="cs")
