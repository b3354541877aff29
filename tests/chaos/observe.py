"""What the suite reads back: whole topics (to their end offsets), Redis state, consumer lag."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

import redis
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from engagement.redis_keys import KeyLayout
from services.lag_exporter.broker import BrokerOffsets
from services.lag_exporter.lag import partition_lag
from tests.chaos.stack import TENANT, Stack


@dataclass(frozen=True)
class Profile:
    """A candidate's stored state: reference time, raw at it, sequence, tier number (1-based)."""

    t: float
    raw: float
    sequence: int
    tier_number: int


async def read_all(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` up to the end offsets read at the start, in offset order per
    partition."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            raise AssertionError(f"topic {topic} does not exist")
        ends = await consumer.end_offsets(tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[ConsumerRecord[bytes, bytes]] = []
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=500)
            for tp, messages in batch.items():
                records.extend(m for m in messages if m.offset < ends[tp])
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        return records
    finally:
        await consumer.stop()


def read_topic_values(bootstrap: str, topic: str) -> list[tuple[int, int, bytes, Any]]:
    """(partition, offset, key, value as JSON or None for a tombstone) of every record."""
    records = asyncio.run(read_all(bootstrap, topic))
    return [
        (r.partition, r.offset, r.key or b"", None if r.value is None else json.loads(r.value))
        for r in records
    ]


async def _lag(stack: Stack) -> dict[str, int]:
    offsets = BrokerOffsets(stack.kafka, timeout=10.0)
    prefix = stack.topics.prefix
    try:
        lag = {}
        for group, topic in (
            (f"{prefix}engagement-scorer", stack.topics.interactions),
            (f"{prefix}engagement-notifier", stack.topics.scores_changed),
        ):
            parts = await offsets.read(group, topic)
            lag[group.removeprefix(prefix)] = sum(partition_lag(group, topic, p).lag for p in parts)
        return lag
    finally:
        await offsets.close()


def consumer_lag(stack: Stack) -> dict[str, int]:
    """Records each group (scorer, notifier) has not committed yet; -1 when the broker failed."""
    try:
        return asyncio.run(_lag(stack))
    except Exception:
        return {"engagement-scorer": -1, "engagement-notifier": -1}


def profiles(stack: Stack, candidates: list[str]) -> dict[str, Profile | None]:
    """Each candidate's stored profile (None when there is none)."""
    keys = KeyLayout(stack.redis_prefix)
    client = redis.Redis.from_url(stack.redis.url)
    try:
        pipe = client.pipeline(transaction=False)
        for cand in candidates:
            pipe.hmget(keys.candidate(TENANT, cand).profile, "t", "r", "s", "g")
        rows = pipe.execute()
    finally:
        client.close()
    return {
        cand: None
        if row[0] is None
        else Profile(float(row[0]), float(row[1]), int(row[2]), int(row[3]))
        for cand, row in zip(candidates, rows, strict=True)
    }


def watermark(stack: Stack) -> float | None:
    """The notifier's decay sweep watermark of the tenant (epoch s)."""
    client = redis.Redis.from_url(stack.redis.url)
    try:
        value = client.hget(KeyLayout(stack.redis_prefix).notifier_sweep("watermark"), TENANT)
    finally:
        client.close()
    return None if value is None else float(value)


def notified(stack: Stack, candidate: str) -> dict[str, str]:
    """The notifier's stored state of one candidate (tier, level, seq), for reports."""
    client = redis.Redis.from_url(stack.redis.url)
    try:
        raw = client.hgetall(KeyLayout(stack.redis_prefix).notified(f"{TENANT}:{candidate}"))
    finally:
        client.close()
    return {k.decode(): v.decode() for k, v in raw.items()}


def deliveries(stack: Stack) -> list[dict[str, Any]]:
    """Every request the receiver logged so far."""
    with contextlib.suppress(FileNotFoundError):
        lines = stack.receiver_log.read_bytes().splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    return []


def pending_deliveries(stack: Stack) -> int:
    """Webhook deliveries the notifier has not finished (its due set)."""
    client = redis.Redis.from_url(stack.redis.url)
    try:
        return int(client.zcard(KeyLayout(stack.redis_prefix).webhooks + "due"))
    finally:
        client.close()


async def _end_offsets(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


def records_on(bootstrap: str, topic: str) -> int:
    """How many records ``topic`` holds (its end offsets summed)."""
    return asyncio.run(_end_offsets(bootstrap, topic))
