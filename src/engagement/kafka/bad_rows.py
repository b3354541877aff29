"""The value of a dead-letter row (ingest's and the scorer's, on ``engagement.interactions.dlq.v1``):
JSON that the broker always takes, whatever the bad record or event held.

A row carries its payload verbatim, and JSON escaping can make it up to six times the record
(control bytes); a row past the broker's ``message.max.bytes`` (1 MiB by default) or the producer's
request limit would be refused, and a refused row is retried for ever: the scorer's partition
would stop, a client's request would be answered 503 on every retry. So a row that would be larger
than ``DLQ_VALUE_MAX_BYTES`` keeps as much of its payload as fits, as text, and says so
(``payloadTruncated``, ``payloadBytes``: the size of the whole payload).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from engagement.model.records import format_time

DLQ_VALUE_MAX_BYTES = 512 * 1024


def dlq_value(
    row: dict[str, Any], *, payload_bytes: int | None = None, max_bytes: int = DLQ_VALUE_MAX_BYTES
) -> bytes:
    """The JSON of ``row`` (its ``payload``: text or a JSON value), with the payload cut to fit in
    ``max_bytes`` if need be; ``payload_bytes``: the whole payload's size as received, when its
    text is not it (invalid UTF-8 replaced), else the size of its JSON text."""
    value = orjson.dumps(row)
    if len(value) <= max_bytes:
        return value
    payload = row["payload"]
    text = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
    whole = len(text.encode()) if payload_bytes is None else payload_bytes
    row = row | {"payload": text, "payloadTruncated": True, "payloadBytes": whole}
    value, keep = orjson.dumps(row), len(text)
    while len(value) > max_bytes and keep:
        keep = min(keep - 1, keep * max_bytes * 9 // (10 * len(value)))  # to about 90 % of it
        row["payload"] = text[:keep]
        value = orjson.dumps(row)
    return value


def record_row(
    *,
    failure_type: str,
    messages: Sequence[str],
    processor: str,
    tenant: str | None,
    now: datetime,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
) -> bytes:
    """The DLQ value of a consumed record a worker set aside: what failed, why, and the record
    (its value as text, invalid UTF-8 replaced; cut to fit as ``dlq_value`` says)."""
    row: dict[str, Any] = {
        "failureType": failure_type,
        "messages": list(messages),
        "payload": (value or b"").decode("utf-8", errors="replace"),
        "source": processor,
        "processor": processor,
        "tenantId": tenant,
        "receivedAt": format_time(now),
        "origin": {
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "key": key.decode("utf-8", errors="replace") if key else None,
        },
    }
    return dlq_value(row, payload_bytes=len(value or b""))
