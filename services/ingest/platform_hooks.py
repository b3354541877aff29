"""Inbound ad and social platform webhooks: the hook sources and lead normalisation. Pure.

Handshakes and signatures are in ``services.ingest.hook_signatures``. Every normaliser
turns one provider payload into Segment ``track`` envelopes named ``Lead Form Submitted`` whose
``messageId`` is derived from the platform's lead id, so a redelivered lead is deduplicated.
Provider payload references: docs/hooks.md and tests/unit/ingest/fixtures/.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

LEAD_EVENT = "Lead Form Submitted"
PROVIDERS = ("meta", "linkedin", "google", "generic")
Provider = Literal["meta", "linkedin", "google", "generic"]
LATEST_EPOCH_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z

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


def _iso_from_epoch(seconds: Any) -> str | None:
    """Return epoch seconds as an ISO time; None when not a number of a representable time."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    if not 0 <= seconds <= LATEST_EPOCH_SECONDS:
        return None
    return datetime.fromtimestamp(float(seconds), tz=UTC).isoformat().replace("+00:00", "Z")


def _iso_from_millis(millis: Any) -> str | None:
    if isinstance(millis, bool) or not isinstance(millis, int):
        return None
    return _iso_from_epoch(millis / 1000) if abs(millis) <= LATEST_EPOCH_SECONDS * 1000 else None


def _id(value: Any) -> str | None:
    """Return an id sent as a non-empty string or an integer as text, else None."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _objects(value: Any, what: str) -> list[Mapping[str, Any]]:
    """Return ``value`` (None: empty) when it is a list of JSON objects; HookRejected otherwise."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise HookRejected(f"{what} must be a list of objects")
    return value


def meta_leads(payload: Mapping[str, Any]) -> list[Envelope]:
    """Return one envelope per ``leadgen`` change of a Meta Page webhook (other fields ignored)."""
    if payload.get("object") != "page" or not isinstance(payload.get("entry"), list):
        raise HookRejected("not a Meta page webhook")
    return [_meta_lead(value, lead_id) for value, lead_id in _meta_leadgen(payload["entry"])]


def _meta_leadgen(entries: Any) -> Iterator[tuple[Mapping[str, Any], str]]:
    for entry in _objects(entries, "entry"):
        for change in _objects(entry.get("changes"), "entry[].changes"):
            value = change.get("value")
            if change.get("field") != "leadgen" or not isinstance(value, Mapping):
                continue
            lead_id = _id(value.get("leadgen_id"))
            if lead_id is not None:
                yield value, lead_id


def _meta_lead(value: Mapping[str, Any], lead_id: str) -> Envelope:
    keys = ("form_id", "page_id", "ad_id", "adgroup_id")
    props = {_camel(k): _id(value.get(k)) for k in keys}
    return _lead(
        "meta",
        lead_id,
        channel="ad" if props["adId"] else "social",
        timestamp=_iso_from_epoch(value.get("created_time")),
        properties={k: v for k, v in props.items() if v is not None},
        external_ids=[("meta_lead_id", lead_id), ("meta_page_id", props["pageId"])],
    )


def linkedin_leads(payload: Mapping[str, Any]) -> list[Envelope]:
    """Return the envelope of a LinkedIn ``LEAD_ACTION`` notification; deletions yield nothing."""
    response = _text(payload.get("leadGenFormResponse"))
    lead_id = response.rsplit(":", 1)[-1] if response else ""
    if payload.get("type") != "LEAD_ACTION" or not lead_id:
        raise HookRejected("not a LinkedIn lead notification")
    if payload.get("leadAction") != "CREATED":
        return []
    owner = payload.get("owner")
    owners = list(owner.values()) if isinstance(owner, Mapping) else []
    lead_type = _text(payload.get("leadType")) or "SPONSORED"
    return [
        _lead(
            "linkedin",
            lead_id,
            channel="ad" if lead_type == "SPONSORED" else "social",
            timestamp=_iso_from_millis(payload.get("occurredAt")),
            properties={
                "formId": _text(payload.get("leadGenForm")),
                "leadType": lead_type,
                "owner": _text(owners[0]) if owners else None,
            },
            external_ids=[("linkedin_lead_response", payload["leadGenFormResponse"])],
        )
    ]


def google_leads(payload: Mapping[str, Any]) -> list[Envelope]:
    """Return the envelope of a Google Ads lead form webhook (email and gclid as identity hints)."""
    lead_id = _text(payload.get("lead_id"))
    if lead_id is None:
        raise HookRejected("not a Google Ads lead")
    columns = {
        c.get("column_id"): _text(c.get("string_value"))
        for c in _objects(payload.get("user_column_data"), "user_column_data")
        if isinstance(c.get("column_id"), str)
    }
    keys = ("form_id", "campaign_id", "adgroup_id", "creative_id", "gcl_id", "api_version")
    props = {_camel(k): _id(payload.get(k)) for k in keys}
    email = columns.get("EMAIL")
    return [
        _lead(
            "google",
            lead_id,
            channel="ad",
            timestamp=_text(payload.get("lead_submit_time")),
            properties={
                **{k: v for k, v in props.items() if v is not None},
                "isTest": payload.get("is_test") is True,
            },
            external_ids=[("google_lead_id", lead_id), ("gclid", props["gclId"]), ("email", email)],
            traits={"email": email} if email else None,
        )
    ]


def generic_leads(payload: Mapping[str, Any], *, channel: str) -> list[Envelope]:
    """Return the envelope of a generic signed hook ``{"type", "timestamp", "data": {"leadId", ...}}``."""
    data = payload.get("data")
    lead_id = _id(data.get("leadId")) if isinstance(data, Mapping) else None
    if not isinstance(data, Mapping) or lead_id is None:
        raise HookRejected("generic hook needs data.leadId (a string or an integer)")
    properties = data.get("properties") or {}
    if not isinstance(properties, Mapping):
        raise HookRejected("generic hook's data.properties must be an object")
    email = _text(data.get("email"))
    envelope = _lead(
        "generic",
        lead_id,
        channel=_text(data.get("channel")) or channel,
        timestamp=_text(payload.get("timestamp")),
        properties=dict(properties),
        external_ids=[("lead_id", lead_id), ("email", email)],
        traits={"email": email} if email else None,
    )
    envelope["event"] = _text(data.get("event")) or LEAD_EVENT
    for field in ("userId", "anonymousId"):
        if _id(data.get(field)):
            envelope[field] = _id(data.get(field))
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
