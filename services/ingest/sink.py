"""The Kafka side of ingest: connect (with retries), produce and wait for every acknowledgement."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from engagement.kafka.admin import ensure_topics, producer_idempotence
from engagement.kafka.partitioning import partition_of
from services.ingest.settings import IngestSettings

log = logging.getLogger(__name__)


class NotAcknowledged(Exception):
    """Kafka did not acknowledge every record in time (or the producer is not connected)."""


class OutRecord(NamedTuple):
    """One record to produce (a named tuple: built once per event, so it must be cheap);
    ``value=None`` is a tombstone."""

    topic: str
    key: bytes
    value: bytes | None
    headers: list[tuple[str, bytes]]


class KafkaSink:
    """Owns the producer; ``publish`` returns only once every record is acknowledged."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.producer: AIOKafkaProducer | None = None
        self.degraded = False

    @property
    def started(self) -> bool:
        """Whether the producer has connected at least once."""
        return self.producer is not None

    async def connect_forever(self) -> None:
        """Create the topics and start the producer, retrying until it works."""
        while self.producer is None:
            try:
                await self._connect()
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("Kafka not reachable yet (%r); retrying", exc)
                await asyncio.sleep(self.settings.ingest_startup_retry_seconds)

    async def _connect(self) -> None:
        s = self.settings
        await ensure_topics(
            s.kafka_bootstrap_servers,
            s.topics,
            partitions=s.kafka_topic_partitions,
            replication_factor=s.kafka_replication_factor,
        )
        idempotent = await producer_idempotence(
            s.kafka_enable_idempotence, s.kafka_bootstrap_servers
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap_servers,
            acks="all",
            enable_idempotence=idempotent,
            linger_ms=s.kafka_linger_ms,
            compression_type=s.compression,
            max_batch_size=s.kafka_max_batch_bytes,
            request_timeout_ms=s.kafka_request_timeout_ms,
            client_id="engagement-ingest",
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self.producer = producer
        log.info("producer connected to %s", s.kafka_bootstrap_servers)

    async def publish(self, records: Sequence[OutRecord]) -> None:
        """Return once Kafka acknowledged every record; raise NotAcknowledged otherwise."""
        if not records:
            return
        if self.producer is None:
            raise NotAcknowledged("producer not connected")
        try:
            await asyncio.wait_for(
                _send_all(self.producer, records), self.settings.ingest_produce_timeout_seconds
            )
        except (TimeoutError, KafkaError) as exc:
            self.degraded = True
            raise NotAcknowledged(repr(exc)) from exc
        self.degraded = False

    async def ready(self) -> bool:
        """Whether the producer is connected; after a failed publish, re-checks the broker."""
        if self.producer is None:
            return False
        if not self.degraded:
            return True
        try:
            ok = await asyncio.wait_for(self.producer.client.force_metadata_update(), 2.0)
        except (TimeoutError, KafkaError, OSError):
            return False
        self.degraded = not ok
        return bool(ok)

    async def close(self) -> None:
        """Flush and stop the producer, waiting at most the shutdown timeout."""
        if self.producer is None:
            return
        try:
            await asyncio.wait_for(
                self.producer.stop(), self.settings.ingest_shutdown_timeout_seconds
            )
        except (TimeoutError, KafkaError) as exc:
            log.warning("producer did not stop cleanly: %r", exc)


async def _send_all(producer: AIOKafkaProducer, records: Sequence[OutRecord]) -> None:
    partitions = {t: sorted(await producer.partitions_for(t)) for t in {r.topic for r in records}}
    futures = [
        await producer.send(
            r.topic,
            value=r.value,
            key=r.key,
            headers=r.headers,
            partition=partition_of(r.key, partitions[r.topic]),
        )
        for r in records
    ]
    await _all_acknowledged(futures)


async def _all_acknowledged(futures: list[asyncio.Future[Any]]) -> None:
    """Return once every future succeeded; raise the first failure after all have settled.

    Awaited one by one rather than gathered: records complete batch by batch, so most awaits
    find their future done, and a gather's per-future callbacks cost more than the waiting.
    """
    first_error: Exception | None = None
    try:
        for future in futures:
            try:
                await future
            except Exception as exc:  # every failure is retrieved, the first one is reported
                first_error = first_error or exc
    except asyncio.CancelledError:  # timed out: nobody will look at the rest, as with gather
        for future in futures:
            future.cancel()
        raise
    if first_error is not None:
        raise first_error
