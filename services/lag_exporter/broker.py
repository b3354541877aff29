"""Reads a consumer group's committed offsets and its topic's watermarks from the broker."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from engagement.kafka.admin import topic_partitions
from services.lag_exporter.lag import PartitionOffsets


class BrokerOffsets:
    """One admin client (committed offsets) and one group-less consumer (watermarks), opened
    on first use and again after a failure; nothing connects at construction."""

    def __init__(self, bootstrap_servers: str, *, timeout: float) -> None:
        self._bootstrap = bootstrap_servers
        self._timeout = timeout
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def read(self, group: str, topic: str) -> list[PartitionOffsets]:
        """Return every partition's offsets of ``topic`` for ``group``; raises when the broker
        does not answer within the timeout (and reconnects on the next call)."""
        try:
            return await asyncio.wait_for(self._read(group, topic), self._timeout)
        except BaseException:
            await self.close()
            raise

    async def _read(self, group: str, topic: str) -> list[PartitionOffsets]:
        admin, consumer = await self._clients()
        partitions = await topic_partitions(admin, topic)  # asked each time: new ones are seen
        if not partitions:
            raise LookupError(f"topic {topic} not found")
        tps = [TopicPartition(topic, p) for p in partitions]
        low = await consumer.beginning_offsets(tps)
        high = await consumer.end_offsets(tps)
        committed = await admin.list_consumer_group_offsets(group, partitions=tps)
        return [
            PartitionOffsets(tp.partition, low[tp], high[tp], _committed(committed.get(tp)))
            for tp in tps
        ]

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
            consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
            self._admin, self._consumer = admin, consumer
            await admin.start()
            await consumer.start()
        return self._admin, self._consumer

    async def close(self) -> None:
        """Close both clients (the next read opens them again)."""
        admin, consumer = self._admin, self._consumer
        self._admin = self._consumer = None
        with contextlib.suppress(Exception):  # a client that never connected
            if consumer is not None:
                await consumer.stop()
        with contextlib.suppress(Exception):
            if admin is not None:
                await admin.close()


def _committed(entry: object) -> int | None:
    offset = getattr(entry, "offset", -1)
    return offset if isinstance(offset, int) and offset >= 0 else None
