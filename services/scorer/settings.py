"""Scorer settings: read once from the environment by the composition root."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import Field

from engagement.settings import CommonSettings


class ScorerSettings(CommonSettings):
    """Everything the scorer worker needs; every field is an environment variable."""

    rules_file: Path = Field(Path("config/rules.toml"), description="Score template (TOML).")
    scorer_group_id: str = Field(
        "", description="Consumer group id; empty = KAFKA_TOPIC_PREFIX + 'engagement-scorer'."
    )
    scorer_batch_size: int = Field(500, ge=1, description="Max events per batch (take_events n).")
    scorer_batch_within: float = Field(
        0.02, gt=0, description="Max seconds to wait to fill a batch (take_events within)."
    )
    scorer_fetch_max_wait_ms: int = Field(
        100, ge=0, description="Longest wait (ms) of a fetch request for new records."
    )
    scorer_web_port: int = Field(6066, ge=0, description="Port of /metrics, /healthz, /readyz.")
    scorer_web_host: str = Field("0.0.0.0", description="Bind address of the web server.")
    scorer_commit_interval: float = Field(1.0, gt=0, description="Offset commit interval (s).")
    scorer_auto_offset_reset: str = Field(
        "earliest", description="Where a new consumer group starts: earliest | latest."
    )
    scorer_session_timeout: float = Field(30.0, gt=0, description="Broker session timeout (s).")
    scorer_heartbeat_interval: float = Field(3.0, gt=0, description="Heartbeat interval (s).")
    scorer_rebalance_timeout: float = Field(60.0, gt=0, description="Rebalance timeout (s).")
    scorer_request_timeout: float = Field(90.0, gt=0, description="Broker request timeout (s).")
    scorer_redis_retry_max: float = Field(
        5.0, gt=0, description="Longest backoff (s) between retries of a failed Redis batch."
    )
    scorer_ready_after: float = Field(
        60.0, gt=0, description="/healthz fails when events wait and no batch succeeded this long."
    )
    scorer_data_dir: Path = Field(
        Path(tempfile.gettempdir()) / "engagement-scorer",
        description="Faust data directory (no tables are kept; Faust still wants one).",
    )

    @property
    def group_id(self) -> str:
        """The consumer group (Faust app id) of this deployment."""
        return self.scorer_group_id or f"{self.kafka_topic_prefix}engagement-scorer"
