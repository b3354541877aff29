"""Read a request body within the size limit, gunzipping as a stream (a gzip bomb stops early)."""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from fastapi import Request

from services.ingest.errors import ApiError

JSON_TYPES = frozenset({"", "application/json", "text/plain"})


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
    """Return ``body`` parsed as a JSON object; 400 when it is not one."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ApiError(400, "invalid_body", "body must be a JSON object")
    return document


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
