"""Enqueue score records in aiokafka's producer as one record batch per partition."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from engagement.kafka.partitioning import partition_of
from engagement.kafka.score_records import OutRecord

log = logging.getLogger("engagement.scorer")


async def produce_all(
    producer: AIOKafkaProducer, records: Sequence[OutRecord]
) -> list[asyncio.Future[Any]]:
    """Enqueue ``records`` in order per partition (keys partitioned as ``send`` does).

    Returns once every record is in the producer's queue, not once delivered: the producer's
    ``flush()`` (which Faust awaits before committing offsets) waits for these batches too. The
    futures returned complete once the broker acknowledged each record batch.
    """
    partitions = {t: sorted(await producer.partitions_for(t)) for t in {r.topic for r in records}}
    batches: dict[tuple[str, int], Any] = {}
    delivered: list[asyncio.Future[Any]] = []
    for out in records:
        tp = (out.topic, partition_of(out.key or b"", partitions[out.topic]))
        batch = batches.get(tp) or batches.setdefault(tp, producer.create_batch())
        if batch.append(timestamp=None, key=out.key, value=out.value, headers=out.headers) is None:
            delivered.append(await _submit(producer, batch, tp))  # full: send it, start another
            batch = batches[tp] = producer.create_batch()
            batch.append(timestamp=None, key=out.key, value=out.value, headers=out.headers)
    for tp, batch in batches.items():
        delivered.append(await _submit(producer, batch, tp))
    return delivered


async def produce_and_wait(producer: AIOKafkaProducer, records: Sequence[OutRecord]) -> None:
    """``produce_all``, then wait until the broker acknowledged every record (raises if not)."""
    for delivered in await produce_all(producer, records):
        await delivered


async def _submit(producer: AIOKafkaProducer, batch: Any, tp: tuple[str, int]) -> Any:
    delivered = await producer.send_batch(batch, tp[0], partition=tp[1])
    delivered.add_done_callback(_log_failure)
    return delivered


def _log_failure(delivered: Any) -> None:
    if not delivered.cancelled() and delivered.exception() is not None:
        log.warning(
            "score records not delivered (%r)",
            delivered.exception(),
            extra={"event": "scorer.produce_failed", "error": repr(delivered.exception())},
        )
