"""Read a request body within the size limit, gunzipping as a stream (a gzip bomb stops early)."""

from __future__ import annotations

import json
import math
import zlib
from typing import Any

import orjson
from fastapi import Request

from services.ingest.errors import ApiError
from services.ingest.plain_envelope import TEXT_LIMITS

JSON_TYPES = frozenset({"", "application/json", "text/plain"})
# The ids a client may send as numbers (Segment: a numeric id is its decimal text).
NUMERIC_IDS = ("userId", "anonymousId", "previousId", "groupId", "messageId")
INT_RANGE = (-(2**63), 2**64 - 1)
TEXT_FIELDS = tuple(TEXT_LIMITS)


async def read_json_object(request: Request, *, max_bytes: int) -> dict[str, Any]:
    """Return the body as a JSON object; 415 for other types/encodings, 413 past ``max_bytes``."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in JSON_TYPES:
        raise ApiError(415, "unsupported_media_type", "send application/json or text/plain")
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in {"", "identity"}:
        body = await _read_plain(request, max_bytes=max_bytes)
    elif encoding == "gzip":
        body = await _read_gzip(request, max_bytes=max_bytes)
    else:
        raise ApiError(415, "unsupported_encoding", "Content-Encoding must be gzip or identity")
    return parse_object(body)


def parse_object(body: bytes) -> dict[str, Any]:
    """Return ``body`` parsed as a JSON object; 400 when it is not one.

    Integers in ids stay exact, and a string holding an unpaired surrogate is read as such: each
    event is then judged on its own (``services.ingest.event_guards``), not the whole body.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = _parse_exactly(body)  # e.g. "\\ud800", which orjson refuses
    else:
        if _float_id(document):  # orjson reads an integer past 64 bits as a float
            document = _parse_exactly(body)
    if not isinstance(document, dict):
        raise ApiError(400, "invalid_body", "body must be a JSON object")
    return document


def _parse_exactly(body: bytes) -> Any:
    """Parse with the standard library: exact integers, lone surrogate escapes; no NaN or
    Infinity, nesting up to the interpreter's recursion limit (about 1,000 levels)."""
    try:
        document = json.loads(
            body.decode("utf-8"), parse_float=_finite, parse_constant=_no_constant
        )
    except (ValueError, RecursionError) as exc:  # also UnicodeDecodeError, too many digits
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {exc}") from None
    for event in _events(document):
        for name in TEXT_FIELDS:
            if type(event.get(name)) is int and not _fits(event[name]):
                event[name] = str(event[name])  # Segment's rule: a numeric id is its decimal text
    return _within_64_bits(document)


def _fits(number: int) -> bool:
    return INT_RANGE[0] <= number <= INT_RANGE[1]


def _as_float(number: int) -> float:
    try:
        return float(number)
    except OverflowError:
        raise ApiError(400, "invalid_json", "body is not valid JSON: number out of range") from None


def _float_id(document: Any) -> bool:
    """Whether an id of an event of ``document`` was read as a float: maybe an integer past 64
    bits (a few lookups per event; searching the body for long digit runs cost 1-5 us per
    event, more than parsing it)."""
    for event in _events(document):
        for name in NUMERIC_IDS:
            if type(event.get(name)) is float:
                return True
    return False


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text[:20]} is out of range")
    return number


def _no_constant(text: str) -> float:
    raise ValueError(f"{text} is not JSON")


def _events(document: Any) -> list[dict[str, Any]]:
    """The objects of ``document`` that may be events: itself and its ``batch`` items."""
    if not isinstance(document, dict):
        return []
    batch = document.get("batch")
    items = batch if isinstance(batch, list) else []
    return [document, *(item for item in items if isinstance(item, dict))]


def _within_64_bits(document: Any) -> Any:
    """``document`` with every integer past 64 bits as a float, as orjson reads it."""
    root = [document]
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        pairs = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in pairs:
            if type(value) is int and not _fits(value):
                node[key] = _as_float(value)
            elif isinstance(value, dict | list):
                stack.append(value)
    return root[0]


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "request_too_large", f"request body is larger than {max_bytes} bytes")


async def _read_plain(request: Request, *, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_gzip(request: Request, *, max_bytes: int) -> bytes:
    """Inflate chunk by chunk, never producing more than ``max_bytes`` + 1 bytes."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out, compressed = bytearray(), 0
    try:
        async for chunk in request.stream():
            compressed += len(chunk)
            if compressed > 2 * max_bytes:
                raise _too_large(max_bytes)
            data = chunk
            while data and not inflater.eof:
                out += inflater.decompress(data, max_bytes + 1 - len(out))
                if len(out) > max_bytes:
                    raise _too_large(max_bytes)
                data = inflater.unconsumed_tail
    except zlib.error as exc:
        raise ApiError(400, "invalid_gzip", f"body is not valid gzip: {exc}") from None
    if not inflater.eof:
        raise ApiError(400, "invalid_gzip", "gzip body is truncated")
    return bytes(out)
