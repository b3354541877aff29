"""Which partition a record key goes to: the default partitioner of aiokafka and the Java client.

Services that choose partitions themselves (to batch records per partition) call this, so every
producer of a topic puts a key in the same partition — a compacted topic keeps one value per key.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from aiokafka.partitioner import murmur2


def partition_of(key: bytes, partitions: Sequence[int]) -> int:
    """Return the partition the default partitioner picks for ``key`` among sorted ``partitions``;
    the hash is memoised because a candidate's key recurs across many records."""
    return partitions[_key_hash(key) % len(partitions)]


@lru_cache(maxsize=65_536)
def _key_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF
