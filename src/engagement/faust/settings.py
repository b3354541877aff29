"""Settings every Faust worker has, each service reading them under its own prefix (SCORER_*, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from engagement.settings import CommonSettings


def worker_env(service: str) -> SettingsConfigDict:
    """Config reading each worker field from ``<SERVICE>_<FIELD>`` (other fields keep their names)."""
    return SettingsConfigDict(
        alias_generator=lambda name: f"{service}_{name}" if _is_worker_field(name) else name
    )


def _is_worker_field(name: str) -> bool:
    return name in WorkerSettings.model_fields and name not in CommonSettings.model_fields


class WorkerSettings(CommonSettings):
    """A Faust worker's knobs; a subclass sets ``service``, ``model_config``, web_port, data_dir."""

    service: ClassVar[str]
    group_id: str = Field(
        "",
        description="Consumer group id; empty = KAFKA_TOPIC_PREFIX + 'engagement-' + the service (scorer, notifier).",
    )
    batch_size: int = Field(500, ge=1, description="Max records per batch (take_events n).")
    batch_within: float = Field(
        0.02, gt=0, description="Max seconds to wait to fill a batch (take_events within)."
    )
    fetch_max_wait_ms: int = Field(
        100, ge=0, description="Longest wait (ms) of a fetch request for new records."
    )
    web_port: int
    web_host: str = Field("0.0.0.0", description="Bind address of the web server.")
    commit_interval: float = Field(1.0, gt=0, description="Offset commit interval (s).")
    auto_offset_reset: str = Field(
        "earliest", description="Where a new consumer group starts: earliest | latest."
    )
    session_timeout: float = Field(30.0, gt=0, description="Broker session timeout (s).")
    heartbeat_interval: float = Field(3.0, gt=0, description="Heartbeat interval (s).")
    rebalance_timeout: float = Field(60.0, gt=0, description="Rebalance timeout (s).")
    request_timeout: float = Field(90.0, gt=0, description="Broker request timeout (s).")
    redis_retry_max: float = Field(
        5.0, gt=0, description="Longest backoff (s) between retries of a failed Redis batch."
    )
    poison_retries: int = Field(
        3,
        ge=0,
        description="Tries of a batch, then of a record, failing for a reason that is no outage, after its first; then the record is quarantined to the DLQ.",
    )
    data_dir: Path

    @property
    def app_id(self) -> str:
        """The consumer group (Faust app id) of this deployment."""
        return self.group_id or f"{self.kafka_topic_prefix}engagement-{self.service}"
