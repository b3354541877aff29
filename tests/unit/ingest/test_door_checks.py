"""What the door refuses per event: unsafe ids, ids in the anonymous namespace, deep nesting."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engagement.kafka.bad_rows import dlq_value
from services.ingest.bad_rows import bad_row, bad_row_key
from services.ingest.body import parse_object
from services.ingest.envelope import (
    Accepted,
    Rejected,
    RequestFacts,
    classify,
)
from services.ingest.event_guards import MAX_EVENT_DEPTH, UNSAFE_CHAR
from services.ingest.routes import answer_of
from services.ingest.sources import Source

SOURCE = Source(source_id="site", tenant_id="acme", channel="web", write_key="wk")
FACTS = RequestFacts(source=SOURCE, received_at=datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
ID_FIELDS = ("userId", "anonymousId", "messageId", "groupId", "previousId", "event")


def _event(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "type": "alias",
        "userId": "u1",
        "anonymousId": "a1",
        "previousId": "p1",
        "groupId": "g1",
        "event": "Job Viewed",
        "messageId": "m1",
    }
    return base | fields


def _rejected(raw: object) -> Rejected:
    outcome = classify(raw, 3, facts=FACTS)
    assert isinstance(outcome, Rejected), outcome
    # the rejection can always be answered and dead-lettered
    orjson.dumps(answer_of([outcome]))
    orjson.loads(dlq_value(bad_row(outcome, facts=FACTS)))
    return outcome


@pytest.mark.parametrize("field", ID_FIELDS)
@pytest.mark.parametrize("char", ["\x00", "\x1f", "\n", "\x7f", "\x85", "\x9f"])
def test_an_id_with_a_control_character_is_rejected_naming_the_field(field: str, char: str):
    # given an event whose id holds a C0 or C1 control character
    raw = _event(**{field: f"sep{char}user"})
    # when it is classified, then it is rejected with the field and the character in the reason
    rejected = _rejected(raw)
    assert rejected.failure_type == "schema_violation"
    assert f"{field} contains the control character U+{ord(char):04X}" in rejected.reason


@pytest.mark.parametrize("field", ID_FIELDS)
@pytest.mark.parametrize("text", ["\ud800", "x\udfffy", "\udc00\ud800"])
def test_an_id_with_an_unpaired_surrogate_is_rejected_naming_the_field(field: str, text: str):
    rejected = _rejected(_event(**{field: text}))
    assert f"{field} contains an unpaired surrogate" in rejected.reason


def test_a_channel_with_a_control_character_is_rejected():
    rejected = _rejected(_event(properties={"channel": "web\x1fad"}))
    assert "properties.channel contains the control character U+001F" in rejected.reason


def test_an_unpaired_surrogate_anywhere_else_rejects_the_event_with_its_path():
    rejected = _rejected(_event(properties={"title": ["ok", "bad \udbff"]}))
    assert "properties.title.1 contains an unpaired surrogate (U+DBFF)" in rejected.reason


def test_a_surrogate_pair_and_other_unicode_are_accepted():
    outcome = classify(_event(userId="😀 Zoë\u2028", event="Vu \u00e9"), 0, facts=FACTS)
    assert isinstance(outcome, Accepted)
    assert outcome.value["userId"] == "😀 Zoë\u2028"


def test_a_user_id_in_the_anonymous_namespace_is_rejected():
    # given an identify whose userId names the candidate of anonymousId "x"
    rejected = _rejected({"type": "identify", "userId": "anon:x", "anonymousId": "y"})
    # then it is refused: it would score into, or merge with, someone else's anonymous candidate
    assert "userId must not start with 'anon:'" in rejected.reason


def test_an_alias_from_a_user_id_in_the_anonymous_namespace_is_rejected():
    rejected = _rejected({"type": "alias", "userId": "u1", "previousId": "anon:x"})
    assert "previousId must not start with 'anon:'" in rejected.reason


def test_an_alias_from_the_events_own_anonymous_id_may_start_with_anon():
    raw = {"type": "alias", "userId": "u1", "previousId": "anon:x", "anonymousId": "anon:x"}
    assert isinstance(classify(raw, 0, facts=FACTS), Accepted)


@pytest.mark.parametrize("field", ["userId", "previousId"])
@pytest.mark.parametrize("dots", [".", ".."])
def test_a_user_id_no_url_path_can_name_is_rejected(field: str, dots: str):
    rejected = _rejected({"type": "alias", "userId": "u1", "previousId": "p1", field: dots})
    assert f"{field} must not be {dots!r}" in rejected.reason


def _nested(depth: int) -> object:
    value: object = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def test_an_event_nested_just_within_the_cap_is_accepted():
    # the event object is level 1, its properties level 2
    raw = {"type": "track", "userId": "u", "event": "E", "properties": _nested(MAX_EVENT_DEPTH - 1)}
    assert isinstance(classify(raw, 0, facts=FACTS), Accepted)


@pytest.mark.parametrize("depth", [MAX_EVENT_DEPTH, 254, 255, 1000])
def test_an_event_nested_deeper_than_the_cap_is_rejected(depth: int):
    raw = {"type": "track", "userId": "u", "event": "E", "properties": _nested(depth)}
    rejected = _rejected(raw)
    assert f"nested deeper than {MAX_EVENT_DEPTH} levels" in rejected.reason
    assert rejected.message_id is None


@pytest.mark.parametrize("item", [_nested(300), "lone \udc00", [["\ud800"]]])
def test_a_batch_item_that_is_no_object_is_rejected_with_a_writable_payload(item: object):
    rejected = _rejected(item)
    assert rejected.reason == "schema_violation: an event must be a JSON object"


def test_body_nested_1000_levels_parses_so_that_its_event_alone_is_rejected():
    deep = b'{"type":"track","userId":"u","event":"E","properties":' + b"[" * 1000
    body = b'{"batch":[' + deep + b"]" * 1000 + b'},{"type":"page","userId":"u"}]}'
    batch = parse_object(body)["batch"]
    outcomes = [classify(item, i, facts=FACTS) for i, item in enumerate(batch)]
    assert [type(o) for o in outcomes] == [Rejected, Accepted]


def test_big_numeric_ids_stay_exact():
    # given two ids that differ only past a double's precision, sent as JSON numbers
    body = (
        b'{"batch":[{"type":"track","event":"E","userId":1234567890123456789012345},'
        b'{"type":"track","event":"E","userId":1234567890123456789012346,"messageId":-98765432109876543210}]}'
    )
    # when the body is parsed and classified
    batch = parse_object(body)["batch"]
    first, second = (classify(item, i, facts=FACTS) for i, item in enumerate(batch))
    # then they are two candidates, each id its exact decimal text
    assert isinstance(first, Accepted) and isinstance(second, Accepted)
    assert first.value["userId"] == "1234567890123456789012345"
    assert second.value["userId"] == "1234567890123456789012346"
    assert second.message_id == "-98765432109876543210"


def test_big_numbers_outside_ids_are_read_as_orjson_reads_them():
    body = b'{"type":"track","userId":"u","event":"E","properties":{"n":123456789012345678901234}}'
    assert parse_object(body)["properties"]["n"] == orjson.loads(body)["properties"]["n"]


def test_a_lone_surrogate_escape_parses_so_that_its_event_alone_is_rejected():
    body = b'{"batch":[{"type":"track","event":"E","userId":"sep\\ud800"},{"type":"page","userId":"u"}]}'
    batch = parse_object(body)["batch"]
    outcomes = [classify(item, i, facts=FACTS) for i, item in enumerate(batch)]
    assert [type(o) for o in outcomes] == [Rejected, Accepted]


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": 1e999}',
        b'{"a": -1' + b"0" * 400 + b"}",
        b"-1" + b"0" * 400,
        b"[" * 5000 + b"]" * 5000,
        b"\xff",
    ],
)
def test_what_json_does_not_allow_is_still_invalid_json(body: bytes):
    from services.ingest.errors import ApiError

    with pytest.raises(ApiError) as raised:
        parse_object(body)
    assert (raised.value.status, raised.value.code) == (400, "invalid_json")


ANY_CHAR = st.one_of(
    st.characters(exclude_categories=()),
    st.integers(0xD800, 0xDFFF).map(chr),
    st.sampled_from(["\x1f", "\x85", "\t"]),
)
CLIENT_TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=12), st.sampled_from(["anon:x", ".", "..", "u1", "anon:"])
)


@given(
    user=CLIENT_TEXT, anon=CLIENT_TEXT, previous=CLIENT_TEXT, event=CLIENT_TEXT, channel=CLIENT_TEXT
)
def test_whatever_text_a_client_sends_an_accepted_event_holds_only_plain_ids(
    user, anon, previous, event, channel
):
    # given an alias whose ids, event name and channel are any text a client can send
    raw = {
        "type": "alias",
        "userId": user,
        "anonymousId": anon,
        "previousId": previous,
        "event": event,
        "properties": {"channel": channel},
    }
    # when it is classified
    outcome = classify(raw, 0, facts=FACTS)
    # then it is accepted only with plain ids, and whatever it became can be written to Kafka
    if isinstance(outcome, Accepted):
        value = outcome.value
        texts = [value.get(n) for n in ("userId", "anonymousId", "previousId", "event")]
        assert not any(t and UNSAFE_CHAR.search(t) for t in [*texts, value["channel"]])
        assert not value["userId"].startswith("anon:") and value["userId"] not in {".", ".."}
        orjson.dumps(value)
        outcome.key.encode()
    else:
        assert isinstance(outcome, Rejected)
        orjson.dumps(answer_of([outcome]))
        dlq_value(bad_row(outcome, facts=FACTS))
        bad_row_key(outcome, tenant_id="acme").encode()
