"""Who is calling: write keys (Basic username, ``writeKey`` field or query) and bearer keys.

``require_read_key`` and ``require_admin_key`` are FastAPI dependencies for the read API; they
return the caller's tenant id.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from fastapi import Request

from services.ingest.errors import ApiError
from services.ingest.rate_limit import retry_after
from services.ingest.sources import KeyRegistry, Source

BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="engagement"'}


def registry_of(request: Request) -> KeyRegistry:
    """Return the app's key registry."""
    registry: KeyRegistry = request.app.state.keys
    return registry


def basic_username(authorization: str | None) -> str | None:
    """Return the username of a Basic ``Authorization`` header, or None."""
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "basic" or not credentials:
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


def bearer_token(authorization: str | None) -> str | None:
    """Return the token of a Bearer ``Authorization`` header, or None."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def write_key_of(request: Request, document: dict[str, Any]) -> str | None:
    """Return the write key: Basic username, else ``writeKey`` in the body, else the query."""
    from_header = basic_username(request.headers.get("authorization"))
    if from_header:
        return from_header
    from_body = document.get("writeKey")
    if isinstance(from_body, str) and from_body:
        return from_body
    return request.query_params.get("writeKey") or None


def authenticate_source(request: Request, document: dict[str, Any]) -> Source:
    """Return the source of the request's write key and check its Origin (401 / 403)."""
    source = registry_of(request).source_for_write_key(write_key_of(request, document))
    if source is None:
        raise ApiError(401, "invalid_write_key", "a valid write key is required")
    origin = request.headers.get("origin")
    if origin is not None and origin not in source.allowed_origins:
        raise ApiError(403, "origin_not_allowed", f"origin {origin} is not allowed for this key")
    return source


async def require_read_key(request: Request) -> str:
    """Return the tenant of the bearer read (or admin) key; 401 otherwise, 429 over its limit."""
    key = bearer_token(request.headers.get("authorization"))
    tenant = registry_of(request).tenant_for_read_key(key)
    if tenant is None or key is None:
        raise ApiError(401, "invalid_key", "a valid read key is required", headers=BEARER_CHALLENGE)
    await _within_rate_limit(request, key)
    return tenant


async def require_admin_key(request: Request) -> str:
    """Return the tenant of the bearer admin key; 401 otherwise, 429 over its limit."""
    key = bearer_token(request.headers.get("authorization"))
    tenant = registry_of(request).tenant_for_admin_key(key)
    if tenant is None or key is None:
        raise ApiError(
            401, "invalid_key", "a valid admin key is required", headers=BEARER_CHALLENGE
        )
    await _within_rate_limit(request, key)
    return tenant


async def _within_rate_limit(request: Request, key: str) -> None:
    settings = request.app.state.settings
    wait = await retry_after(
        request.app.state.redis,
        prefix=settings.redis_key_prefix,
        secret=key,
        limit=settings.secret_key_rate_limit,
        window_seconds=settings.secret_key_rate_window_seconds,
        now=time.time(),
    )
    if wait is not None:
        raise ApiError(
            429,
            "rate_limited",
            "too many requests for this key",
            headers={"Retry-After": str(wait)},
        )
