"""The Segment envelope: validate one incoming event and normalise it into an Interaction. Pure.

``classify`` turns one raw event into exactly one outcome: ``Accepted`` (the record for
``engagement.interactions.v1``), ``Rejected`` (a bad row for the DLQ, with its reasons) or
``Dropped`` (no analytics consent on a source that requires it). A rejected event's DLQ row:
``services.ingest.bad_rows``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engagement.kafka.topics import identity_key
from engagement.model.records import EventType, format_time
from services.ingest.event_guards import (
    encoded_event,
    id_problems,
    printable,
    reserved_problems,
    writable,
)
from services.ingest.plain_envelope import missing_requirement, plain_fields
from services.ingest.privacy import consent_allows, truncate_ip
from services.ingest.sources import Source
from services.ingest.timestamps import corrected_timestamp, in_range

FailureType = Literal["schema_violation", "size_violation"]


class SegmentEvent(BaseModel):
    """One Segment-spec event as a client sends it (unknown top-level fields are kept)."""

    model_config = ConfigDict(extra="allow", frozen=True, coerce_numbers_to_str=True)

    type: EventType
    messageId: str | None = Field(None, max_length=200)
    userId: str | None = Field(None, max_length=500)
    anonymousId: str | None = Field(None, max_length=500)
    previousId: str | None = Field(None, max_length=500)
    event: str | None = Field(None, max_length=500)
    name: str | None = Field(None, max_length=500)
    groupId: str | None = Field(None, max_length=500)
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)

    @field_validator("messageId", "userId", "anonymousId", "previousId", "event", "groupId")
    @classmethod
    def _blank_is_missing(cls, value: str | None) -> str | None:
        return value if value and value.strip() else None

    @field_validator("timestamp", "originalTimestamp", "sentAt")
    @classmethod
    def _plausible_time(cls, value: datetime | None) -> datetime | None:
        return None if value is None else in_range(value)

    @field_validator("properties", "traits", "context", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @model_validator(mode="after")
    def _required_per_type(self) -> SegmentEvent:
        problem = missing_requirement(self.__dict__)
        if problem is not None:
            raise ValueError(problem)
        return self


class BatchRequest(BaseModel):
    """The body of ``/v1/batch``, ``/v1/import`` and ``/v1/b`` (documentation schema)."""

    model_config = ConfigDict(extra="allow")

    batch: list[dict[str, Any]] = Field(min_length=1)
    sentAt: datetime | None = None
    context: dict[str, Any] | None = None
    writeKey: str | None = None


@dataclass(frozen=True)
class RequestFacts:
    """What the server knows about the request an event came in: source, time, defaults."""

    source: Source
    received_at: datetime
    client_ip: str | None = None
    from_browser: bool = False
    forced_type: str | None = None
    batch_sent_at: Any = None
    batch_context: Mapping[str, Any] = field(default_factory=dict)
    max_event_bytes: int = 32 * 1024

    @cached_property
    def received_text(self) -> str:
        """``received_at`` as RFC 3339 text, formatted once per request."""
        return format_time(self.received_at)


@dataclass(frozen=True)
class Accepted:
    """A normalised event, ready for the interactions topic."""

    key: str
    value: dict[str, Any]
    message_id: str
    type: str
    subject: str
    time: datetime


@dataclass(frozen=True)
class Rejected:
    """An invalid event: the bad row written to the DLQ and listed in the response."""

    index: int
    message_id: str | None
    failure_type: FailureType
    messages: tuple[str, ...]
    payload: Any

    @property
    def reason(self) -> str:
        """Failure type and messages in one line, as answered to the client."""
        return f"{self.failure_type}: {'; '.join(self.messages)}"


@dataclass(frozen=True)
class Dropped:
    """An event discarded on purpose (no analytics consent); counted, never written."""

    index: int
    message_id: str | None


Outcome = Accepted | Rejected | Dropped


def classify(
    raw: Any,
    index: int,
    *,
    facts: RequestFacts,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> Outcome:
    """Return the one outcome of a raw event; never raises on bad input."""
    if not isinstance(raw, dict):
        not_object = ("an event must be a JSON object",)
        return Rejected(index, None, "schema_violation", not_object, writable(raw))
    encoded = encoded_event(raw)
    if isinstance(encoded, str):
        return _rejected(raw, index, (encoded,), payload=writable(raw))
    if len(encoded) > facts.max_event_bytes:
        reason = f"event is larger than {facts.max_event_bytes} bytes"
        return _rejected(raw, index, (reason,), failure_type="size_violation")
    merged = _with_batch_defaults(raw, facts)
    fields = plain_fields(merged)
    problems = id_problems(merged) if fields is None else reserved_problems(fields)
    if problems:
        return _rejected(raw, index, problems)
    if fields is None:
        try:
            fields = SegmentEvent.model_validate(merged).model_dump(exclude_none=True)
        except ValidationError as exc:
            return _rejected(raw, index, _messages(exc))
    if not consent_allows(fields["context"], consent_required=facts.source.consent_required):
        return Dropped(index, _message_id(raw))
    return normalise(fields, facts=facts, message_id=fields.get("messageId") or new_id())


def _message_id(raw: dict[str, Any]) -> str | None:
    given = raw.get("messageId")
    return printable(given) if isinstance(given, str) else None


def _rejected(
    raw: dict[str, Any],
    index: int,
    messages: tuple[str, ...],
    *,
    failure_type: FailureType = "schema_violation",
    payload: Any = None,
) -> Rejected:
    payload = raw if payload is None else payload
    return Rejected(index, _message_id(raw), failure_type, messages, payload)


def _with_batch_defaults(raw: dict[str, Any], facts: RequestFacts) -> dict[str, Any]:
    merged = dict(raw)
    if facts.forced_type is not None:
        merged["type"] = facts.forced_type
    if merged.get("sentAt") is None and facts.batch_sent_at is not None:
        merged["sentAt"] = facts.batch_sent_at
    context = merged.get("context")
    if facts.batch_context and (context is None or isinstance(context, dict)):
        merged["context"] = {**facts.batch_context, **(context or {})}
    return merged


def _messages(exc: ValidationError) -> tuple[str, ...]:
    messages = []
    for error in exc.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in error["loc"])
        messages.append(f"{path}: {error['msg']}" if path else str(error["msg"]))
    return tuple(messages[:10])


def normalise(fields: dict[str, Any], *, facts: RequestFacts, message_id: str) -> Accepted:
    """Return the Interaction record of a valid event's fields with every server-added field.

    ``fields`` is a validated event dumped without None values (it becomes the record's value).
    """
    source = facts.source
    sent_at = fields.pop("sentAt", None)
    original = fields.pop("originalTimestamp", None) or fields.get("timestamp")
    when = corrected_timestamp(received_at=facts.received_at, sent_at=sent_at, original=original)
    value = fields
    value.update(
        messageId=message_id,
        tenantId=source.tenant_id,
        sourceId=source.source_id,
        channel=_channel(fields["properties"], source.channel),
        receivedAt=facts.received_text,
        timestamp=format_time(when),
        context=_private_context(fields["context"], facts),
    )
    if original is not None:
        value["originalTimestamp"] = format_time(original)
    if sent_at is not None:
        value["sentAt"] = format_time(sent_at)
    key = identity_key(source.tenant_id, value.get("userId"), value.get("anonymousId"))
    subject = value.get("event") or value.get("name") or value["type"]
    return Accepted(key, value, message_id, value["type"], subject, when)


def _channel(properties: Mapping[str, Any], default: str) -> str:
    override = properties.get("channel")
    return override if isinstance(override, str) and override.strip() else default


def _private_context(context: Mapping[str, Any], facts: RequestFacts) -> dict[str, Any]:
    """Return the context with ``ip`` truncated: the event's own ip, else the client address
    for browser requests or events with ``context.direct = true`` (server SDKs' own address
    says nothing about the candidate)."""
    private = dict(context)
    given = private.pop("ip", None)
    use_client = facts.from_browser or private.get("direct") is True
    ip = truncate_ip(given if given is not None else (facts.client_ip if use_client else None))
    if ip is not None:
        private["ip"] = ip
    return private
