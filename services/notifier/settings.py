"""Notifier settings: read once from the environment by the composition root."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import Field

from engagement.settings import CommonSettings
from engagement.webhooks import RetryPolicy


class NotifierSettings(CommonSettings):
    """Everything the notifier worker needs; every field is an environment variable."""

    rules_file: Path = Field(Path("config/rules.toml"), description="Score template (TOML).")
    webhooks_file: Path = Field(
        Path("config/webhooks.toml"), description="Webhook endpoints and egress policy (TOML)."
    )
    notifier_group_id: str = Field(
        "", description="Consumer group id; empty = KAFKA_TOPIC_PREFIX + 'engagement-notifier'."
    )
    notifier_batch_size: int = Field(500, ge=1, description="Max score records per batch.")
    notifier_batch_within: float = Field(0.02, gt=0, description="Max seconds to fill a batch.")
    notifier_sweep_interval: float = Field(
        30.0, gt=0, description="Seconds between decay sweeps (leader only, Redis-locked)."
    )
    notifier_fetch_max_wait_ms: int = Field(
        100, ge=0, description="Longest wait (ms) of a fetch request for new records."
    )
    notifier_web_port: int = Field(6067, ge=0, description="Port of /metrics, /healthz, /readyz.")
    notifier_web_host: str = Field("0.0.0.0", description="Bind address of the web server.")
    notifier_commit_interval: float = Field(1.0, gt=0, description="Offset commit interval (s).")
    notifier_auto_offset_reset: str = Field(
        "earliest", description="Where a new consumer group starts: earliest | latest."
    )
    notifier_session_timeout: float = Field(30.0, gt=0, description="Broker session timeout (s).")
    notifier_heartbeat_interval: float = Field(3.0, gt=0, description="Heartbeat interval (s).")
    notifier_rebalance_timeout: float = Field(60.0, gt=0, description="Rebalance timeout (s).")
    notifier_request_timeout: float = Field(90.0, gt=0, description="Broker request timeout (s).")
    notifier_redis_retry_max: float = Field(
        5.0, gt=0, description="Longest backoff (s) between retries of a failed Redis call."
    )
    notifier_data_dir: Path = Field(
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
        0.2, gt=0, description="Seconds between polls of the due-deliveries set when idle."
    )
    webhook_concurrency: int = Field(16, ge=1, description="Deliveries sent concurrently per poll.")
    webhook_retention: float = Field(
        7 * 86_400.0, gt=0, description="Seconds a finished delivery's state is kept (dedupe)."
    )

    @property
    def group_id(self) -> str:
        """The consumer group (Faust app id) of this deployment."""
        return self.notifier_group_id or f"{self.kafka_topic_prefix}engagement-notifier"

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
