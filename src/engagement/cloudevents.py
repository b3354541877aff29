"""CloudEvents 1.0 binary-mode Kafka headers (DESIGN.md §3)."""

from __future__ import annotations

from datetime import UTC, datetime

CE_TYPE_PREFIX = "org.candidate-engagement"


def ce_type(kind: str) -> str:
    """Return the ``ce_type`` for a record kind, e.g. ``interaction.track`` or ``score.changed``."""
    return f"{CE_TYPE_PREFIX}.{kind}.v1"


def binary_headers(
    *,
    event_id: str,
    source: str,
    type_: str,
    time: datetime,
    subject: str | None = None,
    extra: dict[str, str] | None = None,
) -> list[tuple[str, bytes]]:
    """Return binary-mode CloudEvents headers for one Kafka record."""
    headers = {
        "ce_specversion": "1.0",
        "ce_id": event_id,
        "ce_source": source,
        "ce_type": type_,
        "ce_time": format_time(time),
    }
    if subject is not None:
        headers["ce_subject"] = subject
    headers.update(extra or {})
    headers["content-type"] = "application/json"
    return [(name, value.encode()) for name, value in headers.items()]


def format_time(moment: datetime) -> str:
    """Return RFC 3339 UTC with milliseconds and a ``Z`` suffix (naive values are taken as UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def headers_dict(
    headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...],
) -> dict[str, str]:
    """Return Kafka record headers as a str→str dict (last value wins)."""
    return {name: value.decode() for name, value in headers}
