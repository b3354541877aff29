"""The pydantic-free check of plain events answers exactly as the SegmentEvent model does."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.ingest.envelope import SegmentEvent
from services.ingest.plain_envelope import (
    OBJECT_FIELDS,
    TEXT_LIMITS,
    TIME_FIELDS,
    plain_fields,
    plain_time,
)


def model_answer(raw: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return SegmentEvent.model_validate(raw).model_dump(exclude_none=True)
    except ValidationError:
        return None


TEXTS = st.one_of(
    st.none(),
    st.just(""),
    st.just("  "),
    st.text(max_size=12),
    st.text(min_size=199, max_size=202),
    st.text(alphabet=" ", min_size=498, max_size=502),
    st.integers(),
)
TIMES = st.one_of(
    st.none(),
    st.from_regex(
        r"\A(19[0-9]{2}|20[0-9]{2}|8999|9000|0000)-[01][0-9]-[0-3][0-9]"
        r"[T ][0-2][0-9]:[0-6][0-9]:[0-6][0-9](\.[0-9]{1,7})?(Z|z|[+-][0-2][0-9]:[0-6][0-9])?\Z"
    ),
    st.integers(0, 2**33),
    st.just("2026-11-25"),
)
OBJECTS = st.one_of(
    st.none(), st.dictionaries(st.text(max_size=4), st.none() | st.text(max_size=4))
)
EVENTS = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["track", "page", "identify", "alias", "screen", "group", "nope"])
        | st.sampled_from([None, {}, [], 1])
    },
    optional={
        **{name: TEXTS for name in TEXT_LIMITS},
        **{name: TIMES for name in TIME_FIELDS},
        **{name: OBJECTS for name in OBJECT_FIELDS},
        "extra": st.none() | st.text(max_size=3),
        "listed": st.lists(st.integers(), max_size=2),
    },
)


PLAIN_TIMES = st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat())
MOSTLY_PLAIN = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["track", "page", "identify", "alias", "screen", "group"]),
        "userId": st.text(max_size=5),
        "event": st.text(max_size=5),
    },
    optional={
        "anonymousId": st.text(max_size=5),
        "previousId": st.text(max_size=5),
        "groupId": st.text(max_size=5),
        "messageId": st.text(max_size=5),
        **{name: PLAIN_TIMES for name in TIME_FIELDS},
        **{name: OBJECTS for name in OBJECT_FIELDS},
        "extra": st.none() | st.text(max_size=3),
    },
)


@given(raw=EVENTS | MOSTLY_PLAIN)
def test_plain_fields_are_exactly_the_models_dump_or_defer_to_it(raw):
    # given any event, plain or not; when checked without pydantic
    fields = plain_fields(raw)
    # then it either defers, or answers the model's dump, field order included
    if fields is not None:
        assert list(fields.items()) == list((model_answer(raw) or {}).items())


def test_a_typical_browser_event_takes_the_plain_path():
    raw = {
        "type": "track",
        "event": "Job Viewed",
        "anonymousId": "a-1",
        "timestamp": "2026-11-25T18:14:41.997007+00:00",
        "sentAt": "2026-11-25T18:14:42Z",
        "properties": {"jobId": "J-1"},
        "context": None,
    }
    assert plain_fields(raw) == model_answer(raw)


def test_times_outside_1970_to_9000_are_left_to_the_model():
    assert plain_time("1969-12-31T23:59:59Z") is None
    assert plain_time("9000-01-01T00:00:00Z") is None


def test_text_limits_and_field_order_match_the_model():
    declared = list(SegmentEvent.model_fields)
    assert declared == ["type", *TEXT_LIMITS, *TIME_FIELDS, *OBJECT_FIELDS]
    for name, limit in TEXT_LIMITS.items():
        metadata = SegmentEvent.model_fields[name].metadata
        assert [m.max_length for m in metadata if hasattr(m, "max_length")] == [limit]
