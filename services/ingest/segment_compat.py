"""What Segment's analytics.js (@segment/analytics-next) fetches before it sends: its settings.

``AnalyticsBrowser.load({writeKey, cdnURL: "https://INGEST_HOST"})`` reads
``{cdnURL}/v1/projects/{writeKey}/settings``; the answer points its ``Segment.io`` destination
back at this service, which then receives the events on the short paths ``/v1/t``, ``/v1/p``, …
(see ``routes.SHORT_PATHS``), or on ``/v1/b`` with the batching delivery strategy.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Request

from services.ingest.auth import registry_of
from services.ingest.errors import ApiError, JsonResponse
from services.ingest.routes import ERROR

SETTINGS_CACHE_CONTROL = "public, max-age=300"


def cdn_settings(write_key: str, *, api_host: str, protocol: str) -> dict[str, Any]:
    """Return the smallest settings document that sends every event to ``protocol://api_host``.

    Remote metrics are off (``sampleRate`` 0): analytics.js would otherwise post them to ``/m``.
    """
    return {
        "integrations": {
            "Segment.io": {"apiKey": write_key, "apiHost": api_host, "protocol": protocol}
        },
        "plan": {},
        "metrics": {"sampleRate": 0},
        "remotePlugins": [],
        "enabledMiddleware": {},
    }


def _api_host(request: Request) -> tuple[str, str]:
    """Return this service's ``host[:port][/root]/v1`` and scheme: from INGEST_PUBLIC_URL, else
    as the client reached it (its Host header)."""
    public = request.app.state.settings.ingest_public_url
    base = urlsplit(public) if public else urlsplit(str(request.base_url))
    return f"{base.netloc}{base.path.rstrip('/')}/v1", base.scheme


router = APIRouter(tags=["ingest"])


@router.get(
    "/v1/projects/{write_key}/settings",
    summary="analytics.js settings for a write key (points it back at this service)",
    operation_id="get_analytics_js_settings",
    response_class=JsonResponse,
    responses={
        200: {"description": "Settings in the shape of Segment's CDN settings."},
        403: {"description": "Origin not allowed for this write key.", **ERROR},
        404: {"description": "Unknown write key.", **ERROR},
    },
)
async def analytics_js_settings(
    request: Request, write_key: str = Path(description="A browser source's write key.")
) -> JsonResponse:
    """Answer the settings for a known write key; 404 for an unknown one, 403 for its bad origin."""
    source = registry_of(request).source_for_write_key(write_key)
    if source is None:
        raise ApiError(404, "unknown_write_key", "no source has this write key")
    origin = request.headers.get("origin")
    if origin is not None and origin not in source.allowed_origins:
        raise ApiError(403, "origin_not_allowed", f"origin {origin} is not allowed for this key")
    api_host, protocol = _api_host(request)
    body = cdn_settings(write_key, api_host=api_host, protocol=protocol)
    # An answer built from the Host header must not reach a shared cache (cache poisoning).
    cache = SETTINGS_CACHE_CONTROL if request.app.state.settings.ingest_public_url else "no-store"
    return JsonResponse(body, headers={"Cache-Control": cache})
