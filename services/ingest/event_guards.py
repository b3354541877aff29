"""What no event may hold, checked at the door before anything else reads it. Pure.

- **Ids, event names and channels are plain text**: no C0/C1 control character (U+0000 to U+001F,
  U+007F to U+009F) and no unpaired surrogate. Downstream stores join ids with separators and
  Kafka keys and headers are UTF-8: such an id is refused, never repaired.
- **A user id never names an anonymous candidate**: the candidate of ``anonymousId`` X is
  ``anon:X``, so ``userId`` (and ``previousId``, which names a user id) may not start ``anon:``;
  nor ``.`` or ``..``, which no URL path can name (``/v1/candidates/<id>``).
- **Every string is valid Unicode** (an unpaired surrogate cannot be written as UTF-8) and
  **nesting is at most** ``MAX_EVENT_DEPTH`` levels (the event object is level 1).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from engagement.model.identity import ANONYMOUS

MAX_EVENT_DEPTH = 64
ID_FIELDS = ("userId", "anonymousId", "messageId", "groupId", "previousId", "event")
DOT_SEGMENTS = frozenset({".", ".."})  # URL parsers drop them from a path, even as %2E
UNSAFE_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
SURROGATE = re.compile("[\ud800-\udfff]")
TOO_DEEP = f"<nested deeper than {MAX_EVENT_DEPTH} levels>"


def id_problems(event: Mapping[str, Any]) -> tuple[str, ...]:
    """Why the event's ids cannot be accepted (empty when they can)."""
    get = event.get
    user, previous = get("userId"), get("previousId")
    properties = get("properties")
    channel = properties.get("channel") if type(properties) is dict else None
    texts = (user, get("anonymousId"), get("messageId"), get("groupId"), previous, get("event"))
    # one C call for the common case: isprintable() is False for every control character and
    # unpaired surrogate (and for a few more, which the precise check below then lets through)
    plain = "".join([t for t in (*texts, channel) if type(t) is str]).isprintable()
    if plain and not (_reserved(user) or _reserved(previous)):
        return ()
    problems = [_text_problem(name, get(name)) for name in ID_FIELDS]
    problems.append(_text_problem("properties.channel", channel))
    problems.append(_candidate_problem("userId", user))
    if previous != get("anonymousId"):  # else it names the anonymous id, anon:<it>
        problems.append(_candidate_problem("previousId", previous))
    return tuple(p for p in problems if p is not None)


def reserved_problems(fields: Mapping[str, Any]) -> tuple[str, ...]:
    """``id_problems`` of validated fields whose ids are printable text (the common case, fast)."""
    channel = fields["properties"].get("channel")
    unprintable = type(channel) is str and not channel.isprintable()
    if unprintable or _reserved(fields.get("userId")) or _reserved(fields.get("previousId")):
        return id_problems(fields)
    return ()


def _reserved(value: Any) -> bool:
    return type(value) is str and (value.startswith(ANONYMOUS) or value in DOT_SEGMENTS)


def _candidate_problem(name: str, value: Any) -> str | None:
    """Why a user id cannot name a candidate of its own, readable at /v1/candidates/<id>."""
    if type(value) is not str:
        return None
    if value.startswith(ANONYMOUS):
        return (
            f"{name} must not start with {ANONYMOUS!r} "
            f"(reserved for anonymous candidates: anon:<anonymousId>)"
        )
    if value in DOT_SEGMENTS:
        return f"{name} must not be {value!r} (a URL path cannot name it)"
    return None


def _text_problem(name: str, value: Any) -> str | None:
    if type(value) is not str:
        return None
    found = UNSAFE_CHAR.search(value)
    if found is None:
        return None
    return f"{name} {_char_problem(found.group())}"


def _char_problem(char: str) -> str:
    if SURROGATE.fullmatch(char):
        return f"contains an unpaired surrogate (U+{ord(char):04X})"
    return f"contains the control character U+{ord(char):04X}"


def encoded_event(event: Mapping[str, Any]) -> bytes | str:
    """The event's JSON, or why it has none: nested too deep, or an unpaired surrogate."""
    try:
        encoded = orjson.dumps(event)
    except orjson.JSONEncodeError:  # past orjson's depth, or a string that is not UTF-8
        return _unwritable_reason(event)
    if encoded.count(b"{") + encoded.count(b"[") > MAX_EVENT_DEPTH and _too_deep(event):
        return f"event is nested deeper than {MAX_EVENT_DEPTH} levels"
    return encoded


def _unwritable_reason(event: Mapping[str, Any]) -> str:
    if _too_deep(event):
        return f"event is nested deeper than {MAX_EVENT_DEPTH} levels"
    for path, text in _strings(event, ()):
        found = SURROGATE.search(text)
        if found is not None:
            return f"{'.'.join(path) or 'a key'} {_char_problem(found.group())}"
    return "event cannot be written as JSON"


def _too_deep(value: Any, levels: int = MAX_EVENT_DEPTH) -> bool:
    """Whether ``value`` nests more than ``levels`` containers (stops at the first too deep)."""
    if type(value) is dict:
        children: Any = value.values()
    elif type(value) is list:
        children = value
    else:
        return False
    if levels == 0:
        return True
    return any(_too_deep(child, levels - 1) for child in children if type(child) in (dict, list))


def _strings(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every string within ``value`` (keys too) with its dotted path; ``value`` is not too deep."""
    if type(value) is str:
        yield path, value
    elif type(value) is dict:
        for key, child in value.items():
            yield path, str(key)
            yield from _strings(child, (*path, str(key)))
    elif type(value) is list:
        for i, child in enumerate(value):
            yield from _strings(child, (*path, str(i)))


def writable(value: Any, levels: int = MAX_EVENT_DEPTH) -> Any:
    """A copy of ``value`` that JSON can hold: unpaired surrogates as ``\\udXXX`` text and
    containers past ``levels`` replaced by a marker (for dead-letter rows)."""
    if type(value) is str:
        return printable(value)
    if type(value) not in (dict, list):
        return value
    if levels == 0:
        return TOO_DEEP
    if type(value) is dict:
        return {printable(str(k)): writable(v, levels - 1) for k, v in value.items()}
    return [writable(child, levels - 1) for child in value]


def printable(text: str) -> str:
    """``text`` with each unpaired surrogate written as ``\\udXXX``."""
    if SURROGATE.search(text) is None:
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
