"""A rejected event as its dead-letter row for ``engagement.interactions.dlq.v1``: the value
(failure, reasons, where it came from, the payload with its IPs truncated) and the record key (the
event's ``tenant:identity`` when it names one). Pure; the value's bytes:
``engagement.kafka.bad_rows.dlq_value``."""

from __future__ import annotations

from typing import Any

from engagement.kafka.topics import identity_key
from services.ingest.envelope import Rejected, RequestFacts
from services.ingest.privacy import truncate_ip

PROCESSOR = {"artifact": "engagement-ingest", "version": "0.1.0"}


def bad_row(rejected: Rejected, *, facts: RequestFacts) -> dict[str, Any]:
    """Return the DLQ value of a rejected event (IPs in the payload truncated)."""
    return {
        "schema": f"org.candidate-engagement.badrow.{rejected.failure_type}/1-0-0",
        "failureType": rejected.failure_type,
        "messages": list(rejected.messages),
        "reason": rejected.reason,
        "index": rejected.index,
        "messageId": rejected.message_id,
        "tenantId": facts.source.tenant_id,
        "sourceId": facts.source.source_id,
        "receivedAt": facts.received_text,
        "processor": PROCESSOR,
        "payload": _private_payload(rejected.payload),
    }


def _private_payload(payload: Any) -> Any:
    if isinstance(payload, dict) and isinstance(payload.get("context"), dict):
        context = dict(payload["context"])
        if "ip" in context:
            context["ip"] = truncate_ip(context["ip"] if isinstance(context["ip"], str) else None)
        return {**payload, "context": context}
    return payload


def bad_row_key(rejected: Rejected, *, tenant_id: str) -> str:
    """Return the DLQ record key: ``tenant:identity`` when the payload names one."""
    payload = rejected.payload if isinstance(rejected.payload, dict) else {}
    user, anon = payload.get("userId"), payload.get("anonymousId")
    try:
        return identity_key(
            tenant_id,
            user if isinstance(user, str) else None,
            anon if isinstance(anon, str) else None,
        )
    except ValueError:
        return f"{tenant_id}:unidentified"
