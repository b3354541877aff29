"""Raw interaction records to Interactions or DLQ bad rows (services.scorer.parsing)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from engagement.kafka.bad_rows import DLQ_VALUE_MAX_BYTES
from engagement.kafka.erasure_records import erasure_requests
from engagement.model.records import ErasureRequest, Interaction
from engagement.model.score_views import Erasure
from engagement.store.erasure_fence import fence_id
from services.scorer.handler import ParsedBatch
from services.scorer.parsing import BadRow, RawRecord, bad_row_value, parse

VALID = {
    "type": "track",
    "messageId": "m1",
    "tenantId": "acme",
    "sourceId": "site",
    "channel": "web",
    "receivedAt": "2026-11-25T20:28:36.341882+00:00",
    "timestamp": "2026-11-25T20:28:36.341Z",
    "userId": "u1",
    "event": "Job Viewed",
    "properties": {"jobId": 18446744073709551615},
    "extra": [1, 2.5],
}


def raw(value: bytes | None, key: bytes | None = b"keyed:u1") -> RawRecord:
    return RawRecord(key, value, "engagement.interactions.v1", 2, 41)


def bad(value: bytes | None, key: bytes | None = b"keyed:u1") -> BadRow:
    parsed = parse(raw(value, key))
    assert isinstance(parsed, BadRow), parsed
    return parsed


def test_a_valid_record_becomes_its_interaction_with_unknown_fields_kept():
    interaction = parse(raw(orjson.dumps(VALID)))

    assert isinstance(interaction, Interaction)
    assert interaction.timestamp == datetime(2026, 11, 25, 20, 28, 36, 341000, tzinfo=UTC)
    assert interaction.properties == {"jobId": 18446744073709551615}
    assert interaction.model_extra == {"extra": [1, 2.5]}


@pytest.mark.parametrize(
    "value",
    [
        b"",
        None,
        b"{",
        b'{"a":1} x',
        # valid for some JSON parsers (pydantic's), not for orjson: still decode errors
        orjson.dumps(VALID)[:-1] + b',"n":NaN}',
        orjson.dumps(VALID)[:-1] + b',"n":-Infinity}',
        orjson.dumps(VALID)[:-1] + b',"n":1e400}',
    ],
)
def test_a_value_that_is_not_json_is_a_decode_error_with_the_tenant_of_its_key(value):
    row = bad(value)

    assert (row.failure_type, row.tenant_id) == ("decode_error", "keyed")
    assert len(row.messages) == 1


def test_an_empty_value_says_so():
    assert bad(b"").messages == ("empty value",)


@pytest.mark.parametrize("value", [b"[]", b"1", b'"x"', b"null"])
def test_json_that_is_not_an_object_is_a_schema_violation(value):
    row = bad(value)

    assert (row.failure_type, row.messages, row.tenant_id) == (
        "schema_violation",
        ("value is not a JSON object",),
        "keyed",
    )


def test_validation_errors_name_each_field_and_take_the_tenant_from_the_value():
    value = {**VALID, "type": "click", "timestamp": "yesterday"}
    del value["messageId"]

    row = bad(orjson.dumps(value))

    assert (row.failure_type, row.tenant_id) == ("schema_violation", "acme")
    assert [m.split(":")[0] for m in row.messages] == ["type", "messageId", "timestamp"]
    assert row.messages[1] == "messageId: Field required"


def test_a_tenant_id_that_is_not_text_falls_back_to_the_key():
    row = bad(orjson.dumps({**VALID, "tenantId": 7}), key=b"fromkey:u1")

    assert row.tenant_id == "fromkey"


def test_an_interaction_without_user_or_anonymous_id_is_a_schema_violation():
    row = bad(orjson.dumps({**VALID, "userId": None}), key=None)

    assert (row.failure_type, row.messages, row.tenant_id) == (
        "schema_violation",
        ("needs userId or anonymousId",),
        "acme",
    )


def _request_value(**overrides: object) -> bytes:
    value = {
        "type": "erasure",
        "tenantId": "acme",
        "candidateId": "u1",
        "sequence": 7,
        "requestedAt": "2026-12-02T04:00:00.000Z",
    }
    return orjson.dumps(value | overrides)


def test_an_erasure_request_written_by_ingest_parses_as_one():
    # given the request ingest writes for DELETE /v1/candidates/u1
    erasure = Erasure("acme", "u1", True, 4, 6, ("anon:a1",))
    now = datetime(2026, 12, 2, 4, tzinfo=UTC)
    [mine, merged] = erasure_requests(
        erasure, interactions_topic="t", sequence=7, now=now, source="/engagement/ingest"
    )
    # when the scorer parses them
    parsed = [parse(raw(r.value, r.key)) for r in (mine, merged)]
    # then they are requests for each id, in each id's partition (keyed as its events)
    assert [(p.candidateId, p.sequence) for p in parsed] == [("u1", 7), ("anon:a1", 1)]  # type: ignore[union-attr]
    assert [r.key for r in (mine, merged)] == [b"acme:u1", b"acme:anon:a1"]
    assert all(isinstance(p, ErasureRequest) and p.requestedAt == now for p in parsed)


def test_an_erasure_request_missing_fields_is_a_schema_violation():
    row = bad(_request_value(candidateId=None, sequence=0), key=b"acme:u1")
    assert row.failure_type == "schema_violation"
    assert {m.split(":")[0] for m in row.messages} == {"candidateId", "sequence"}


def test_segments_end_at_each_erasure_request_and_bad_rows_are_kept_aside():
    # given a batch: two events, a bad row, an erasure request, an event, a request
    event = orjson.dumps(VALID)
    records = [
        raw(event),
        raw(event.replace(b'"m1"', b'"m2"')),
        raw(b"not json"),
        raw(_request_value(), key=b"acme:u1"),
        raw(event.replace(b'"m1"', b'"m3"')),
        raw(_request_value(sequence=8), key=b"acme:u1"),
    ]
    batch = ParsedBatch(records)
    # when the segments are taken one after the other, one of them twice (a retried attempt)
    first = batch.segment()
    assert [i.messageId for i in first] == ["m1", "m2"]
    assert [i.messageId for i in first] == ["m1", "m2"]
    second = batch.segment()
    third = batch.segment()
    seen = [[i.messageId for i in second], [i.messageId for i in third]]
    # then each ends at its request, the last one with the batch, and the bad row is aside
    assert seen == [["m3"], []]
    assert (first.request.sequence, second.request.sequence, third.request) == (7, 8, None)  # type: ignore[union-attr]
    assert [row.failure_type for row in batch.bad] == ["decode_error"]


def test_an_erasure_request_outside_its_ids_partition_is_a_schema_violation():
    # given a request keyed for another candidate (it would not be behind u1's events)
    row = bad(_request_value(), key=b"acme:u2")
    # then it is dead-lettered, not obeyed
    assert (row.failure_type, row.tenant_id) == ("schema_violation", "acme")
    assert "keyed tenantId:candidateId" in row.messages[0]


def _event(message_id: str, **fields: object) -> RawRecord:
    value = {k: v for k, v in (VALID | {"messageId": message_id} | fields).items() if v is not None}
    return raw(orjson.dumps(value))


def test_events_of_a_fenced_id_received_before_its_erasure_are_withheld():
    # given u1 erased at DELETED (fenced) with a1, which was merged into it; u2 is not erased
    deleted = datetime.fromisoformat(str(VALID["receivedAt"])).timestamp()
    fences = {fence_id("acme", "u1"): deleted, fence_id("acme", "anon:a1"): deleted}
    later = {"receivedAt": "2026-11-25T20:28:37.000Z"}  # accepted after the DELETE
    identify = {"type": "identify", "event": None, "userId": "u2", "anonymousId": "a1"}
    records = [
        _event("m1"),
        _event("m2", userId="u2"),
        _event("m3", userId=None, anonymousId="a1"),  # the merged anonymous id's event
        _event("m4", **identify),  # would fold the erased a1 into u2
        raw(_request_value(), key=b"acme:u1"),
        _event("m5", **later),
        _event("m6", **(identify | later)),  # a1 identified again after the DELETE
        _event("m7"),  # received before the DELETE, replayed behind the request: still withheld
    ]
    batch = ParsedBatch(records, fences)
    # when the scorer takes the segments
    first = [i.messageId for i in batch.segment()]
    second = [i.messageId for i in batch.segment()]
    # then what u1 and a1 sent before the DELETE is withheld, what they sent after it is scored
    assert (first, second) == (["m2"], ["m5", "m6"])
    assert [i.messageId for i in batch.withheld] == ["m1", "m3", "m4", "m7"]
    assert batch.bad == []


def test_a_fence_names_no_one_and_differs_per_tenant_and_id():
    ids = {fence_id("acme", "u1"), fence_id("acme", "u2"), fence_id("other", "u1")}
    assert len(ids) == 3
    assert all("u1" not in f and "acme" not in f for f in ids)


NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)


def test_a_bad_rows_dlq_value_keeps_the_payload_verbatim():
    row = parse(RawRecord(b"acme:u1", b'{"type": "track"}', "interactions", 2, 7))
    assert isinstance(row, BadRow)
    value = orjson.loads(bad_row_value(row, now=NOW))
    assert value["payload"] == '{"type": "track"}'
    assert value["origin"] == {
        "topic": "interactions",
        "partition": 2,
        "offset": 7,
        "key": "acme:u1",
    }
    assert "payloadTruncated" not in value


@pytest.mark.parametrize(
    "payload",
    [b'"' * 400_000, b"\x00" * 300_000, b"\xff" * 900_000],
    ids=["quotes", "control bytes", "invalid utf-8"],
)
def test_a_huge_bad_record_gets_a_dlq_row_the_broker_takes_with_the_start_of_its_payload(payload):
    # given a record (from some other producer) whose row, escaped in JSON, would exceed 1 MiB
    row = parse(RawRecord(b"acme:u1", b"[" + payload, "interactions", 0, 1))
    assert isinstance(row, BadRow)
    # when it is dead-lettered
    value = bad_row_value(row, now=NOW)
    # then the row fits well within the broker's limit and says what it left out
    assert len(value) <= DLQ_VALUE_MAX_BYTES
    kept = orjson.loads(value)
    assert kept["payloadTruncated"] is True
    assert kept["payloadBytes"] == len(payload) + 1
    original = (b"[" + payload).decode("utf-8", errors="replace")
    assert kept["payload"] and original.startswith(kept["payload"])
    assert len(value) >= DLQ_VALUE_MAX_BYTES // 2  # as much of it as fits, about
