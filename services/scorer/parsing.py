"""Raw interaction records → validated ``Interaction`` values, erasure requests or DLQ bad rows
(pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError

from engagement.kafka.bad_rows import record_row
from engagement.kafka.topics import candidate_key, tenant_of_key
from engagement.model.records import ErasureRequest, Interaction

PROCESSOR = "engagement-scorer"


class RawRecord(NamedTuple):
    """One consumed Kafka record, as bytes, with where it came from (built per record)."""

    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class BadRow:
    """A record the scorer cannot score: what failed, why, and the untouched payload."""

    record: RawRecord
    failure_type: str
    messages: tuple[str, ...]
    tenant_id: str | None


def parse(record: RawRecord) -> Interaction | ErasureRequest | BadRow:
    """Return the record's ``Interaction`` (or ``ErasureRequest``), or a ``BadRow`` saying why it
    is neither."""
    if not record.value:
        return BadRow(record, "decode_error", ("empty value",), tenant_of_key(record.key))
    try:
        data = orjson.loads(record.value)
    except orjson.JSONDecodeError as exc:
        return BadRow(record, "decode_error", (str(exc),), tenant_of_key(record.key))
    if not isinstance(data, dict):
        return BadRow(
            record, "schema_violation", ("value is not a JSON object",), tenant_of_key(record.key)
        )
    try:
        # What ``Interaction.model_validate(data)`` calls, minus its Python wrapper (~0.3 µs a
        # record). ``model_validate_json`` would skip orjson too, but its parser accepts
        # NaN / Infinity / 1e400, which must stay decode errors.
        interaction: Interaction = Interaction.__pydantic_validator__.validate_python(data)
    except ValidationError as exc:
        if data.get("type") == "erasure":  # rare: checked only once it is no interaction
            return _erasure_request(data, record)
        return BadRow(record, "schema_violation", _messages(exc), _tenant_of(data, record))
    if not (interaction.userId or interaction.anonymousId):
        return BadRow(
            record, "schema_violation", ("needs userId or anonymousId",), _tenant_of(data, record)
        )
    return interaction


def _erasure_request(data: dict[str, Any], record: RawRecord) -> ErasureRequest | BadRow:
    try:
        request = ErasureRequest.model_validate(data)
    except ValidationError as exc:
        return BadRow(record, "schema_violation", _messages(exc), _tenant_of(data, record))
    if record.key != candidate_key(request.tenantId, request.candidateId).encode():
        # elsewhere than the id's partition it is not behind the id's events
        message = "$: an erasure request is keyed tenantId:candidateId"
        return BadRow(record, "schema_violation", (message,), request.tenantId)
    return request


def bad_row_value(bad: BadRow, *, now: datetime) -> bytes:
    """Return the DLQ record value (JSON) of a bad row; the payload is kept verbatim as text, or
    its start only if the row would be too large for the broker (``engagement.kafka.bad_rows``; the
    whole record stays on its topic at ``origin`` until the topic's retention)."""
    record = bad.record
    return record_row(
        failure_type=bad.failure_type,
        messages=bad.messages,
        processor=PROCESSOR,
        tenant=bad.tenant_id,
        now=now,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
    )


def _messages(exc: ValidationError) -> tuple[str, ...]:
    return tuple(
        f"{'.'.join(str(p) for p in err['loc']) or '$'}: {err['msg']}" for err in exc.errors()
    )


def _tenant_of(data: dict[str, Any], record: RawRecord) -> str | None:
    tenant = data.get("tenantId")
    return tenant if isinstance(tenant, str) else tenant_of_key(record.key)
