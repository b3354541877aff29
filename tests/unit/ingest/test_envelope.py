"""Classifying raw events: accepted (normalised), rejected (with reasons) or dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import given
from hypothesis import strategies as st

from engagement.model.records import Interaction
from services.ingest.bad_rows import bad_row
from services.ingest.envelope import Accepted, Dropped, Rejected, RequestFacts, classify
from services.ingest.sources import Source

SOURCE = Source(source_id="site", tenant_id="acme", channel="web", write_key="wk")
RECEIVED = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
FACTS = RequestFacts(source=SOURCE, received_at=RECEIVED, client_ip="198.51.100.23")


def _accepted(raw: object, facts: RequestFacts = FACTS) -> Accepted:
    outcome = classify(raw, 0, facts=facts, new_id=lambda: "generated")
    assert isinstance(outcome, Accepted), outcome
    return outcome


def test_valid_track_becomes_an_interaction_with_server_fields():
    outcome = _accepted({"type": "track", "userId": "u1", "event": "Job Viewed", "extra": 1})
    interaction = Interaction.model_validate(outcome.value)
    assert outcome.key == "acme:u1"
    assert (interaction.tenantId, interaction.sourceId, interaction.channel) == (
        "acme",
        "site",
        "web",
    )
    assert interaction.receivedAt == interaction.timestamp == RECEIVED
    assert interaction.messageId == "generated"
    assert outcome.value["extra"] == 1
    assert (outcome.subject, outcome.type) == ("Job Viewed", "track")


def test_anonymous_events_are_keyed_by_anonymous_id():
    assert _accepted({"type": "page", "anonymousId": "a1"}).key == "acme:anon:a1"


def test_numeric_ids_are_taken_as_strings():
    assert _accepted({"type": "identify", "userId": 42}).key == "acme:42"


def test_properties_channel_overrides_the_source_channel():
    outcome = _accepted(
        {"type": "track", "userId": "u", "event": "E", "properties": {"channel": "email"}}
    )
    assert outcome.value["channel"] == "email"


def test_batch_sent_at_and_context_are_applied_to_each_event():
    facts = RequestFacts(
        source=SOURCE,
        received_at=RECEIVED,
        batch_sent_at="2026-05-01T13:00:00Z",
        batch_context={"locale": "de-DE", "page": {"path": "/"}},
    )
    raw = {
        "type": "track",
        "userId": "u",
        "event": "E",
        "timestamp": "2026-05-01T12:59:00Z",
        "context": {"page": {"path": "/jobs"}},
    }
    outcome = _accepted(raw, facts)
    assert outcome.value["context"] == {"locale": "de-DE", "page": {"path": "/jobs"}}
    assert outcome.value["timestamp"] == "2026-05-01T11:59:00.000Z"
    assert outcome.value["originalTimestamp"] == "2026-05-01T12:59:00.000Z"


def test_event_ip_is_truncated_and_server_sdk_address_is_not_recorded():
    with_ip = _accepted({"type": "page", "anonymousId": "a", "context": {"ip": "203.0.113.9"}})
    without_ip = _accepted({"type": "page", "anonymousId": "a"})
    assert with_ip.value["context"]["ip"] == "203.0.113.0"
    assert "ip" not in without_ip.value["context"]


def test_browser_requests_record_the_truncated_client_address():
    facts = RequestFacts(
        source=SOURCE, received_at=RECEIVED, client_ip="2001:db8:1:2::9", from_browser=True
    )
    assert (
        _accepted({"type": "page", "anonymousId": "a"}, facts).value["context"]["ip"]
        == "2001:db8:1::"
    )


def test_direct_flag_records_the_client_address():
    outcome = _accepted({"type": "page", "anonymousId": "a", "context": {"direct": True}})
    assert outcome.value["context"]["ip"] == "198.51.100.0"


def test_forced_type_of_single_event_endpoints_wins():
    facts = RequestFacts(source=SOURCE, received_at=RECEIVED, forced_type="identify")
    assert _accepted({"type": "track", "userId": "u"}, facts).type == "identify"


def test_event_without_any_id_is_rejected_with_its_reason():
    outcome = classify({"type": "track", "event": "E", "messageId": "m"}, 3, facts=FACTS)
    assert isinstance(outcome, Rejected)
    assert (outcome.index, outcome.message_id, outcome.failure_type) == (3, "m", "schema_violation")
    assert "userId or anonymousId is required" in outcome.reason


def test_type_specific_requirements_are_enforced():
    for raw in (
        {"type": "track", "userId": "u"},
        {"type": "alias", "userId": "u"},
        {"type": "group", "userId": "u"},
        {"type": "track", "userId": "u", "event": "E", "timestamp": "yesterday"},
        {"type": "track", "userId": "u", "event": "E", "timestamp": "0001-01-01T00:00:00Z"},
        {"type": "page", "userId": "u", "properties": [1]},
    ):
        assert isinstance(classify(raw, 0, facts=FACTS), Rejected), raw


def test_oversized_event_is_a_size_violation():
    facts = RequestFacts(source=SOURCE, received_at=RECEIVED, max_event_bytes=256)
    raw = {"type": "track", "userId": "u", "event": "E", "properties": {"x": "y" * 300}}
    outcome = classify(raw, 0, facts=facts)
    assert isinstance(outcome, Rejected) and outcome.failure_type == "size_violation"


def test_consent_required_source_drops_events_without_consent():
    strict = Source(source_id="s", tenant_id="t", write_key="k", consent_required=True)
    facts = RequestFacts(source=strict, received_at=RECEIVED)
    assert isinstance(classify({"type": "page", "anonymousId": "a"}, 0, facts=facts), Dropped)


def test_bad_row_carries_failure_payload_and_source_with_ip_truncated():
    raw = {"type": "track", "context": {"ip": "203.0.113.200"}}
    outcome = classify(raw, 1, facts=FACTS)
    assert isinstance(outcome, Rejected)
    row = bad_row(outcome, facts=FACTS)
    assert (row["failureType"], row["sourceId"], row["tenantId"]) == (
        "schema_violation",
        "site",
        "acme",
    )
    assert row["receivedAt"] == "2026-05-01T12:00:00.000Z"
    assert row["payload"]["context"]["ip"] == "203.0.113.0"
    assert row["messages"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=15,
)
FIELDS = st.sampled_from(
    [
        "type",
        "userId",
        "anonymousId",
        "event",
        "timestamp",
        "sentAt",
        "context",
        "properties",
        "messageId",
        "previousId",
        "groupId",
        "name",
    ]
)
TYPES = st.sampled_from(["track", "page", "identify", "alias", "screen", "group"])


@given(raw=st.dictionaries(FIELDS, JSON, max_size=8), kind=TYPES)
def test_any_input_has_exactly_one_outcome_and_accepted_ones_are_valid_interactions(raw, kind):
    outcome = classify({**raw, "type": kind}, 0, facts=FACTS)
    if isinstance(outcome, Accepted):
        interaction = Interaction.model_validate_json(orjson.dumps(outcome.value))
        assert interaction.timestamp <= interaction.receivedAt + timedelta(hours=23)
        assert outcome.key.startswith("acme:")
    else:
        assert isinstance(outcome, Rejected)
        assert orjson.dumps(bad_row(outcome, facts=FACTS))
