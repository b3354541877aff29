"""Consumer lag from the broker's offsets. Pure: no Kafka here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PartitionOffsets:
    """What the broker says about one partition and one group."""

    partition: int
    low: int  # earliest offset still on the partition
    high: int  # high watermark: the offset the next record gets
    committed: int | None  # the group's committed offset; None when it never committed


@dataclass(frozen=True)
class PartitionLag:
    """One partition's lag in one group."""

    group: str
    topic: str
    partition: int
    offset: int  # where the group goes on from: its commit, else the earliest record
    lag: int


def partition_lag(group: str, topic: str, offsets: PartitionOffsets) -> PartitionLag:
    """Return the records the group still has to consume on the partition, never negative.

    A group that never committed (a consumer that never started) starts from the earliest record
    (the workers' ``auto_offset_reset`` default), so everything on the partition is its lag; a
    commit older than the earliest record (retention deleted the rest) counts from that record.
    """
    offset = offsets.low if offsets.committed is None else max(offsets.committed, offsets.low)
    return PartitionLag(group, topic, offsets.partition, offset, max(0, offsets.high - offset))
