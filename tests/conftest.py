"""Session fixtures: a real Kafka-protocol broker and a real Redis, isolated per session."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import HealthCheck, settings

from engagement.kafka.topics import Topics
from engagement.store.connection import RedisClient, connect
from tests.support.services import Services, broker_kind, provision, redis_kind, sync_client

# No timed assertions: hypothesis' default 200 ms deadline per example (and its too-slow health
# check) failed property tests at random on a loaded 2-core machine; examples are still random.
settings.register_profile("engagement", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("engagement")

SESSION_ID = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    with provision() as provisioned:
        yield provisioned


@pytest.fixture(scope="session")
def kafka_bootstrap(services: Services) -> str:
    return services.kafka_bootstrap


@pytest.fixture(scope="session")
def redis_url(services: Services) -> Iterator[str]:
    """The session's Redis; every key of the session (``test:<SESSION_ID>...``) goes at its end,
    also those of services the tests ran (a REDIS_URL server outlives the session)."""
    yield services.redis_url
    client = sync_client(services.redis_url)
    try:  # on a cluster, the scan goes over every master
        for key in client.scan_iter(match=f"test:{SESSION_ID}*", count=1000):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def unique() -> str:
    """A short id unique to this test: use it in topic prefixes, tenants and keys."""
    return f"{SESSION_ID}{uuid.uuid4().hex[:6]}"


@pytest.fixture
def topic_prefix(unique: str) -> str:
    return f"t{unique}."


@pytest.fixture
def topics(topic_prefix: str) -> Topics:
    return Topics(topic_prefix)


@pytest.fixture
def redis_prefix(unique: str) -> str:
    return f"test:{unique}:"


@pytest.fixture
async def redis_client(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisClient]:
    """A client on the session Redis (the cluster client on a cluster); deletes this test's keys
    afterwards."""
    client = connect(redis_url)
    yield client
    async for key in client.scan_iter(match=f"{redis_prefix}*", count=1000):
        await client.delete(key)
    await client.aclose()


def pytest_report_header() -> str:
    return (
        f"kafka: {broker_kind()}, redis: {redis_kind()} (tests/support/services.py: how they are"
        " chosen)"
    )
