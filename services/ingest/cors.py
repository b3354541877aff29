"""CORS for browser sources: echo only origins some source allows; preflights answered here.

Which origin a write key may be used from is checked per source by the handlers (403).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.ingest.errors import error_response

ALLOW_METHODS = "POST, GET, DELETE, OPTIONS"
# X-Retry-Count: analytics.js (@segment/analytics-next) adds it to every retry.
ALLOW_HEADERS = "Content-Type, Content-Encoding, Authorization, X-Retry-Count"
MAX_AGE = "3600"


class SourceCorsMiddleware:
    """Add ``Access-Control-Allow-Origin`` for allowed origins; 403 preflights from others."""

    def __init__(self, app: ASGIApp, *, allowed: Callable[[], frozenset[str]]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        is_allowed = origin in self.allowed()
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(origin, is_allowed, scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and is_allowed:
                _add_cors(MutableHeaders(scope=message), origin)
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(
        self, origin: str, is_allowed: bool, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if not is_allowed:
            response = error_response(403, "origin_not_allowed", f"origin {origin} is not allowed")
            await response(scope, receive, send)
            return
        preflight = Response(status_code=204)
        _add_cors(preflight.headers, origin)
        preflight.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
        preflight.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
        preflight.headers["Access-Control-Max-Age"] = MAX_AGE
        await preflight(scope, receive, send)


def _add_cors(headers: MutableHeaders, origin: str) -> None:
    headers["Access-Control-Allow-Origin"] = origin
    headers.add_vary_header("Origin")
