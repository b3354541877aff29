"""CloudEvents 1.0 binary-mode Kafka headers (docs/design.md §3)."""

from __future__ import annotations

from datetime import datetime

from engagement.model.records import format_time

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
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", type_.encode()),
        ("ce_time", format_time(time).encode()),
    ]
    if subject is not None:
        headers.append(("ce_subject", subject.encode()))
    if extra:
        return _with_extra(headers, extra)
    headers.append(("content-type", b"application/json"))
    return headers


def _with_extra(headers: list[tuple[str, bytes]], extra: dict[str, str]) -> list[tuple[str, bytes]]:
    """Return ``headers`` overridden and extended by ``extra``, then the content type (once)."""
    merged = dict(headers)
    merged.update((name, value.encode()) for name, value in extra.items())
    merged["content-type"] = b"application/json"
    return list(merged.items())


def headers_dict(
    headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...],
) -> dict[str, str]:
    """Return Kafka record headers as a str→str dict (last value wins)."""
    return {name: value.decode() for name, value in headers}
