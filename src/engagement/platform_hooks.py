"""Inbound ad and social platform webhooks: handshakes, signatures and lead normalisation. Pure.

Every verifier works on the raw request bytes and compares in constant time. Every normaliser
turns one provider payload into Segment ``track`` envelopes named ``Lead Form Submitted`` whose
``messageId`` is derived from the platform's lead id, so a redelivered lead is deduplicated.
Provider payload references: docs/hooks.md and tests/unit/web/fixtures/.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

LEAD_EVENT = "Lead Form Submitted"
PROVIDERS = ("meta", "linkedin", "google", "generic")
Provider = Literal["meta", "linkedin", "google", "generic"]
GENERIC_TOLERANCE_SECONDS = 300
LINKEDIN_PREFIX = "hmacsha256="

Envelope = dict[str, Any]


class HookSource(BaseModel):
    """One platform webhook endpoint: which tenant it feeds and the secrets that prove the sender."""

    model_config = ConfigDict(frozen=True)

    source_id: str = Field(min_length=1)
    tenant_id: str = Field(min_length=1)
    channel: str = "ad"
    provider: Provider
    secret: SecretStr = Field(
        description="Meta app secret, LinkedIn client secret, google_key, or HMAC key"
    )
    verify_token: SecretStr | None = Field(None, description="Meta hub.verify_token")


class HookRejected(ValueError):
    """The payload is signed correctly but is not a lead payload this provider sends."""


def _same(given: str | bytes | None, expected: str | bytes) -> bool:
    if given is None:
        return False
    left = given.encode() if isinstance(given, str) else given
    right = expected.encode() if isinstance(expected, str) else expected
    return hmac.compare_digest(left, right)


def _hex_hmac(key: str | bytes, message: bytes) -> str:
    raw_key = key.encode() if isinstance(key, str) else key
    return hmac.new(raw_key, message, hashlib.sha256).hexdigest()


# -- handshakes -----------------------------------------------------------------------------------


def meta_challenge(params: Mapping[str, str], *, verify_token: str | None) -> str | None:
    """Return ``hub.challenge`` when ``hub.mode=subscribe`` and the verify token matches, else None."""
    if verify_token is None or params.get("hub.mode") != "subscribe":
        return None
    if not _same(params.get("hub.verify_token"), verify_token):
        return None
    return params.get("hub.challenge")


def linkedin_challenge(challenge_code: str, *, client_secret: str) -> dict[str, str]:
    """Return LinkedIn's validation answer: hex HMAC-SHA256 of the challengeCode keyed by the secret."""
    response = _hex_hmac(client_secret, challenge_code.encode())
    return {"challengeCode": challenge_code, "challengeResponse": response}


# -- signatures -----------------------------------------------------------------------------------


def meta_signature_valid(body: bytes, header: str | None, *, app_secret: str) -> bool:
    """Return whether ``X-Hub-Signature-256`` is ``sha256=`` + hex HMAC-SHA256(app secret, body)."""
    return _same(header, "sha256=" + _hex_hmac(app_secret, body))


def linkedin_signature_valid(body: bytes, header: str | None, *, client_secret: str) -> bool:
    """Return whether ``X-LI-Signature`` is the hex HMAC of ``"hmacsha256=" + body``.

    The header may carry the ``hmacsha256=`` prefix; the HMAC of the bare body (the literal reading
    of LinkedIn's prose) is accepted too.
    """
    given = (header or "").removeprefix(LINKEDIN_PREFIX)
    prefixed = _hex_hmac(client_secret, LINKEDIN_PREFIX.encode() + body)
    bare = _hex_hmac(client_secret, body)
    return bool(header) and (_same(given, prefixed) | _same(given, bare))


def google_key_valid(payload: Mapping[str, Any], *, google_key: str) -> bool:
    """Return whether the body's ``google_key`` equals the key configured on the lead form."""
    given = payload.get("google_key")
    return isinstance(given, str) and _same(given, google_key)


def generic_signature_valid(
    body: bytes, headers: Mapping[str, str], *, secret: str, now: datetime
) -> bool:
    """Return whether a Standard Webhooks ``v1`` signature over ``id.timestamp.body`` matches.

    The secret is ``whsec_`` + base64 (or any other string, used as UTF-8 bytes); the timestamp
    must be within five minutes of ``now``.
    """
    msg_id, stamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
    if not msg_id or not stamp or not stamp.isdigit():
        return False
    if abs(now.timestamp() - int(stamp)) > GENERIC_TOLERANCE_SECONDS:
        return False
    key = _generic_key(secret)
    digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()
    offered = headers.get("webhook-signature", "").split()
    return any(_same(candidate, expected) for candidate in offered)


def _generic_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


# -- normalisers ----------------------------------------------------------------------------------


def _lead(
    provider: str,
    lead_id: str,
    *,
    channel: str,
    timestamp: str | None,
    properties: dict[str, Any],
    external_ids: list[tuple[str, Any]],
    traits: dict[str, Any] | None = None,
) -> Envelope:
    """Return one ``Lead Form Submitted`` envelope; the lead is its own anonymous candidate."""
    ids = [
        {"id": str(value), "type": kind, "collection": "users", "encoding": "none"}
        for kind, value in external_ids
        if value not in (None, "")
    ]
    envelope: Envelope = {
        "type": "track",
        "event": LEAD_EVENT,
        "messageId": f"{provider}-lead-{lead_id}",
        "anonymousId": f"{provider}-lead:{lead_id}",
        "properties": {"provider": provider, "leadId": lead_id, "channel": channel, **properties},
        "context": {"externalIds": ids, "library": {"name": f"hooks/{provider}", "version": "1"}},
    }
    if traits:
        envelope["context"]["traits"] = traits
    if timestamp is not None:
        envelope["timestamp"] = timestamp
    return envelope


def _iso_from_epoch(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(float(seconds), tz=UTC).isoformat().replace("+00:00", "Z")


def meta_leads(payload: Mapping[str, Any]) -> list[Envelope]:
    """Return one envelope per ``leadgen`` change of a Meta Page webhook (other fields ignored)."""
    if payload.get("object") != "page" or not isinstance(payload.get("entry"), list):
        raise HookRejected("not a Meta page webhook")
    leads: list[Envelope] = []
    for entry in payload["entry"]:
        for change in entry.get("changes") or []:
            value = change.get("value") or {}
            if change.get("field") != "leadgen" or not value.get("leadgen_id"):
                continue
            leads.append(_meta_lead(value))
    return leads


def _meta_lead(value: Mapping[str, Any]) -> Envelope:
    lead_id = str(value["leadgen_id"])
    props = {
        k: str(value[k]) for k in ("form_id", "page_id", "ad_id", "adgroup_id") if value.get(k)
    }
    return _lead(
        "meta",
        lead_id,
        channel="ad" if value.get("ad_id") else "social",
        timestamp=_iso_from_epoch(value.get("created_time")),
        properties={_camel(k): v for k, v in props.items()},
        external_ids=[("meta_lead_id", lead_id), ("meta_page_id", value.get("page_id"))],
    )


def linkedin_leads(payload: Mapping[str, Any]) -> list[Envelope]:
    """Return the envelope of a LinkedIn ``LEAD_ACTION`` notification; deletions yield nothing."""
    response = payload.get("leadGenFormResponse")
    if payload.get("type") != "LEAD_ACTION" or not isinstance(response, str):
        raise HookRejected("not a LinkedIn lead notification")
    if payload.get("leadAction") != "CREATED":
        return []
    lead_id = response.rsplit(":", 1)[-1]
    occurred = payload.get("occurredAt")
    owner = payload.get("owner") or {}
    return [
        _lead(
            "linkedin",
            lead_id,
            channel="ad" if payload.get("leadType", "SPONSORED") == "SPONSORED" else "social",
            timestamp=_iso_from_epoch(occurred / 1000) if isinstance(occurred, int) else None,
            properties={
                "formId": payload.get("leadGenForm"),
                "leadType": payload.get("leadType"),
                "owner": next(iter(owner.values()), None),
            },
            external_ids=[("linkedin_lead_response", response)],
        )
    ]


def google_leads(payload: Mapping[str, Any]) -> list[Envelope]:
    """Return the envelope of a Google Ads lead form webhook (email and gclid as identity hints)."""
    lead_id = payload.get("lead_id")
    if not isinstance(lead_id, str) or not lead_id:
        raise HookRejected("not a Google Ads lead")
    columns = {
        c.get("column_id"): c.get("string_value") for c in payload.get("user_column_data") or []
    }
    keys = ("form_id", "campaign_id", "adgroup_id", "creative_id", "gcl_id", "api_version")
    props = {_camel(k): str(payload[k]) for k in keys if payload.get(k) is not None}
    email = columns.get("EMAIL")
    return [
        _lead(
            "google",
            lead_id,
            channel="ad",
            timestamp=payload.get("lead_submit_time"),
            properties={**props, "isTest": bool(payload.get("is_test", False))},
            external_ids=[
                ("google_lead_id", lead_id),
                ("gclid", payload.get("gcl_id")),
                ("email", email),
            ],
            traits={"email": email} if email else None,
        )
    ]


def generic_leads(payload: Mapping[str, Any], *, channel: str) -> list[Envelope]:
    """Return the envelope of a generic signed hook ``{"type", "timestamp", "data": {"leadId", ...}}``."""
    data = payload.get("data")
    if not isinstance(data, Mapping) or not data.get("leadId"):
        raise HookRejected("generic hook needs data.leadId")
    lead_id = str(data["leadId"])
    envelope = _lead(
        "generic",
        lead_id,
        channel=str(data.get("channel") or channel),
        timestamp=payload.get("timestamp"),
        properties=dict(data.get("properties") or {}),
        external_ids=[("lead_id", lead_id), ("email", data.get("email"))],
        traits={"email": data["email"]} if data.get("email") else None,
    )
    envelope["event"] = str(data.get("event") or LEAD_EVENT)
    for field in ("userId", "anonymousId"):
        if data.get(field):
            envelope[field] = str(data[field])
    return [envelope]


def leads_of(provider: str, payload: Mapping[str, Any], *, channel: str) -> list[Envelope]:
    """Return the envelopes of a verified payload of ``provider``; HookRejected if it has no leads shape."""
    if provider == "meta":
        return meta_leads(payload)
    if provider == "linkedin":
        return linkedin_leads(payload)
    if provider == "google":
        return google_leads(payload)
    return generic_leads(payload, channel=channel)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
