"""Scorer settings: read once from the environment by the composition root."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from engagement.faust.settings import WorkerSettings, worker_env
from engagement.model.jobs import JOBS_KEPT


class ScorerSettings(WorkerSettings):
    """Everything the scorer worker needs; every field is an environment variable (SCORER_*)."""

    service: ClassVar[str] = "scorer"
    model_config = worker_env(service)

    rules_file: Path = Field(Path("config/rules.toml"), description="Score template (TOML).")
    web_port: int = Field(6066, ge=0, description="Port of /metrics, /healthz, /readyz.")
    data_dir: Path = Field(
        Path(tempfile.gettempdir()) / "engagement-scorer",
        description="Faust data directory (no tables are kept; Faust still wants one).",
    )
    scorer_rebuild: bool = Field(
        False,
        description="Rebuild mode: score into Redis only, publish nothing (no score records, erasure records or requests, DLQ rows); with a new REDIS_KEY_PREFIX and SCORER_GROUP_ID (docs/operations.md).",
    )
    scorer_anonymous_retention_days: float = Field(
        90.0,
        ge=0,
        description="Erase anonymous candidates (never identified) with no event for this many days (0 = keep them).",
    )
    scorer_expiry_interval: float = Field(
        3600.0, gt=0, description="Seconds between two looks for idle anonymous candidates."
    )
    scorer_ready_after: float = Field(
        60.0, gt=0, description="/healthz fails when events wait and no batch succeeded this long."
    )
    scorer_jobs_per_candidate: int = Field(
        JOBS_KEPT,
        ge=1,
        description="Job profiles kept per candidate (engagement per job); past it the weakest now is dropped.",
    )
