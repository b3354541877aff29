"""``GET /v1/jobs/{jobId}/tiers``: a job's candidates per job tier now (the dashboard's job view).

The job's counterpart of ``GET /v1/tiers``: a handful of ZCOUNTs over the job's tier sets
(``engagement.store.rank_reads.job_tier_counts``), O(log n) each, never a scan. Tenant-scoped by
the read key, valued at the moment of the request, under the tenant's template.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from engagement.model.score_views import iso
from services.ingest import read_api
from services.ingest.answers import ok
from services.ingest.job_api import JobId, tenant_store

router = APIRouter(tags=["jobs"], responses=read_api.READ_ERRORS)


class JobTierCounts(BaseModel):
    """Number of a job's candidates in each job tier now, lowest tier first."""

    jobId: str
    tiers: dict[str, int] = Field(description="job tier → candidates (the template's job_tiers)")
    asOf: str


@router.get(
    "/v1/jobs/{job_id:path}/tiers",
    summary="Number of a job's candidates in each job tier right now",
    responses=ok(JobTierCounts),
)
async def job_tiers(job_id: JobId, tenant: read_api.ReadTenant, store: read_api.Store) -> Any:
    """Counts per job tier (lowest first) at the moment of the request, decay included; every
    count 0 for a job no candidate engages with."""
    now = time.time()
    counts = await tenant_store(store, tenant).job_tier_counts(tenant, job_id, now)
    return {"jobId": job_id, "tiers": counts, "asOf": iso(now)}
