"""The score read API: a candidate, the leaderboard, tier counts, and GDPR erasure.

Every route is tenant-scoped by its bearer key (read key; erasure needs the admin key). Scores
are read straight from Redis (the scorer's store) and valued at the moment of the request.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam

from engagement import erasure
from engagement.erasure import ErasureTopics
from engagement.kafka import score_records
from engagement.model.rules import Rules
from engagement.model.score_views import iso
from engagement.store.redis_store import ScoreStore
from engagement.store.templated_store import TemplatedStore
from services.ingest.answers import CandidateScore, LeaderboardPage, TierCounts, ok
from services.ingest.auth import require_admin_key, require_read_key
from services.ingest.errors import ApiError
from services.ingest.routes import ERROR
from services.ingest.settings import IngestSettings
from services.ingest.sink import KafkaSink, NotAcknowledged, OutRecord

READ_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid parameters.", **ERROR},
    401: {"description": "Missing or wrong key (`invalid_key`).", **ERROR},
    429: {
        "description": "The key is past its rate limit (`rate_limited`); see Retry-After.",
        **ERROR,
    },
    503: {"description": "Redis is unavailable (`redis_unavailable`); see Retry-After.", **ERROR},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown or erased candidate (`candidate_not_found`).", **ERROR}
}
router = APIRouter(tags=["scores"], responses=READ_ERRORS)
ReadTenant = Annotated[str, Depends(require_read_key)]
AdminTenant = Annotated[str, Depends(require_admin_key)]
# ``:path``: an id may hold "/" (sent as %2F, which the server decodes before routing)
CANDIDATE_PATH = "/v1/candidates/{candidate_id:path}"
CandidateId = Annotated[
    str,
    PathParam(
        min_length=1,
        max_length=512,
        description="The candidate id, percent-encoded as by encodeURIComponent (/ as %2F).",
    ),
]
MAX_LIMIT = 500


def store_of(request: Request) -> ScoreStore:
    """The app's ScoreStore, built in the lifespan on the app's Redis client and rules."""
    store: ScoreStore = request.app.state.score_store
    return store


Store = Annotated[ScoreStore, Depends(store_of)]


def _rules_of(store: ScoreStore, tenant: str) -> Rules:
    """The rules the tenant is scored with (its own template, else the default)."""
    return store.rules_for(tenant) if isinstance(store, TemplatedStore) else store.rules


@router.get(
    CANDIDATE_PATH,
    summary="A candidate's current score and why",
    responses={**ok(CandidateScore), **NOT_FOUND},
)
async def get_candidate(candidate_id: CandidateId, tenant: ReadTenant, store: Store) -> Any:
    """Score, tier, raw, pillars, channels, sequence, asOf (now), rulesVersion, lastEventAt and
    the most recent contributions with their original and current points; 404 when unknown."""
    view = await store.get_candidate(tenant, candidate_id, time.time())
    if view is None:
        raise ApiError(404, "candidate_not_found", f"no candidate {candidate_id!r}")
    return view.as_dict()


@router.get(
    "/v1/candidates",
    summary="Candidates ordered by current score (leaderboard)",
    responses={
        **ok(LeaderboardPage),
        400: {"description": "`unknown_tier`, `invalid_cursor` or invalid parameters.", **ERROR},
    },
)
async def list_candidates(
    tenant: ReadTenant,
    store: Store,
    tier: Annotated[str | None, Query(description="only candidates in this tier now")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(description="nextCursor of the previous page")] = None,
) -> Any:
    """Highest current score first; pass ``nextCursor`` back as ``cursor`` for the next page."""
    names = _rules_of(store, tenant).tier_names
    if tier is not None and tier not in names:
        raise ApiError(400, "unknown_tier", f"tier must be one of {list(names)}")
    try:
        page = await store.leaderboard(tenant, tier, limit, cursor, now=time.time())
    except ValueError as exc:
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned") from exc
    return {
        "candidates": [entry.as_dict() for entry in page.entries],
        "nextCursor": page.next_cursor,
        "asOf": iso(page.as_of or time.time()),
    }


@router.get(
    "/v1/tiers", summary="Number of candidates in each tier right now", responses=ok(TierCounts)
)
async def tiers(tenant: ReadTenant, store: Store) -> Any:
    """Counts per tier (lowest first) at the moment of the request, decay included."""
    now = time.time()
    counts = await store.tier_counts(tenant, now)
    return {"tiers": counts, "asOf": iso(now)}


@router.delete(
    CANDIDATE_PATH,
    status_code=204,
    response_class=Response,
    summary="Erase a candidate (GDPR)",
    responses={
        204: {"description": "Erased, and every erasure record acknowledged by Kafka."},
        401: {"description": "Missing or wrong admin key (`invalid_key`).", **ERROR},
        503: {
            "description": "Kafka did not acknowledge the erasure records (or Redis is down): "
            "retry the DELETE after Retry-After; the retry completes the erasure.",
            **ERROR,
        },
    },
)
async def erase_candidate(
    candidate_id: CandidateId, tenant: AdminTenant, store: Store, request: Request
) -> Response:
    """GDPR erasure (``engagement.erasure.on_request``, its steps and invariants). Idempotent:
    204 again; a retry after a 503 publishes the same records."""
    settings: IngestSettings = request.app.state.settings
    topics = settings.topics
    await erasure.on_request(
        store,
        tenant,
        candidate_id,
        now=datetime.now(UTC),
        publish=lambda records: _publish(request.app.state.sink, records),
        topics=ErasureTopics(topics.scores_changed, topics.scores_latest, topics.interactions),
    )
    return Response(status_code=204)


async def _publish(sink: KafkaSink, records: Sequence[score_records.OutRecord]) -> None:
    """Return once Kafka acknowledged every record; 503 + Retry-After (retry the DELETE) if not."""
    try:
        await sink.publish([OutRecord(r.topic, r.key or b"", r.value, r.headers) for r in records])
    except NotAcknowledged:
        raise ApiError(
            503,
            "kafka_unavailable",
            "the candidate is erased from Redis but Kafka did not acknowledge the erasure "
            "records; retry the DELETE to complete the erasure",
            headers={"Retry-After": str(sink.settings.ingest_retry_after_seconds)},
        ) from None
