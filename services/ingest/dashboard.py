"""``GET /dashboard``: the recruiter dashboard — one HTML page, inline JS and SVG, no framework.

The page itself holds no data; its script reads the read API (``/v1/tiers``, ``/v1/candidates``,
the job reads) with the read key, taken once from the fragment ``#key=`` (never sent to the
server, so in no access log) into sessionStorage (or typed in), and sent as
``Authorization: Bearer``. ``GET /dashboard/history`` returns tier counts per UTC day: the samples
the notifier's sweep takes (``engagement.store.tier_history``), today's the counts now.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from engagement.model.score_views import iso
from engagement.store import tier_history
from services.ingest.auth import require_read_key
from services.ingest.job_api import tenant_store
from services.ingest.page_security import page_headers
from services.ingest.read_api import READ_ERRORS, store_of

PAGE = Path(__file__).with_name("dashboard.html")

router = APIRouter(tags=["dashboard"])


@router.get("/dashboard", response_class=HTMLResponse, summary="Recruiter dashboard (HTML)")
async def dashboard() -> HTMLResponse:
    """The dashboard page; it asks for the read key and then refreshes itself every 30 s."""
    page = PAGE.read_text(encoding="utf-8")
    return HTMLResponse(page, headers=page_headers(page))


@router.get(
    "/dashboard/history", summary="Tier counts per UTC day (read key)", responses=READ_ERRORS
)
async def history(
    request: Request,
    tenant: Annotated[str, Depends(require_read_key)],
    days: Annotated[int, Query(ge=1, le=tier_history.KEEP_DAYS)] = 30,
) -> Any:
    """The counts now as today's, and each of the previous ``days - 1`` days' sample (the first
    of its UTC day) with the instant it was taken; ``counts: null`` for a day without one. Also
    samples today when nothing did yet, as the notifier's sweep does."""
    store = tenant_store(store_of(request), tenant)
    now = time.time()
    redis, layout = request.app.state.redis, store.keys  # the keys of the tenant's generation
    await tier_history.sample(redis, layout, store.rules, tenant, now)
    counts = await store.tier_counts(tenant, now)
    today = tier_history.utc_day(now)
    found = await tier_history.days(redis, layout, tenant, today, days)
    return {
        "tiers": list(counts),
        "days": [{"date": d.day, "at": iso(d.at), "counts": d.counts} for d in found[:-1]]
        + [{"date": today.isoformat(), "at": iso(now), "counts": counts}],
        "asOf": iso(now),
    }
