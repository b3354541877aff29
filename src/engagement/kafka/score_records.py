"""Score records for Kafka built from a ``ScoreChange`` (pure), the same from every service.

The scorer publishes a record per score change and per snapshot (its hot path builds the same
bytes straight from store outcomes: ``services/scorer/score_changes.py``); ingest publishes the
erasure record of ``DELETE /v1/candidates/{id}`` with ``record``, so both carry the same key,
CloudEvents headers (``ce_source`` = ``SOURCE``) and encoding.
"""

from __future__ import annotations

from typing import NamedTuple

import orjson

from engagement.kafka.cloudevents import binary_headers, ce_type
from engagement.kafka.topics import candidate_key
from engagement.model.records import ScoreChange

SOURCE = "/engagement/scorer"


class OutRecord(NamedTuple):
    """One record to produce; ``value=None`` is a tombstone (a named tuple: built per record)."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def record(topic: str, change: ScoreChange, kind: str) -> OutRecord:
    """A score record with its key and CloudEvents headers (``ce_sequence`` = the sequence)."""
    key = candidate_key(change.tenantId, change.candidateId)
    prefix = "" if kind == "score.changed" else "latest:"
    headers = binary_headers(
        event_id=f"{prefix}{key}:{change.sequence}",
        source=SOURCE,
        type_=ce_type(kind),
        time=change.asOf,
        subject=key,
        extra={"ce_sequence": str(change.sequence)},
    )
    return OutRecord(topic, key.encode(), encode(change), headers)


def encode(change: ScoreChange) -> bytes:
    """JSON bytes of a score record (camelCase, RFC 3339 times)."""
    return orjson.dumps(change.model_dump(mode="json"))
