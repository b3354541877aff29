"""Create the project's topics when they are missing (idempotent, safe to race), and find out
whether the broker takes idempotent producers."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaClient
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from aiokafka.protocol.transaction import InitProducerIdRequest

from engagement.kafka.topics import COMPACTED, Topics

log = logging.getLogger(__name__)

ALL_TOPICS = (
    "engagement.interactions.v1",
    "engagement.interactions.dlq.v1",
    "engagement.scores.changed.v1",
    "engagement.scores.latest.v1",
    "engagement.candidate-alerts.v1",
    "engagement.model.webhooks.dlq.v1",
    "engagement.scores.dlq.v1",
)


def min_insync_replicas(replication_factor: int) -> int:
    """Replicas that must hold a record before an ``acks=all`` send succeeds: all but one (so one
    broker may be down), at least one."""
    return max(1, replication_factor - 1)


def topic_configs(base: str, *, replication_factor: int = 1) -> dict[str, str]:
    """Return the topic-level configs a contract topic is created with."""
    configs = {"min.insync.replicas": str(min_insync_replicas(replication_factor))}
    if base in COMPACTED:
        configs["cleanup.policy"] = "compact"
    return configs


async def ensure_topics(
    bootstrap_servers: str,
    topics: Topics,
    *,
    partitions: int,
    replication_factor: int,
    bases: tuple[str, ...] = ALL_TOPICS,
    timeout: float = 30.0,
) -> None:
    """Create every missing topic; existing topics are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
    await asyncio.wait_for(admin.start(), timeout)
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                topics.name(b),
                partitions,
                replication_factor,
                topic_configs=topic_configs(b, replication_factor=replication_factor),
            )
            for b in bases
            if topics.name(b) not in existing
        ]
        if missing:
            await _create(admin, missing)
    finally:
        await admin.close()


async def _create(admin: AIOKafkaAdminClient, missing: list[NewTopic]) -> None:
    try:
        await admin.create_topics(missing)
        log.info("created topics %s", [t.name for t in missing])
    except TopicAlreadyExistsError:
        pass
    except KafkaError as exc:  # another process may have created some of them meanwhile
        log.warning("topic creation reported %r; continuing", exc)


async def topic_partitions(admin: AIOKafkaAdminClient, topic: str) -> list[int]:
    """The topic's partitions as the broker has them now, [] when it does not exist. (A consumer's
    own metadata is only as recent as its start, and Apache Kafka sends a starting client no
    topic at all, where Tansu sends every one.)"""
    described = await admin.describe_topics([topic])
    found = [t for t in described if t.get("topic") == topic and t.get("error_code") == 0]
    return sorted(p["partition"] for t in found for p in t.get("partitions", ()))


async def read_partitions(bootstrap_servers: str, topic: str) -> list[int]:
    """``topic_partitions`` through an admin client of its own."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
    await admin.start()
    try:
        return await topic_partitions(admin, topic)
    finally:
        await admin.close()


async def producer_idempotence(setting: str, bootstrap_servers: str) -> bool:
    """Whether producers should be idempotent: ``setting`` "true"/"false", or for "auto" whether
    the broker hands out producer ids (Apache Kafka does; Tansu answers with an error)."""
    if setting != "auto":
        return setting == "true"
    supported = await idempotence_supported(bootstrap_servers)
    log.info("idempotent producers %s: the broker %s producer ids", *_verdict(supported))
    return supported


async def idempotence_supported(bootstrap_servers: str, *, timeout: float = 30.0) -> bool:
    """Whether the broker answers an InitProducerId request (what an idempotent producer sends
    first) with a producer id; retried while its coordinator is still loading."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
    await asyncio.wait_for(client.bootstrap(), timeout)
    try:
        return await asyncio.wait_for(_ask_producer_id(client), timeout)
    finally:
        await client.close()


async def _ask_producer_id(client: AIOKafkaClient) -> bool:
    request = InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60_000)
    while True:
        response = await client.send(client.get_random_node(), request)
        if response.error_code == 0:
            return True
        if not for_code(response.error_code).retriable:
            return False
        await asyncio.sleep(0.2)


def _verdict(supported: bool) -> tuple[str, str]:
    return ("on", "hands out") if supported else ("off", "refuses")
