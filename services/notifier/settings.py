"""Notifier settings: read once from the environment by the composition root."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from engagement.faust.settings import WorkerSettings, worker_env
from engagement.model.webhooks import RetryPolicy


class NotifierSettings(WorkerSettings):
    """Everything the notifier worker needs; every field is an environment variable (NOTIFIER_*)."""

    service: ClassVar[str] = "notifier"
    model_config = worker_env(service)

    rules_file: Path = Field(Path("config/rules.toml"), description="Score template (TOML).")
    webhooks_file: Path = Field(
        Path("config/webhooks.toml"), description="Webhook endpoints and egress policy (TOML)."
    )
    notifier_sweep_interval: float = Field(
        30.0, gt=0, description="Seconds between decay sweeps (leader only, Redis-locked)."
    )
    web_port: int = Field(6067, ge=0, description="Port of /metrics, /healthz, /readyz.")
    data_dir: Path = Field(
        Path(tempfile.gettempdir()) / "engagement-notifier",
        description="Faust data directory (no tables are kept; Faust still wants one).",
    )
    webhook_timeout: float = Field(15.0, gt=0, description="HTTP timeout per delivery attempt (s).")
    webhook_max_attempts: int = Field(10, ge=1, description="Attempts before the webhook DLQ.")
    webhook_retry_base: float = Field(5.0, ge=0, description="Wait after the first failure (s).")
    webhook_retry_factor: float = Field(4.0, ge=1, description="Backoff multiplier per attempt.")
    webhook_retry_max: float = Field(
        86_400.0, ge=0, description="Longest wait between attempts (s)."
    )
    webhook_retry_jitter: float = Field(0.2, ge=0, le=1, description="Relative jitter (±).")
    webhook_poll_interval: float = Field(
        0.2, gt=0, description="Seconds between polls of each endpoint's deliveries when idle."
    )
    webhook_concurrency: int = Field(
        16,
        ge=1,
        description="Attempts in flight at once per webhook endpoint; each endpoint has its own, "
        "so a slow or failing one never holds up another.",
    )
    webhook_retention: float = Field(
        7 * 86_400.0, gt=0, description="Seconds a finished delivery's state is kept (dedupe)."
    )

    @property
    def retry_policy(self) -> RetryPolicy:
        """The webhook retry schedule."""
        return RetryPolicy(
            max_attempts=self.webhook_max_attempts,
            base_seconds=self.webhook_retry_base,
            factor=self.webhook_retry_factor,
            max_seconds=self.webhook_retry_max,
            jitter=self.webhook_retry_jitter,
        )

    @property
    def claim_lease(self) -> float:
        """Seconds a claimed delivery stays invisible to other workers (covers one attempt)."""
        return self.webhook_timeout + 10.0
