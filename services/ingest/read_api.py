"""The score read API: a candidate, the leaderboard, tier counts, and GDPR erasure.

Every route is tenant-scoped by its bearer key (read key; erasure needs the admin key). Scores
are read straight from Redis (the scorer's store) and valued at the moment of the request.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam

from engagement.records import PILLARS, Cause, ScoreChange
from engagement.redis_store import ScoreStore
from engagement.rules import Rules
from engagement.score_views import iso
from engagement.topics import candidate_key
from services.ingest.auth import require_admin_key, require_read_key
from services.ingest.errors import ApiError
from services.scorer.publishing import encode, record

router = APIRouter(tags=["scores"])
ReadTenant = Annotated[str, Depends(require_read_key)]
AdminTenant = Annotated[str, Depends(require_admin_key)]
CandidateId = Annotated[str, PathParam(min_length=1, max_length=512)]
MAX_LIMIT = 500


def store_of(request: Request) -> ScoreStore:
    """The app's ScoreStore, built in the lifespan on the app's Redis client and rules."""
    store: ScoreStore = request.app.state.score_store
    return store


Store = Annotated[ScoreStore, Depends(store_of)]


@router.get("/v1/candidates/{candidate_id}", summary="A candidate's current score and why")
async def get_candidate(candidate_id: CandidateId, tenant: ReadTenant, store: Store) -> Any:
    """Score, tier, raw, pillars, channels, sequence, asOf (now), rulesVersion, lastEventAt and
    the most recent contributions with their original and current points; 404 when unknown."""
    view = await store.get_candidate(tenant, candidate_id, time.time())
    if view is None:
        raise ApiError(404, "candidate_not_found", f"no candidate {candidate_id!r}")
    return view.as_dict()


@router.get("/v1/candidates", summary="Candidates ordered by current score (leaderboard)")
async def list_candidates(
    tenant: ReadTenant,
    store: Store,
    tier: Annotated[str | None, Query(description="only candidates in this tier now")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(description="nextCursor of the previous page")] = None,
) -> Any:
    """Highest current score first; pass ``nextCursor`` back as ``cursor`` for the next page."""
    if tier is not None and tier not in store.rules.tier_names:
        raise ApiError(400, "unknown_tier", f"tier must be one of {list(store.rules.tier_names)}")
    try:
        page = await store.leaderboard(tenant, tier, limit, cursor, now=time.time())
    except ValueError as exc:
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned") from exc
    return {
        "candidates": [entry.as_dict() for entry in page.entries],
        "nextCursor": page.next_cursor,
        "asOf": iso(page.as_of or time.time()),
    }


@router.get("/v1/tiers", summary="Number of candidates in each tier right now")
async def tiers(tenant: ReadTenant, store: Store) -> Any:
    """Counts per tier (lowest first) at the moment of the request, decay included."""
    now = time.time()
    counts = await store.tier_counts(tenant, now)
    return {"tiers": counts, "asOf": iso(now)}


@router.delete(
    "/v1/candidates/{candidate_id}",
    status_code=204,
    response_class=Response,
    summary="Erase a candidate (GDPR)",
)
async def erase_candidate(
    candidate_id: CandidateId, tenant: AdminTenant, store: Store, request: Request
) -> Response:
    """Delete every key of the candidate (and of anonymous ids merged into it), then publish a
    tombstone on the latest topic and a ``cause{type: erasure}`` record. Idempotent: 204 again."""
    erasure = await store.erase(tenant, candidate_id)
    now = datetime.now(UTC)
    records = [
        _erasure_record(request, store.rules, tenant, candidate_id, erasure.last_sequence + 1, now)
    ]
    for cand in (candidate_id, *erasure.merged_ids):
        records.append((_latest_topic(request), candidate_key(tenant, cand).encode(), None, []))
    await _publish(request, records)
    return Response(status_code=204)


def _erasure_record(
    request: Request, rules: Rules, tenant: str, candidate_id: str, sequence: int, now: datetime
) -> tuple[str, bytes, bytes | None, list[tuple[str, bytes]]]:
    change = ScoreChange(
        tenantId=tenant,
        candidateId=candidate_id,
        score=1,
        previousScore=None,
        tier=rules.tiers[0].name,
        raw=0.0,
        pillars=dict.fromkeys(PILLARS, 0.0),
        channels={},
        sequence=sequence,
        asOf=now,
        rulesVersion=rules.version,
        cause=Cause(type="erasure"),
    )
    out = record(request.app.state.settings.topics.scores_changed, change, "score.changed")
    return out.topic, out.key or b"", encode(change), out.headers


def _latest_topic(request: Request) -> str:
    return str(request.app.state.settings.topics.scores_latest)


async def _publish(
    request: Request, records: list[tuple[str, bytes, bytes | None, list[tuple[str, bytes]]]]
) -> None:
    """Produce and wait for every acknowledgement; 503 (retry the DELETE) when Kafka does not ack."""
    settings = request.app.state.settings
    producer = getattr(request.app.state.sink, "producer", None)
    if producer is None:
        raise _unavailable(settings)
    try:
        futures = [
            await producer.send(topic, key=key, value=value, headers=headers)
            for topic, key, value, headers in records
        ]
        await asyncio.wait_for(
            asyncio.gather(*futures), timeout=settings.ingest_produce_timeout_seconds
        )
    except (KafkaError, TimeoutError) as exc:
        raise _unavailable(settings) from exc


def _unavailable(settings: Any) -> ApiError:
    retry = str(getattr(settings, "ingest_retry_after_seconds", 5))
    return ApiError(
        503,
        "kafka_unavailable",
        "the erasure is done in Redis but Kafka did not acknowledge it; retry the DELETE",
        headers={"Retry-After": retry},
    )
