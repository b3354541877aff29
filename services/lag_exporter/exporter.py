"""The lag exporter's metrics: read on every scrape, so a series is never older than the scrape."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.lag_exporter.lag import PartitionLag, PartitionOffsets, partition_lag
from services.lag_exporter.settings import WatchedGroup

log = logging.getLogger(__name__)


class OffsetSource(Protocol):
    async def read(self, group: str, topic: str) -> list[PartitionOffsets]: ...


class LagCollector(Collector):
    """``engagement_consumer_group_lag`` and ``_offset`` of the last read (none after a failure,
    so ``absent()`` rules see a lag nobody can measure)."""

    def __init__(self) -> None:
        self.lags: Sequence[PartitionLag] = ()

    def collect(self) -> Iterable[GaugeMetricFamily]:
        labels = ["group", "topic", "partition"]
        lag = GaugeMetricFamily(
            "engagement_consumer_group_lag",
            "Records a consumer group still has to consume, from the broker's committed offsets.",
            labels=labels,
        )
        offset = GaugeMetricFamily(
            "engagement_consumer_group_offset",
            "The group's committed offset (the earliest record's when it never committed).",
            labels=labels,
        )
        for row in self.lags:
            values = [row.group, row.topic, str(row.partition)]
            lag.add_metric(values, row.lag)
            offset.add_metric(values, row.offset)
        yield lag
        yield offset


class LagExporter:
    """Reads every watched group's offsets and renders them as a Prometheus exposition."""

    def __init__(self, source: OffsetSource, groups: Sequence[WatchedGroup]) -> None:
        self.source = source
        self.groups = groups
        self.registry = CollectorRegistry()
        self.collector = LagCollector()
        self.registry.register(self.collector)
        self._reading = asyncio.Lock()  # a scrape and a readiness probe share the clients
        self.errors = Counter(
            "engagement_lag_exporter_errors",
            "Scrapes whose offsets the broker did not give (the lag series are absent then).",
            registry=self.registry,
        )

    async def refresh(self) -> bool:
        """Read every group's lag; on a failure count it, drop the series and return False."""
        async with self._reading:
            return await self._refresh()

    async def _refresh(self) -> bool:
        try:
            lags = [
                partition_lag(watched.group, watched.topic, offsets)
                for watched in self.groups
                for offsets in await self.source.read(watched.group, watched.topic)
            ]
        except Exception as exc:  # the broker is down or the topic missing: say so, keep serving
            log.warning("reading consumer group offsets failed: %r", exc)
            self.errors.inc()
            self.collector.lags = ()
            return False
        self.collector.lags = lags
        return True

    async def exposition(self) -> bytes:
        """The text of /metrics, read now."""
        await self.refresh()
        return generate_latest(self.registry)
