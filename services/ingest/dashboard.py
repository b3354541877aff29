"""``GET /dashboard``: the recruiter dashboard — one HTML page, inline JS and SVG, no framework.

The page itself holds no data; its script reads the read API (``/v1/tiers``, ``/v1/candidates``)
with the read key, taken once from the fragment ``#key=`` (never sent to the server, so in no
access log) into sessionStorage (or typed in), and sent as
``Authorization: Bearer``. ``GET /dashboard/history`` returns tier counts per UTC day; each call
records today's counts in a small per-tenant Redis hash (last 90 days kept).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from services.ingest.auth import require_read_key
from services.ingest.page_security import page_headers
from services.ingest.read_api import READ_ERRORS, store_of

PAGE = Path(__file__).with_name("dashboard.html")
KEEP_DAYS = 90

router = APIRouter(tags=["dashboard"])


@router.get("/dashboard", response_class=HTMLResponse, summary="Recruiter dashboard (HTML)")
async def dashboard() -> HTMLResponse:
    """The dashboard page; it asks for the read key and then refreshes itself every 30 s."""
    page = PAGE.read_text(encoding="utf-8")
    return HTMLResponse(page, headers=page_headers(page))


def history_key(prefix: str, tenant: str) -> str:
    """The Redis hash of a tenant's daily tier counts (field = UTC date)."""
    return f"{prefix}dashboard:{{{tenant}}}:tier-days"


@router.get(
    "/dashboard/history", summary="Tier counts per UTC day (read key)", responses=READ_ERRORS
)
async def history(
    request: Request,
    tenant: Annotated[str, Depends(require_read_key)],
    days: Annotated[int, Query(ge=1, le=KEEP_DAYS)] = 14,
) -> Any:
    """Today's counts (recorded now) and the snapshots of the previous ``days - 1`` days."""
    store = store_of(request)
    now = time.time()
    counts = await store.tier_counts(tenant, now)
    today = datetime.fromtimestamp(now, tz=UTC).date()
    key = history_key(request.app.state.settings.redis_key_prefix, tenant)
    redis = request.app.state.redis
    await redis.hset(key, today.isoformat(), orjson.dumps(counts))
    wanted = [(today - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]
    stored = await redis.hmget(key, wanted)
    await _forget_old(redis, key, today)
    return {
        "tiers": list(counts),
        "days": [
            {"date": day, "counts": orjson.loads(raw) if raw else None}
            for day, raw in zip(wanted, stored, strict=True)
        ],
    }


async def _forget_old(redis: Any, key: str, today: Any) -> None:
    oldest = (today - timedelta(days=KEEP_DAYS)).isoformat()
    old = [
        f for f in await redis.hkeys(key) if (f.decode() if isinstance(f, bytes) else f) < oldest
    ]
    if old:
        await redis.hdel(key, *old)
