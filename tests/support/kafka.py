"""Read what services wrote to Kafka, straight from the broker (no consumer group), and write
interactions as ingest does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from engagement.kafka.topics import identity_key


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    count: int | None = None,
    timeout: float = 20.0,
    until: Callable[[list[ConsumerRecord]], bool] | None = None,
) -> list[ConsumerRecord]:
    """Read a topic from the beginning until ``count`` records (or ``until`` holds) or timeout.

    With neither ``count`` nor ``until`` it reads for ``timeout`` seconds and returns everything.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic, timeout)
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        return await _collect(consumer, count, until, timeout)
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str, timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await consumer._client.force_metadata_update()  # topic may have just been created
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return set(partitions)
        await asyncio.sleep(0.2)
    raise AssertionError(f"topic {topic} does not exist after {timeout}s")


async def _collect(consumer, count, until, timeout) -> list[ConsumerRecord]:
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = await consumer.getmany(timeout_ms=200)
        for messages in batch.values():
            records.extend(messages)
        if count is not None and len(records) >= count:
            break
        if until is not None and until(records):
            break
    return records


async def produce_interactions(kafka: str, topic: str, values: list[dict[str, Any]]) -> None:
    """Send interactions (their JSON) as ingest does, keyed ``tenant:identity``, ``acks=all``."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
    await producer.start()
    try:
        for value in values:
            key = identity_key(value["tenantId"], value.get("userId"), value.get("anonymousId"))
            await producer.send_and_wait(topic, key=key.encode(), value=orjson.dumps(value))
    finally:
        await producer.stop()
