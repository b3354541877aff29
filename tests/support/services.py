"""Provision Kafka and Redis for a test session: environment, else Docker, else local binaries.

Nothing is mocked: every test talks to a real Kafka-protocol broker and a real Redis.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from engagement import localstack


@dataclass(frozen=True)
class Services:
    kafka_bootstrap: str
    redis_url: str
    kafka_kind: str  # "env", "testcontainers" or "tansu"


@contextlib.contextmanager
def provision() -> Iterator[Services]:
    """Yield a Kafka bootstrap address and a Redis URL, stopping what was started here."""
    with contextlib.ExitStack() as stack:
        kafka, kind = _kafka(stack)
        redis_url = _redis(stack)
        yield Services(kafka, redis_url, kind)


def _kafka(stack: contextlib.ExitStack) -> tuple[str, str]:
    from_env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if from_env:
        return from_env, "env"
    if localstack.docker_available():
        from testcontainers.kafka import KafkaContainer

        container = stack.enter_context(KafkaContainer("apache/kafka:3.8.1").with_kraft())
        return container.get_bootstrap_server(), "testcontainers"
    try:
        broker = localstack.start_tansu()
    except localstack.LocalServiceError as exc:
        raise RuntimeError(f"no Kafka for the tests: {exc}") from exc
    stack.callback(broker.stop)
    return broker.address, "tansu"


def _redis(stack: contextlib.ExitStack) -> str:
    from_env = os.environ.get("REDIS_URL")
    if from_env:
        if not localstack.redis_answers(from_env):
            raise RuntimeError(f"REDIS_URL={from_env} does not answer PING")
        return from_env
    if localstack.docker_available():
        from testcontainers.redis import RedisContainer

        container = stack.enter_context(RedisContainer("redis:7"))
        host, port = container.get_container_host_ip(), container.get_exposed_port(6379)
        return f"redis://{host}:{port}/0"
    default = "redis://127.0.0.1:6379/0"
    try:
        started = localstack.ensure_redis(default)
    except localstack.LocalServiceError as exc:
        raise RuntimeError(f"no Redis for the tests: {exc}") from exc
    if started is None:
        return default
    stack.callback(started.stop)
    return started.address
