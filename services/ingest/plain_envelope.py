"""The common shape of a Segment event, checked without pydantic (the ingest hot path). Pure.

``plain_fields`` answers only for events whose every field is of the plain, expected JSON type
(strings within their limits, ids printable, RFC 3339 times, objects); it returns what
``SegmentEvent.model_validate(raw).model_dump(exclude_none=True)`` would. Anything else, and every
invalid event, gets ``None``: pydantic then decides and writes the error messages. A property test
(tests/unit/ingest/test_plain_envelope.py) holds the two paths to the same answers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any, get_args

from engagement.model.records import EventType
from services.ingest.timestamps import in_range

EVENT_TYPES = frozenset(get_args(EventType))
# Declared fields of SegmentEvent, in its order, with the longest text each may hold.
TEXT_LIMITS = {
    "messageId": 200,
    "userId": 500,
    "anonymousId": 500,
    "previousId": 500,
    "event": 500,
    "name": 500,
    "groupId": 500,
}
BLANK_IS_MISSING = frozenset(
    {"messageId", "userId", "anonymousId", "previousId", "event", "groupId"}
)
TIME_FIELDS = ("timestamp", "originalTimestamp", "sentAt")
OBJECT_FIELDS = ("properties", "traits", "context")
DECLARED = frozenset({"type", *TEXT_LIMITS, *TIME_FIELDS, *OBJECT_FIELDS})
# Forms where datetime.fromisoformat and pydantic agree; other spellings go to pydantic.
PLAIN_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)?")


def missing_requirement(fields: Mapping[str, Any]) -> str | None:
    """Return what a valid event of its type lacks (ids, event name, ...), or None."""
    kind = fields.get("type")
    if not (fields.get("userId") or fields.get("anonymousId")):
        return "userId or anonymousId is required"
    if kind == "track" and not fields.get("event"):
        return "track needs an event name"
    if kind == "alias" and not (fields.get("previousId") and fields.get("userId")):
        return "alias needs previousId and userId"
    if kind == "group" and not fields.get("groupId"):
        return "group needs a groupId"
    return None


def plain_fields(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return the validated fields of a plainly valid event (None values left out), else None."""
    kind = raw.get("type")
    if type(kind) is not str or kind not in EVENT_TYPES:
        return None
    fields: dict[str, Any] = {"type": kind}
    if not (_add_texts(raw, fields) and _add_times(raw, fields) and _add_objects(raw, fields)):
        return None
    for name, value in raw.items():
        if name not in DECLARED and value is not None:
            fields[name] = value
    return None if missing_requirement(fields) else fields


def _add_texts(raw: Mapping[str, Any], fields: dict[str, Any]) -> bool:
    for name, limit in TEXT_LIMITS.items():
        value = raw.get(name)
        if value is None:
            continue
        if type(value) is not str or len(value) > limit:
            return False
        if name not in BLANK_IS_MISSING:
            fields[name] = value
        elif not value.isprintable():
            return False  # maybe a control character: services.ingest.event_guards decides
        elif value.strip():
            fields[name] = value
    return True


def _add_times(raw: Mapping[str, Any], fields: dict[str, Any]) -> bool:
    for name in TIME_FIELDS:
        value = raw.get(name)
        if value is None:
            continue
        moment = plain_time(value)
        if moment is None:
            return False
        fields[name] = moment
    return True


def _add_objects(raw: Mapping[str, Any], fields: dict[str, Any]) -> bool:
    for name in OBJECT_FIELDS:
        value = raw.get(name)
        if value is None:
            value = {}
        elif type(value) is not dict:
            return False
        fields[name] = value
    return True


def plain_time(value: Any) -> datetime | None:
    """Return an RFC 3339 string in [1970, 9000) as a UTC datetime; None for anything else."""
    return _parsed_time(value) if type(value) is str else None


@lru_cache(maxsize=4096)  # a batch's sentAt recurs in every one of its events
def _parsed_time(value: str) -> datetime | None:
    if PLAIN_TIME.fullmatch(value) is None:
        return None
    try:
        return in_range(datetime.fromisoformat(value))
    except ValueError:
        return None
