"""Events no pipeline stage may choke on are refused one by one at the door; the rest go through."""

from __future__ import annotations

import orjson

from services.ingest.event_guards import MAX_EVENT_DEPTH
from tests.integration.ingest.conftest import SERVER_KEY, basic
from tests.support.kafka import read_topic

GOOD = {"type": "track", "userId": "u1", "event": "Job Viewed", "messageId": "good-1"}


def _deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


async def _post_raw(client, path: str, body: bytes):
    headers = {**basic(SERVER_KEY), "Content-Type": "application/json"}
    return await client.post(path, content=body, headers=headers)


async def test_an_identify_whose_user_id_holds_a_separator_is_refused_alone(
    client, kafka_bootstrap, topics
):
    # given the poison identify among good events
    batch = [
        {"type": "track", "anonymousId": "sep-anon", "event": "Job Viewed", "messageId": "t-1"},
        {
            "type": "identify",
            "anonymousId": "sep-anon",
            "userId": "sep\u001fuser",
            "messageId": "i",
        },
        GOOD,
    ]
    # when the batch is posted
    response = await client.post("/v1/batch", json={"batch": batch}, headers=basic(SERVER_KEY))
    # then the good events are accepted and the identify is rejected with a clear reason
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 2
    [rejected] = answer["rejected"]
    assert rejected["index"] == 1
    assert "userId contains the control character U+001F" in rejected["reason"]
    [row] = await read_topic(kafka_bootstrap, topics.interactions_dlq, count=1)
    assert orjson.loads(row.value)["messageId"] == "i"


async def test_a_single_event_with_an_anonymous_user_id_is_400(client):
    event = {"userId": "anon:someone-else", "traits": {"email": "x@example.com"}}
    response = await client.post("/v1/identify", json=event, headers=basic(SERVER_KEY))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_event"
    assert "userId must not start with 'anon:'" in response.json()["error"]["message"]


async def test_a_lone_surrogate_in_one_event_rejects_that_event_alone(client):
    # given a batch whose first event holds a lone surrogate escape (valid JSON, invalid Unicode)
    body = b'{"batch":[{"type":"track","event":"E","userId":"x\\ud800","messageId":"s\\udc00"},'
    body += orjson.dumps(GOOD) + b"]}"
    # when it is posted
    response = await _post_raw(client, "/v1/batch", body)
    # then the good event is accepted and the bad one listed, its messageId printable
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 1
    assert [(r["index"], r["messageId"]) for r in answer["rejected"]] == [(0, "s\\udc00")]
    assert "unpaired surrogate (U+D800)" in answer["rejected"][0]["reason"]


async def test_a_deeply_nested_event_in_a_batch_is_rejected_alone(client, kafka_bootstrap, topics):
    # given a batch with one event nested 300 levels deep (255-1,023 answered 500 before)
    deep = b'{"type":"track","userId":"u2","event":"E","properties":{"x":' + _deep(300) + b"}}"
    body = b'{"batch":[' + deep + b"," + orjson.dumps(GOOD) + b"]}"
    # when it is posted
    response = await _post_raw(client, "/v1/batch", body)
    # then the good event is accepted, the deep one rejected and dead-lettered
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 1
    assert [r["index"] for r in answer["rejected"]] == [0]
    assert f"nested deeper than {MAX_EVENT_DEPTH} levels" in answer["rejected"][0]["reason"]
    [row] = await read_topic(kafka_bootstrap, topics.interactions_dlq, count=1)
    assert orjson.loads(row.value)["payload"]["userId"] == "u2"


async def test_a_deeply_nested_single_event_is_400(client):
    body = b'{"userId":"u","event":"E","properties":{"x":' + _deep(600) + b"}}"
    response = await _post_raw(client, "/v1/track", body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_event"


async def test_a_deeply_nested_batch_context_is_400(client):
    body = b'{"context":{"x":' + _deep(400) + b'},"batch":[' + orjson.dumps(GOOD) + b"]}"
    response = await _post_raw(client, "/v1/batch", body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_body"


async def test_numeric_user_ids_past_a_double_are_two_candidates(
    client, kafka_bootstrap, topics, tenant
):
    # given two tracks whose numeric userIds differ only in their last digit
    body = (
        b'{"batch":[{"type":"track","event":"E","userId":1234567890123456789012345},'
        b'{"type":"track","event":"E","userId":1234567890123456789012346}]}'
    )
    # when they are posted
    response = await _post_raw(client, "/v1/batch", body)
    # then both are accepted, keyed by their exact decimal text
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2
    records = await read_topic(kafka_bootstrap, topics.interactions, count=2)
    assert sorted(r.key.decode() for r in records) == [
        f"{tenant}:1234567890123456789012345",
        f"{tenant}:1234567890123456789012346",
    ]


async def test_a_deeply_nested_item_that_is_no_object_is_rejected_alone(client):
    body = b'{"batch":[' + _deep(300) + b"," + orjson.dumps(GOOD) + b"]}"
    response = await _post_raw(client, "/v1/batch", body)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    assert [r["index"] for r in response.json()["rejected"]] == [0]
