"""Fixtures for the ingest service: its settings, a sources file and the running server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from tests.support.server import serve

WRITE_KEY = "wk_site"
SERVER_KEY = "wk_server"
CONSENT_KEY = "wk_consent"
READ_KEY = "rk_test"
ADMIN_KEY = "ak_test"
ORIGIN = "https://careers.acme.example"

SOURCES = f"""
[[sources]]
source_id = "site"
tenant_id = "TENANT"
channel = "web"
write_key = "{WRITE_KEY}"
allowed_origins = ["{ORIGIN}"]

[[sources]]
source_id = "backend"
tenant_id = "TENANT"
channel = "ats"
write_key = "{SERVER_KEY}"

[[sources]]
source_id = "consent-site"
tenant_id = "TENANT"
channel = "web"
write_key = "{CONSENT_KEY}"
allowed_origins = ["{ORIGIN}"]
consent_required = true

[[read_keys]]
key = "{READ_KEY}"
tenant_id = "TENANT"

[[admin_keys]]
key = "{ADMIN_KEY}"
tenant_id = "TENANT"
"""


@pytest.fixture
def tenant(unique: str) -> str:
    return f"acme{unique}"


@pytest.fixture
def sources_file(tmp_path: Path, tenant: str) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(SOURCES.replace("TENANT", tenant))
    return path


def ingest_settings(**overrides: object) -> IngestSettings:
    """IngestSettings for a test: small topics, short timeouts, overridable."""
    defaults: dict[str, object] = {
        "kafka_topic_partitions": 3,
        "ingest_produce_timeout_seconds": 5.0,
        "ingest_startup_retry_seconds": 0.5,
        "ingest_shutdown_timeout_seconds": 3.0,
    }
    return IngestSettings(**{**defaults, **overrides})  # type: ignore[arg-type]


def outage_settings(broker: str, **overrides: object) -> IngestSettings:
    """IngestSettings on a private broker a test stops: Kafka gives up fast, Retry-After is 7."""
    return ingest_settings(
        kafka_bootstrap_servers=broker,
        ingest_produce_timeout_seconds=1.0,
        ingest_retry_after_seconds=7,
        kafka_request_timeout_ms=2000,
        **overrides,
    )


@pytest.fixture
def settings(
    kafka_bootstrap, redis_url, topic_prefix, redis_prefix, sources_file
) -> IngestSettings:
    return ingest_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=topic_prefix,
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
        sources_file=sources_file,
    )


@pytest.fixture
def ingest_url(settings: IngestSettings) -> Iterator[str]:
    with serve(create_app(settings), ready_path="/readyz") as url:
        yield url


@pytest.fixture
async def client(ingest_url: str):
    async with httpx.AsyncClient(base_url=ingest_url, timeout=30) as http:
        yield http


def basic(key: str) -> dict[str, str]:
    """The Authorization header carrying a write key as the Basic username."""
    return {"Authorization": httpx.BasicAuth(key, "")._auth_header}
