"""Create the project's topics when they are missing (idempotent, safe to race)."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from engagement.topics import COMPACTED, Topics

log = logging.getLogger(__name__)

ALL_TOPICS = (
    "engagement.interactions.v1",
    "engagement.interactions.dlq.v1",
    "engagement.scores.changed.v1",
    "engagement.scores.latest.v1",
    "engagement.candidate-alerts.v1",
    "engagement.webhooks.dlq.v1",
)


def topic_configs(base: str) -> dict[str, str]:
    """Return the topic-level configs a contract topic is created with."""
    if base in COMPACTED:
        return {"cleanup.policy": "compact"}
    return {}


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
            NewTopic(topics.name(b), partitions, replication_factor, topic_configs=topic_configs(b))
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
