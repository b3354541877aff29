"""Provision Kafka and Redis for a test session: environment, else Docker, else local binaries.

Kafka: ``KAFKA_BOOTSTRAP_SERVERS``, else a Docker container, else Apache Kafka from the cache
``make kafka`` fills (``engagement.tools.kafka_jars``), else Tansu. ``ENGAGEMENT_TEST_BROKER=kafka``
insists on Apache Kafka (fetching it when the cache lacks it), ``=tansu`` on Tansu.
Redis: ``REDIS_URL``, else a Docker container, else a private ``redis-server``;
``ENGAGEMENT_TEST_REDIS=cluster`` starts a Redis Cluster of three masters with one replica each
instead (``engagement.tools.redis_cluster.start_redis_cluster``), and every client the tests and the
services build is then redis-py's cluster client (``engagement.store.connection.connect``).
Nothing is mocked: every test talks to a real Kafka-protocol broker and a real Redis.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import redis

from engagement.store.connection import cluster_enabled
from engagement.tools import kafka_jars, local_kafka, localstack, redis_cluster


@dataclass(frozen=True)
class Services:
    kafka_bootstrap: str
    redis_url: str
    kafka_kind: str  # "env", "testcontainers", "kafka" (Apache Kafka from the cache) or "tansu"


@contextlib.contextmanager
def provision() -> Iterator[Services]:
    """Yield a Kafka bootstrap address and a Redis URL, stopping what was started here."""
    with contextlib.ExitStack() as stack:
        kafka, kind = _kafka(stack)
        redis_url = _redis(stack)
        yield Services(kafka, redis_url, kind)


def broker_kind() -> str:
    """Which Kafka the session gets: "env", "testcontainers", "kafka" or "tansu"."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return "env"
    wanted = os.environ.get("ENGAGEMENT_TEST_BROKER", "")
    if wanted not in {"", "kafka", "tansu"}:
        raise RuntimeError(f"ENGAGEMENT_TEST_BROKER={wanted}: expected kafka or tansu")
    if not wanted and localstack.docker_available():
        return "testcontainers"
    return wanted or ("kafka" if kafka_jars.fetched() else "tansu")


def start_private_broker(port: int | None = None) -> localstack.LocalProcess:
    """A broker of the session's kind for a test that stops and restarts it (Apache Kafka when
    the session runs on it, else Tansu); each start is a fresh, empty broker."""
    if broker_kind() == "kafka":
        return local_kafka.start_kafka(port)
    return localstack.start_tansu(port)


def _kafka(stack: contextlib.ExitStack) -> tuple[str, str]:
    kind = broker_kind()
    if kind == "env":
        return os.environ["KAFKA_BOOTSTRAP_SERVERS"], kind
    if kind == "testcontainers":
        from testcontainers.kafka import KafkaContainer

        container = stack.enter_context(KafkaContainer("apache/kafka:3.8.1").with_kraft())
        return container.get_bootstrap_server(), kind
    try:
        broker = local_kafka.start_kafka() if kind == "kafka" else localstack.start_tansu()
    except localstack.LocalServiceError as exc:
        raise RuntimeError(f"no Kafka ({kind}) for the tests: {exc}") from exc
    stack.callback(broker.stop)
    return broker.address, kind


def sync_client(url: str) -> redis.Redis | redis.RedisCluster:
    """A blocking client of the Redis at ``url``: the cluster client when it is a cluster."""
    if cluster_enabled(url):
        return redis.RedisCluster.from_url(url)
    return redis.Redis.from_url(url)


def redis_kind() -> str:
    """Which Redis the session gets: "single" or "cluster" (ENGAGEMENT_TEST_REDIS)."""
    wanted = os.environ.get("ENGAGEMENT_TEST_REDIS", "single") or "single"
    if wanted not in {"single", "cluster"}:
        raise RuntimeError(f"ENGAGEMENT_TEST_REDIS={wanted}: expected single or cluster")
    return wanted


def _redis(stack: contextlib.ExitStack) -> str:
    if redis_kind() == "cluster":
        try:
            cluster = redis_cluster.start_redis_cluster()
        except localstack.LocalServiceError as exc:
            raise RuntimeError(f"no Redis Cluster for the tests: {exc}") from exc
        stack.callback(cluster.stop)
        return cluster.url
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
    try:  # a private one on a free port: a Redis at 6379 may be another session's, gone mid-run
        started = localstack.start_redis()
    except localstack.LocalServiceError as exc:
        raise RuntimeError(f"no Redis for the tests: {exc}") from exc
    stack.callback(started.stop)
    return started.address
