"""CORS for browser sources: granted only on the paths a source's page calls, to its origins.

A page may post events (the write paths), fetch the analytics.js settings of a key whose source
allows its origin, and load the tracker. Nothing else is ever granted: the read API, erasure,
metrics and hooks answer no preflight, and their answers carry no ``Access-Control-Allow-Origin``
(the dashboard reads its own origin, which needs no CORS). A preflight cannot carry the write
key, so on the write paths it is granted to an origin some source allows; the request itself is
then checked against its key's own source by the handlers (403).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.ingest.errors import error_response
from services.ingest.routes import SHORT_PATHS, SINGLE_TYPES
from services.ingest.sources import KeyRegistry

BROWSER_WRITE_PATHS = frozenset(
    [f"/v1/{kind}" for kind in (*SINGLE_TYPES, *SHORT_PATHS)] + ["/v1/batch", "/v1/b"]
)
SETTINGS_PATH = re.compile(r"/v1/projects/([^/]+)/settings")
TRACKER_PATH = "/v1/tracker.js"
MAX_AGE = "3600"


@dataclass(frozen=True)
class Grant:
    """What a page may do on a path: the methods and request headers it may use."""

    methods: tuple[str, ...]
    # X-Retry-Count: analytics.js (@segment/analytics-next) adds it to every retry.
    headers: str = "Content-Type, Content-Encoding, Authorization, X-Retry-Count"


WRITE = Grant(methods=("POST",))
FETCH = Grant(methods=("GET",), headers="Content-Type")


def grant_for(path: str, origin: str, keys: KeyRegistry) -> Grant | None:
    """Return what a page of ``origin`` may do on ``path``; None where no page may call it."""
    if path in BROWSER_WRITE_PATHS:
        return WRITE if origin in keys.allowed_origins else None
    if path == TRACKER_PATH:
        return FETCH if origin in keys.allowed_origins else None
    settings = SETTINGS_PATH.fullmatch(path)
    if settings is not None:
        source = keys.source_for_write_key(unquote(settings[1]))
        return FETCH if source is not None and origin in source.allowed_origins else None
    return None


class SourceCorsMiddleware:
    """Add ``Access-Control-Allow-Origin`` where ``grant_for`` allows; 403 other preflights."""

    def __init__(self, app: ASGIApp, *, keys: Callable[[], KeyRegistry]) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, _varying(send) if _browser_path(scope) else send)
            return
        grant = grant_for(scope["path"], origin, self.keys())
        asked = headers.get("access-control-request-method")
        if scope["method"] == "OPTIONS" and asked is not None:
            await _preflight(origin, grant, asked, scope, receive, send)
            return
        allowed = grant is not None and scope["method"] in grant.methods

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and allowed:
                _add_cors(MutableHeaders(scope=message), origin)
            await send(message)

        varied = _varying(send_with_cors) if _browser_path(scope) else send_with_cors
        await self.app(scope, receive, varied)


def _browser_path(scope: Scope) -> bool:
    """Whether some origin may be granted ``scope``'s path (its answers then vary by Origin)."""
    path: str = scope["path"]
    return (
        path in BROWSER_WRITE_PATHS or path == TRACKER_PATH or bool(SETTINGS_PATH.fullmatch(path))
    )


def _varying(send: Send) -> Send:
    """``send`` adding ``Vary: Origin``: a shared cache keeps one answer per origin (and one
    without CORS for requests without Origin), never handing one origin's answer to another."""

    async def send_varying(message: Message) -> None:
        if message["type"] == "http.response.start":
            MutableHeaders(scope=message).add_vary_header("Origin")
        await send(message)

    return send_varying


async def _preflight(
    origin: str, grant: Grant | None, asked: str, scope: Scope, receive: Receive, send: Send
) -> None:
    if grant is None or asked.upper() not in grant.methods:
        message = f"origin {origin} may not {asked} {scope['path']}"
        response = error_response(403, "origin_not_allowed", message)
        await response(scope, receive, send)
        return
    preflight = Response(status_code=204, headers={"Vary": "Origin"})
    _add_cors(preflight.headers, origin)
    preflight.headers["Access-Control-Allow-Methods"] = ", ".join((*grant.methods, "OPTIONS"))
    preflight.headers["Access-Control-Allow-Headers"] = grant.headers
    preflight.headers["Access-Control-Max-Age"] = MAX_AGE
    await preflight(scope, receive, send)


def _add_cors(headers: MutableHeaders, origin: str) -> None:
    headers["Access-Control-Allow-Origin"] = origin  # Vary: Origin is added by _varying
