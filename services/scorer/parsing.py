"""Raw interaction records → validated ``Interaction`` values, erasure requests or DLQ bad rows
(pure), and a batch of them in segments between erasure requests, without the events an
erasure fence withholds (``ParsedBatch``; the fences: ``engagement.store.erasure_fence``)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError

from engagement.kafka.bad_rows import record_row
from engagement.kafka.rules_topic import RebuildMarker, parse_marker
from engagement.kafka.topics import candidate_key, tenant_of_key
from engagement.model.records import ErasureRequest, Interaction
from engagement.model.scoring import epoch
from engagement.store.erasure_fence import Fences, fence_id
from engagement.store.store_jobs import MERGE_TYPES, candidate_of
from engagement.store.store_scripts import merge_source

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


def parse(record: RawRecord) -> Interaction | ErasureRequest | RebuildMarker | BadRow:
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
        if (marker := parse_marker(data)) is not None:  # a tenant's rebuild cut
            return marker
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


class ParsedBatch:
    """A batch's records parsed as they are taken (the store takes them as it sends commands), in
    segments that each end at an erasure request or with the batch: the bad ones are ``bad``,
    the interactions an erasure fence holds back (``fences``: ``ScoreStore.fences``, not to be
    modified) ``withheld``."""

    def __init__(self, records: Sequence[RawRecord], fences: Fences | None = None) -> None:
        self._records = iter(records)
        self.bad: list[BadRow] = []
        self.withheld: list[Interaction] = []
        self.fences = fences or {}

    def segment(self) -> Segment:
        """The next segment (empty once every record is taken)."""
        return Segment(self._records, self)


class Segment:
    """The valid interactions up to the next erasure request, parsed as they are taken; once
    iterated to its end, ``request`` is the request that ended it (None: the batch ended).
    Iterating again (a retried attempt) gives the ones parsed so far, then parses the rest."""

    def __init__(self, records: Iterator[RawRecord], batch: ParsedBatch) -> None:
        self._records = records
        self._batch = batch
        self._ended = False
        self.interactions: list[Interaction] = []
        self.request: ErasureRequest | RebuildMarker | None = None

    def __iter__(self) -> Iterator[Interaction]:
        yield from self.interactions[:]
        if self._ended:
            return
        batch = self._batch
        for record in self._records:
            parsed = parse(record)
            if isinstance(parsed, Interaction):
                if batch.fences and fenced(parsed, batch.fences):
                    batch.withheld.append(parsed)
                    continue
                self.interactions.append(parsed)
                yield parsed
            elif isinstance(parsed, BadRow):
                batch.bad.append(parsed)
            else:
                self.request = parsed
                break
        self._ended = True


def with_fences(fences: Fences, more: Fences) -> Fences:
    """A copy of ``fences`` with ``more`` (an id in both keeps its later instant)."""
    return fences | {fid: max(at, fences.get(fid, at)) for fid, at in more.items()}


def fenced(interaction: Interaction, fences: Fences) -> bool:
    """Whether the interaction was received before an erasure of its candidate or, for an
    identify or alias, of the id it would fold in (sent after the erasure, it is scored)."""
    tenant = interaction.tenantId
    received = epoch(interaction.receivedAt)
    if received <= fences.get(fence_id(tenant, candidate_of(interaction)), -math.inf):
        return True
    if interaction.type in MERGE_TYPES and (source := merge_source(interaction)):
        return received <= fences.get(fence_id(tenant, source), -math.inf)
    return False
