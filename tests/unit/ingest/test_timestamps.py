"""Event-time correction: receivedAt - (sentAt - originalTimestamp), clamped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.ingest.timestamps import corrected_timestamp

RECEIVED = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_client_clock_skew_is_removed():
    # given a client whose clock is 1 h ahead, sending 3 s after the event
    original = RECEIVED + timedelta(hours=1) - timedelta(seconds=3)
    sent = RECEIVED + timedelta(hours=1)
    # then the event happened 3 s before the server received it
    when = corrected_timestamp(received_at=RECEIVED, sent_at=sent, original=original)
    assert when == RECEIVED - timedelta(seconds=3)


def test_missing_event_time_is_received_at():
    assert corrected_timestamp(received_at=RECEIVED, sent_at=None, original=None) == RECEIVED


def test_without_sent_at_the_client_time_is_kept():
    original = RECEIVED - timedelta(days=30)
    assert corrected_timestamp(received_at=RECEIVED, sent_at=None, original=original) == original


def test_more_than_23_hours_in_the_future_becomes_received_at():
    original = RECEIVED + timedelta(hours=23, seconds=1)
    assert corrected_timestamp(received_at=RECEIVED, sent_at=None, original=original) == RECEIVED


def test_naive_times_are_taken_as_utc():
    naive = datetime(2026, 5, 1, 11, 0)
    assert corrected_timestamp(received_at=RECEIVED, sent_at=None, original=naive) == naive.replace(
        tzinfo=UTC
    )


def test_absurd_skew_falls_back_to_received_at():
    sent = datetime(8999, 1, 1, tzinfo=UTC)
    original = datetime(1970, 1, 2, tzinfo=UTC)
    assert corrected_timestamp(received_at=RECEIVED, sent_at=sent, original=original) == RECEIVED


times = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(sent=times, original=times)
def test_corrected_time_is_never_later_than_received_plus_23_hours(sent, original):
    when = corrected_timestamp(received_at=RECEIVED, sent_at=sent, original=original)
    assert when <= RECEIVED + timedelta(hours=23)
    assert when.tzinfo is not None


@given(original=times)
def test_sent_at_equal_to_received_at_keeps_the_client_time_up_to_the_clamp(original):
    when = corrected_timestamp(received_at=RECEIVED, sent_at=RECEIVED, original=original)
    assert when == (original if original - RECEIVED <= timedelta(hours=23) else RECEIVED)
