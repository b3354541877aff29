"""The lag arithmetic of the lag exporter: records a group still has to consume."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.lag_exporter.lag import PartitionOffsets, partition_lag

offsets = st.integers(min_value=0, max_value=10**12)


def _lag(low: int, high: int, committed: int | None) -> int:
    return partition_lag("g", "t", PartitionOffsets(0, low, high, committed)).lag


def test_a_group_that_never_committed_has_every_record_on_the_partition_to_consume():
    assert _lag(low=40, high=100, committed=None) == 60


def test_a_committed_group_has_the_records_past_its_commit_to_consume():
    assert _lag(low=0, high=100, committed=75) == 25


def test_a_commit_older_than_the_earliest_record_counts_from_that_record():
    # retention deleted what the group had not read: it resumes at the earliest record
    assert _lag(low=50, high=100, committed=10) == 50


@given(low=offsets, extra=offsets, committed=st.none() | offsets)
def test_lag_is_never_negative_nor_more_than_the_partition_holds(low, extra, committed):
    high = low + extra
    assert 0 <= _lag(low, high, committed) <= high - low


@given(low=offsets, extra=offsets, first=offsets, step=offsets)
def test_a_later_commit_never_raises_the_lag(low, extra, first, step):
    high = low + extra
    assert _lag(low, high, first + step) <= _lag(low, high, first)


def test_the_row_carries_the_group_topic_partition_and_resume_offset():
    row = partition_lag(
        "engagement-scorer", "engagement.interactions.v1", PartitionOffsets(3, 5, 9, None)
    )
    assert (row.group, row.topic, row.partition, row.offset, row.lag) == (
        "engagement-scorer",
        "engagement.interactions.v1",
        3,
        5,
        4,
    )
