"""Event-time correction for client clocks (Segment / Snowplow ``derived_tstamp``). Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

MAX_FUTURE = timedelta(hours=23)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def as_utc(moment: datetime) -> datetime:
    """Return ``moment`` as an aware UTC datetime (naive values are taken as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def corrected_timestamp(
    *, received_at: datetime, sent_at: datetime | None, original: datetime | None
) -> datetime:
    """Return ``receivedAt - (sentAt - originalTimestamp)``; never later than receivedAt + 23 h.

    With no ``sentAt`` the client's own time is kept; with no ``originalTimestamp``, or a result
    more than 23 h in the future or before 1970 (a broken clock), the answer is ``receivedAt``.
    """
    received = as_utc(received_at)
    if original is None:
        return received
    try:
        event_time = as_utc(original)
        if sent_at is not None:
            event_time = received - (as_utc(sent_at) - event_time)
    except OverflowError:
        return received
    if event_time - received > MAX_FUTURE or event_time < EARLIEST:
        return received
    return event_time


def in_range(moment: datetime) -> datetime:
    """Return ``moment`` in UTC if it lies in [1970, 9000); raise ValueError otherwise."""
    try:
        utc = as_utc(moment)
    except OverflowError:
        raise ValueError("timestamp out of range") from None
    if not EARLIEST <= utc < LATEST:
        raise ValueError("timestamp must be between 1970 and 9000")
    return utc
