"""What the suite reads back: whole topics (to their end offsets), Redis state, consumer lag."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

import redis
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from engagement.store.redis_keys import KeyLayout
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


async def read_all(
    bootstrap: str, topic: str, *, quiet: float = 2.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic``, in offset order per partition: read from the beginning until
    past the end offsets and nothing more came for ``quiet`` seconds. (Tansu 0.6 answers a
    ListOffsets for the latest offset with the last record batch's base offset + 1, so the end
    offsets alone would leave out the rest of the last batch of each partition.)"""
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
        last_news = time.monotonic()
        while True:
            batch = await consumer.getmany(timeout_ms=250)
            for messages in batch.values():
                records.extend(messages)
            if any(batch.values()):
                last_news = time.monotonic()
            elif time.monotonic() - last_news > quiet:
                positions = [await consumer.position(tp) for tp in tps]
                if all(at >= ends[tp] for at, tp in zip(positions, tps, strict=True)):
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


async def _offsets(stack: Stack) -> tuple[int, tuple[tuple[str, int, int | None, int], ...]]:
    offsets = BrokerOffsets(stack.kafka, timeout=10.0)
    prefix, rows, lag = stack.topics.prefix, [], 0
    try:
        for group, topic in (
            (f"{prefix}engagement-scorer", stack.topics.interactions),
            (f"{prefix}engagement-notifier", stack.topics.scores_changed),
            (f"{prefix}engagement-notifier", stack.topics.candidate_alerts),  # its end offsets
        ):
            for part in await offsets.read(group, topic):
                rows.append((topic, part.partition, part.committed, part.high))
                if topic != stack.topics.candidate_alerts:
                    lag += partition_lag(group, topic, part).lag
        return lag, tuple(rows)
    finally:
        await offsets.close()


def offsets(stack: Stack) -> tuple[int, tuple[tuple[str, int, int | None, int], ...]]:
    """The records the scorer and notifier groups have not committed yet (-1 when the broker did
    not answer), and every committed and end offset of their topics and the alerts topic: when
    these stay the same for a while, nothing moves (on Tansu a lag of 0 alone is no proof: its
    end offsets lag behind the last record batch, see ``read_all``)."""
    try:
        return asyncio.run(_offsets(stack))
    except Exception:
        return -1, ()


def quiet_since(stack: Stack, settle: float) -> float | None:
    """When the pipeline went quiet, if it is: both groups committed every record, no webhook
    delivery is pending, and no offset moved for ``settle`` seconds; else None."""
    began, before = time.time(), _quiet(stack)
    if before is None:
        return None
    time.sleep(settle)
    return began if _quiet(stack) == before else None


def _quiet(stack: Stack) -> tuple[Any, ...] | None:
    """Every offset, when nothing is left to consume or deliver; else None."""
    lag, rows = offsets(stack)
    if lag != 0 or pending_deliveries(stack) != 0:
        return None
    return rows


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
