"""Settings every service shares: where Kafka and Redis are, and how names are prefixed.

Each service's composition root builds its own ``Settings`` subclass once and passes it down.
"""

from __future__ import annotations

import secrets
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from engagement.kafka.topics import Topics

# One per process, so the hashes of one process's log lines match each other.
_PROCESS_LOG_HASH_KEY = secrets.token_bytes(32)


class CommonSettings(BaseSettings):
    """Connection and naming settings; read from the environment (and ``.env``)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma separated."
    )
    kafka_topic_prefix: str = Field(
        "", description="Prefix for every topic name (shared clusters, test isolation)."
    )
    kafka_topic_partitions: int = Field(
        12, ge=1, description="Partitions for topics created at startup."
    )
    kafka_replication_factor: int = Field(
        1, ge=1, description="Replication factor for topics created at startup."
    )
    kafka_enable_idempotence: Literal["auto", "true", "false"] = Field(
        "auto",
        description="Idempotent producers: auto = on when the broker hands out producer ids "
        "(Apache Kafka does, Tansu does not; asked at startup).",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis connection URL: a single Redis, or any node of a Redis Cluster.",
    )
    redis_cluster: Literal["auto", "true", "false"] = Field(
        "auto",
        description="Redis Cluster mode: auto = asked at startup (INFO cluster); true/false say"
        " without asking (a process that starts before Redis answers then needs no restart).",
    )
    redis_key_prefix: str = Field(
        "eng:", description="Prefix for every Redis key (shared servers, test isolation)."
    )
    log_level: str = Field("INFO", description="Python log level.")
    log_hash_key: SecretStr = Field(
        SecretStr(""),
        description="Key of the hash (HMAC-SHA256) logs name candidate ids by; empty = a random"
        " key per process (hashes then match only within one process).",
    )

    def log_hash_key_bytes(self) -> bytes:
        """The key of ``engagement.model.log_privacy.hashed_id``: LOG_HASH_KEY, else a random one."""
        configured = self.log_hash_key.get_secret_value().encode()
        return configured or _PROCESS_LOG_HASH_KEY

    @property
    def topics(self) -> Topics:
        """The topic names of this deployment."""
        return Topics(self.kafka_topic_prefix)
