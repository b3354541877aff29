"""Which dead-lettered rows ``engagement dlq replay`` sends back, and where (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from engagement.kafka.topics import Topics
from engagement.tools.dlq_replay import Filters, Replay, plan

TOPICS = Topics("p.")
EVENT = '{"type":"track","messageId":"m1","tenantId":"acme"}'


def row(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "failureType": "processing_error",
        "messages": ["redis: ResponseError: WRONGTYPE"],
        "payload": EVENT,
        "processor": "engagement-scorer",
        "tenantId": "acme",
        "receivedAt": "2026-12-01T10:00:00Z",
        "origin": {
            "topic": "p.engagement.interactions.v1",
            "partition": 1,
            "offset": 7,
            "key": "acme:u1",
        },
    }
    return base | fields


def test_a_quarantined_interaction_goes_back_to_its_topic_with_its_key() -> None:
    assert plan(row(), "interactions", TOPICS, Filters()) == Replay(
        b"acme:u1", EVENT.encode(), topic="p.engagement.interactions.v1"
    )


def test_a_quarantined_score_record_goes_back_to_the_changes_topic() -> None:
    replay = plan(row(processor="engagement-notifier"), "scores", TOPICS, Filters())
    assert isinstance(replay, Replay) and replay.topic == "p.engagement.scores.changed.v1"


def test_only_processing_errors_are_replayed_unless_asked() -> None:
    invalid = row(failureType="schema_violation")
    assert plan(invalid, "interactions", TOPICS, Filters()) == "failureType schema_violation"
    assert isinstance(plan(invalid, "interactions", TOPICS, Filters(None)), Replay)


def test_ingest_rows_hold_the_clients_event_and_are_left_to_the_api() -> None:
    skipped = plan(row(processor="engagement-ingest"), "interactions", TOPICS, Filters(None))
    assert isinstance(skipped, str) and "through the API" in skipped


def test_a_truncated_payload_is_not_replayed() -> None:
    skipped = plan(row(payloadTruncated=True), "interactions", TOPICS, Filters())
    assert isinstance(skipped, str) and "truncated" in skipped


def test_rows_are_selected_by_tenant_and_time() -> None:
    at = datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert isinstance(plan(row(), "interactions", TOPICS, Filters(tenant="acme")), Replay)
    assert isinstance(plan(row(), "interactions", TOPICS, Filters(tenant="other")), str)
    assert isinstance(plan(row(), "interactions", TOPICS, Filters(since=at)), Replay)
    assert isinstance(plan(row(), "interactions", TOPICS, Filters(until=at)), str)


def test_a_webhook_row_is_delivered_again_under_its_webhook_id() -> None:
    payload = {"type": "candidate.hot", "data": {"tenantId": "acme", "candidateId": "u1"}}
    webhook = {
        "deliveryId": "a1-crm",
        "webhookId": "a1",
        "endpoint": "crm",
        "failedAt": "2026-12-01T10:00:00+00:00",
        "payload": payload,
    }
    assert plan(webhook, "webhooks", TOPICS, Filters()) == Replay(
        b"acme:u1", orjson.dumps(payload), endpoint="crm", webhook_id="a1", delivery_id="a1-crm"
    )


def test_what_is_not_a_row_is_skipped() -> None:
    assert plan(None, "interactions", TOPICS, Filters()) == "not a DLQ row"
    assert plan(row(payload=None), "interactions", TOPICS, Filters()) == "no payload"
