"""Webhook config, payload, signatures, retry schedule and SSRF policy (engagement.model.webhooks)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from standardwebhooks import Webhook, WebhookVerificationError

from engagement.model.alerts import build_alert
from engagement.model.job_alerts import as_job_alert
from engagement.model.webhooks import (
    RetryPolicy,
    WebhookConfig,
    WebhookEndpoint,
    classify,
    destination_refusal,
    load_webhooks,
    next_delay,
    parse_retry_after,
    payload,
    request_headers,
    retry_delay,
)
from tests.unit.engagement.model.test_alerts import RULES

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
NEW = "whsec_plJ3nmyCDGBKInavdOK15jsl"
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def endpoint(**kw) -> WebhookEndpoint:
    return WebhookEndpoint(
        id="ats", url=kw.pop("url", "https://ats.example.com/h"), secret=SECRET, **kw
    )


ALERT = build_alert(
    rules=RULES,
    type_="candidate.hot",
    tenant_id="acme",
    candidate_id="u1",
    tier="hot",
    previous_tier="warm",
    score=72,
    sequence=7,
    time=NOW,
    cause={"type": "event"},
)


def test_payload_is_type_timestamp_and_the_alert_as_data():
    body = orjson.loads(payload(ALERT))
    assert body["type"] == "candidate.hot" and body["timestamp"] == "2026-11-01T12:00:00.000Z"
    assert body["data"]["id"] == ALERT.id and body["data"]["tier"] == "hot"


def test_signature_verifies_with_the_standardwebhooks_library_for_each_secret():
    body = payload(ALERT)
    sent = datetime.now(UTC)
    headers = request_headers(
        endpoint(previous_secrets=(OLD,)), msg_id=ALERT.id, sent_at=sent, body=body
    )
    assert headers["webhook-id"] == ALERT.id and headers["webhook-timestamp"] == str(
        int(sent.timestamp())
    )
    for secret in (SECRET, OLD):
        assert Webhook(secret).verify(body, headers)["data"]["id"] == ALERT.id


def test_a_rotated_secret_signs_with_the_new_one_at_once():
    body = payload(ALERT)
    url = "https://ats.example.com/h"
    signed = dict(msg_id=ALERT.id, body=body)
    # given the endpoint signed with its old secrets (whatever is kept per secret is warm)
    request_headers(endpoint(previous_secrets=(OLD,)), sent_at=datetime.now(UTC), **signed)
    # when its secret is rotated (the config read again), then once the rotation is over
    rotating = WebhookEndpoint(id="ats", url=url, secret=NEW, previous_secrets=(SECRET,))
    rotated = WebhookEndpoint(id="ats", url=url, secret=NEW)
    during = request_headers(rotating, sent_at=datetime.now(UTC), **signed)
    after = request_headers(rotated, sent_at=datetime.now(UTC), **signed)
    # then it signs with the new secret at once, beside the one rotating out, and then alone
    for secret in (NEW, SECRET):
        assert Webhook(secret).verify(body, during)["data"]["id"] == ALERT.id
    assert Webhook(NEW).verify(body, after)["data"]["id"] == ALERT.id
    for retired in (SECRET, OLD):
        with pytest.raises(WebhookVerificationError):
            Webhook(retired).verify(body, after)


def test_endpoint_filters_by_type_and_tenant_and_enabled():
    assert endpoint().wants(ALERT)
    assert not endpoint(event_types=("candidate.cooled",)).wants(ALERT)
    assert not endpoint(tenants=("other",)).wants(ALERT)
    assert not endpoint(enabled=False).wants(ALERT)


JOB_ALERT = as_job_alert(ALERT, "ACME-7")


def test_a_job_alert_is_sent_where_its_type_and_job_prefix_are_wanted():
    assert JOB_ALERT is not None and JOB_ALERT.type == "candidate.job_hot"
    assert endpoint().wants(JOB_ALERT)
    assert endpoint(job_prefixes=("ACME-", "X")).wants(JOB_ALERT)
    assert not endpoint(job_prefixes=("ACME-8",)).wants(JOB_ALERT)
    assert not endpoint(event_types=("candidate.hot",)).wants(JOB_ALERT)
    assert endpoint(event_types=("candidate.job_hot",)).wants(JOB_ALERT)


def test_job_prefixes_leave_candidate_alerts_to_the_other_filters():
    assert endpoint(job_prefixes=("ACME-8",)).wants(ALERT)


def test_a_job_alerts_body_names_its_job():
    assert JOB_ALERT is not None
    body = orjson.loads(payload(JOB_ALERT))
    assert body["type"] == "candidate.job_hot" and body["data"]["jobId"] == "ACME-7"


def test_secrets_must_be_whsec_base64():
    with pytest.raises(ValidationError):
        WebhookEndpoint(id="x", url="https://a.example", secret="plain")


def test_the_shipped_config_files_are_valid():
    assert load_webhooks("config/webhooks.toml").endpoints
    dev = load_webhooks("config/dev/webhooks.toml")
    assert dev.endpoints[0].url == "http://127.0.0.1:8090/hooks"


@given(st.integers(1, 12), st.floats(0, 0.999999))
def test_retry_delay_grows_exponentially_within_jitter_and_cap(attempt, r):
    policy = RetryPolicy(base_seconds=5, factor=4, max_seconds=86_400, jitter=0.2)
    nominal = min(86_400, 5 * 4 ** (attempt - 1))
    assert 0.8 * nominal <= retry_delay(attempt, r, policy) <= 1.2 * nominal


def test_retry_after_is_honoured_and_the_last_attempt_has_no_next():
    policy = RetryPolicy(max_attempts=3, base_seconds=1, factor=2, jitter=0)
    assert next_delay(1, 0.5, None, policy) == 1
    assert next_delay(1, 0.5, 30, policy) == 30
    assert next_delay(3, 0.5, None, policy) is None


def test_retry_after_parses_seconds_and_http_dates():
    assert parse_retry_after("120", NOW) == 120
    assert parse_retry_after("Sun, 01 Nov 2026 12:01:00 GMT", NOW) == 60
    assert parse_retry_after("soon", NOW) is None


def test_responses_are_classified():
    assert [classify(s) for s in (200, 204, 301, 410, 429, 500, None)] == [
        "delivered",
        "delivered",
        "retry",
        "gone",
        "retry",
        "retry",
        "retry",
    ]


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "172.16.0.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "::ffff:10.0.0.1",
        "0.0.0.0",
    ],
)
def test_private_loopback_and_link_local_destinations_are_refused(address):
    config = WebhookConfig(require_https=False)
    assert destination_refusal("http://h.example/x", [address], endpoint=endpoint(), config=config)


def test_public_destinations_pass_and_allowlists_open_private_ones():
    config = WebhookConfig()
    assert (
        destination_refusal(
            "https://h.example/x", ["93.184.216.34"], endpoint=endpoint(), config=config
        )
        is None
    )
    assert (
        destination_refusal(
            "http://h.example/x", ["93.184.216.34"], endpoint=endpoint(), config=config
        )
        == "https required"
    )
    allow = WebhookConfig(allow_private_networks=("127.0.0.1/32",))
    assert (
        destination_refusal("https://l/x", ["127.0.0.1"], endpoint=endpoint(), config=allow) is None
    )
    assert destination_refusal("https://l/x", ["127.0.0.2"], endpoint=endpoint(), config=allow)
    assert (
        destination_refusal(
            "https://l/x", ["10.0.0.1"], endpoint=endpoint(allow_private=True), config=config
        )
        is None
    )


def test_one_private_address_among_public_ones_is_refused():
    assert destination_refusal(
        "https://h/x", ["93.184.216.34", "10.0.0.1"], endpoint=endpoint(), config=WebhookConfig()
    )
