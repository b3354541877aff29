"""Records go to the partition aiokafka's default partitioner would pick for their key."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from engagement.kafka.partitioning import partition_of


@given(key=st.binary(min_size=1, max_size=80), count=st.integers(1, 64))
def test_partition_of_a_key_matches_the_default_partitioner(key, count):
    partitions = list(range(count))
    assert partition_of(key, partitions) == DefaultPartitioner()(key, partitions, partitions)
