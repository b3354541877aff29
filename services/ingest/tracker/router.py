"""``GET /v1/tracker.js``: the browser tracker, versioned and cacheable (ETag + Cache-Control)."""

from __future__ import annotations

import gzip
import hashlib
import re
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

SOURCE = Path(__file__).with_name("tracker.js")
CACHE_CONTROL = "public, max-age=3600, stale-while-revalidate=86400"

router = APIRouter(tags=["tracker"])


@lru_cache(maxsize=1)
def tracker_asset() -> tuple[bytes, bytes, str, str]:
    """Return (script, gzipped script, strong ETag, version) read once from tracker.js."""
    script = SOURCE.read_bytes()
    found = re.search(rb'var VERSION = "([^"]+)"', script)
    version = found.group(1).decode() if found else "0"
    etag = '"' + hashlib.sha256(script).hexdigest()[:32] + '"'
    return script, gzip.compress(script, 9, mtime=0), etag, version


TRACKER_VERSION = tracker_asset()[3]


@router.get("/v1/tracker.js", include_in_schema=True, summary="The browser tracker script")
async def tracker_js(request: Request) -> Response:
    """Serve tracker.js; 304 when If-None-Match names the current version, gzip when accepted."""
    script, zipped, etag, version = tracker_asset()
    headers = {
        "Cache-Control": CACHE_CONTROL,
        "ETag": etag,
        "X-Tracker-Version": version,
        "Vary": "Accept-Encoding",
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Access-Control-Expose-Headers": "ETag, X-Tracker-Version",
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    body = script
    if "gzip" in request.headers.get("accept-encoding", ""):
        body, headers["Content-Encoding"] = zipped, "gzip"
    return Response(body, media_type="application/javascript; charset=utf-8", headers=headers)
