"""Settings of the ingest service (environment variables, see .env.example and docs/api.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from engagement.settings import CommonSettings

Compression = Literal["none", "gzip", "snappy", "lz4", "zstd"]


class IngestSettings(CommonSettings):
    """Everything the ingest service needs, built once in its composition root."""

    sources_file: Path = Field(
        Path("config/sources.toml"), description="TOML file of sources and keys."
    )
    rules_file: Path = Field(
        Path("config/rules.toml"), description="Score template (TOML) the read API scores with."
    )
    secret_key_rate_limit: int = Field(
        1200, ge=0, description="Requests per window per read/admin key (0 = no limit)."
    )
    secret_key_rate_window_seconds: float = Field(
        60.0, gt=0, description="Rate-limit window of read/admin keys (seconds)."
    )
    source_request_limit: int = Field(
        60_000,
        ge=0,
        description="Write requests per window per source, all replicas together (0 = no limit); over it: 429 with Retry-After.",
    )
    source_identity_limit: int = Field(
        20_000,
        ge=0,
        description="Distinct identities (userId / anonymousId) a source may write per window (0 = no limit): bounds how fast one client can create candidates.",
    )
    source_limit_window_seconds: float = Field(
        60.0, gt=0, description="Window of the per-source write limits (seconds)."
    )
    ingest_host: str = Field("127.0.0.1", description="Interface the HTTP server binds.")
    ingest_port: int = Field(8080, ge=0, le=65535, description="HTTP port.")
    ingest_public_url: str = Field(
        "",
        description="Public base URL of this service (https://ingest.example.com) that the"
        " analytics.js settings point at; empty = as each request reached it, answered uncacheable.",
    )
    ingest_metrics_token: SecretStr = Field(
        SecretStr(""),
        description="Bearer token /metrics requires; empty = /metrics open to anyone reaching"
        " the port (it names tenants and sources).",
    )
    ingest_metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port of a listener serving only /metrics (then not on INGEST_PORT);"
        " 0 = /metrics on INGEST_PORT.",
    )
    ingest_metrics_host: str = Field(
        "127.0.0.1", description="Interface the /metrics listener binds (INGEST_METRICS_PORT)."
    )
    ingest_workers: int = Field(
        1, ge=1, description="Server processes sharing the port (each has its own producer)."
    )
    ingest_max_event_bytes: int = Field(32 * 1024, ge=256, description="Largest event (JSON).")
    ingest_max_request_bytes: int = Field(
        512 * 1024, ge=1024, description="Largest request body after gzip decompression."
    )
    ingest_max_batch_events: int = Field(1000, ge=1, description="Most events in one batch.")
    ingest_produce_timeout_seconds: float = Field(
        5.0, gt=0, description="Kafka must acknowledge a request's events within this time."
    )
    ingest_retry_after_seconds: int = Field(
        5, ge=1, description="Retry-After sent with 503 answers."
    )
    ingest_startup_retry_seconds: float = Field(
        2.0, gt=0, description="Pause between attempts to reach Kafka at startup."
    )
    ingest_shutdown_timeout_seconds: float = Field(
        10.0, gt=0, description="Longest wait for in-flight records on shutdown."
    )
    kafka_linger_ms: int = Field(5, ge=0, description="Producer linger.ms.")
    kafka_compression_type: Compression = Field("none", description="Producer compression.")
    kafka_max_batch_bytes: int = Field(
        256 * 1024, ge=1024, description="Producer max batch size per partition."
    )
    kafka_request_timeout_ms: int = Field(
        30_000, ge=1000, description="Producer request timeout (a batch expires after it)."
    )

    @property
    def compression(self) -> str | None:
        """The aiokafka ``compression_type`` value."""
        return None if self.kafka_compression_type == "none" else self.kafka_compression_type
