"""The read API of engagement per job: the tenant's jobs, a job's leaderboard, a candidate's jobs.

Tenant-scoped by the read key like ``services.ingest.read_api``, read straight from Redis and
valued at the moment of the request (docs/api.md, "Jobs"). Its router is included before the read
API's: ``GET /v1/candidates/{id}/jobs`` would otherwise read as the candidate ``{id}/jobs``.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from engagement.model.score_views import iso
from engagement.store import job_store
from engagement.store.redis_store import ScoreStore
from services.ingest import read_api
from services.ingest.answers import LeaderboardPage, ok
from services.ingest.errors import ApiError
from services.ingest.routes import ERROR

router = APIRouter(tags=["jobs"], responses=read_api.READ_ERRORS)
JobId = Annotated[
    str,
    PathParam(
        min_length=1,
        max_length=512,
        description="The job id, percent-encoded as by encodeURIComponent (/ as %2F).",
    ),
]


class CandidateJob(BaseModel):
    """One job a candidate engages with, valued now."""

    jobId: str
    score: int = Field(ge=1, le=100)
    tier: str = Field(description="The job tier (the template's job_tiers, else its tiers).")
    raw: float
    pillars: dict[str, float]
    lastEventAt: str = Field(description="The candidate's latest scored event naming the job.")


class TenantJob(BaseModel):
    """One job of the tenant: its candidates per job tier now."""

    jobId: str
    candidates: dict[str, int] = Field(description="Candidates per job tier now, lowest first.")
    total: int = Field(ge=0, description="Candidates in the job's leaderboard.")
    lastEventAt: str = Field(description="The latest scored event naming the job.")


class TenantJobs(BaseModel):
    """The tenant's jobs, most recently engaged first."""

    jobs: list[TenantJob]
    nextCursor: str | None
    asOf: str


class CandidateJobs(BaseModel):
    """The jobs a candidate engages with, highest score for the job first."""

    candidateId: str
    jobs: list[CandidateJob]
    asOf: str


def tenant_store(store: ScoreStore, tenant: str) -> ScoreStore:
    """The store of the tenant's template when the store has one per tenant, else ``store``."""
    for_tenant = getattr(store, "for_tenant", None)
    return store if for_tenant is None else for_tenant(tenant)


@router.get(
    "/v1/jobs",
    summary="The tenant's jobs, most recently engaged first, with their candidates per tier",
    responses={
        **ok(TenantJobs),
        400: {"description": "`invalid_cursor` or invalid parameters.", **ERROR},
    },
)
async def tenant_jobs(
    tenant: read_api.ReadTenant,
    store: read_api.Store,
    limit: Annotated[int, Query(ge=1, le=read_api.MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(description="nextCursor of the previous page")] = None,
) -> Any:
    """Every job a scored event of the tenant named (since the job list exists), the latest
    event naming it first, each with its candidates per job tier now and their total; pass
    ``nextCursor`` back as ``cursor`` for the next page."""
    scored = tenant_store(store, tenant)
    try:
        page = await job_store.tenant_jobs(scored, tenant, limit, cursor, time.time())
    except ValueError as exc:
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned") from exc
    return page.as_dict()


@router.get(
    "/v1/jobs/{job_id:path}/candidates",
    summary="A job's candidates ordered by their current score for the job (leaderboard)",
    responses={
        **ok(LeaderboardPage),
        400: {"description": "`unknown_tier`, `invalid_cursor` or invalid parameters.", **ERROR},
    },
)
async def job_candidates(
    job_id: JobId,
    tenant: read_api.ReadTenant,
    store: read_api.Store,
    tier: Annotated[str | None, Query(description="only candidates in this job tier now")] = None,
    limit: Annotated[int, Query(ge=1, le=read_api.MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(description="nextCursor of the previous page")] = None,
) -> Any:
    """Highest current score for the job first, in the shape of ``GET /v1/candidates``; pass
    ``nextCursor`` back as ``cursor`` for the next page. A job no candidate engages with is an
    empty page."""
    scored = tenant_store(store, tenant)
    names = list(scored.rules.job_tier_names)
    if tier is not None and tier not in names:
        raise ApiError(400, "unknown_tier", f"tier must be one of {names}")
    now = time.time()
    try:
        page = await scored.job_leaderboard(tenant, job_id, tier, limit, cursor, now=now)
    except ValueError as exc:
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned") from exc
    return {
        "candidates": [entry.as_dict() for entry in page.entries],
        "nextCursor": page.next_cursor,
        "asOf": iso(page.as_of or now),
    }


@router.get(
    f"{read_api.CANDIDATE_PATH}/jobs",
    summary="The jobs a candidate engages with, ranked",
    responses={**ok(CandidateJobs), **read_api.NOT_FOUND},
)
async def candidate_jobs(
    candidate_id: read_api.CandidateId,
    tenant: read_api.ReadTenant,
    store: read_api.Store,
    request: Request,
) -> Any:
    """Each job the candidate's events named (at most the scorer's jobs per candidate, the
    strongest), its score, job tier, raw sum and pillars now; 404 when the candidate is unknown.
    A candidate id ending in ``/jobs`` sent as ``%2Fjobs`` is that candidate, not its jobs."""
    if not request.scope.get("raw_path", b"/jobs").endswith(b"/jobs"):
        return await read_api.get_candidate(f"{candidate_id}/jobs", tenant, store)
    found = await tenant_store(store, tenant).candidate_jobs(tenant, candidate_id, time.time())
    if found is None:
        raise ApiError(404, "candidate_not_found", f"no candidate {candidate_id!r}")
    return found.as_dict()
