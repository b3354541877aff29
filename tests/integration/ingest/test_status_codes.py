"""One test per status code of docs/design.md §2, and a batch mixing valid and invalid events."""

from __future__ import annotations

import gzip

import orjson

from tests.integration.ingest.conftest import ORIGIN, SERVER_KEY, WRITE_KEY, basic
from tests.support.kafka import read_topic

TRACK = {"userId": "u1", "event": "Job Viewed"}
ITEM = {"type": "track", **TRACK}


def _code(response) -> str:
    return response.json()["error"]["code"]


async def test_malformed_json_is_400(client):
    response = await client.post("/v1/batch", content=b"{not json", headers=basic(SERVER_KEY))
    assert (response.status_code, _code(response)) == (400, "invalid_json")


async def test_body_that_is_not_an_object_is_400(client):
    response = await client.post("/v1/track", json=[TRACK], headers=basic(SERVER_KEY))
    assert (response.status_code, _code(response)) == (400, "invalid_body")


async def test_empty_batch_is_400(client):
    response = await client.post("/v1/batch", json={"batch": []}, headers=basic(SERVER_KEY))
    assert (response.status_code, _code(response)) == (400, "empty_batch")


async def test_single_event_without_any_id_is_400_and_goes_to_the_dlq(
    client, kafka_bootstrap, topics
):
    event = {"event": "Job Viewed", "messageId": "no-id-1"}
    response = await client.post("/v1/track", json=event, headers=basic(SERVER_KEY))
    assert (response.status_code, _code(response)) == (400, "invalid_event")
    [row] = await read_topic(kafka_bootstrap, topics.interactions_dlq, count=1)
    bad = orjson.loads(row.value)
    assert (bad["failureType"], bad["messageId"]) == ("schema_violation", "no-id-1")
    assert "userId or anonymousId is required" in bad["reason"]


async def test_missing_or_unknown_write_key_is_401(client):
    missing = await client.post("/v1/track", json=TRACK)
    unknown = await client.post("/v1/track", json=TRACK, headers=basic("wk_nope"))
    in_body = await client.post("/v1/track", json={**TRACK, "writeKey": "wk_nope"})
    assert [r.status_code for r in (missing, unknown, in_body)] == [401, 401, 401]
    assert _code(missing) == "invalid_write_key"


async def test_write_key_in_body_or_query_is_accepted(client):
    in_body = await client.post("/v1/track", json={**TRACK, "writeKey": SERVER_KEY})
    in_query = await client.post(f"/v1/track?writeKey={SERVER_KEY}", json=TRACK)
    assert [in_body.status_code, in_query.status_code] == [200, 200]


async def test_origin_not_allowed_for_the_key_is_403(client):
    headers = {**basic(WRITE_KEY), "Origin": "https://evil.example"}
    response = await client.post("/v1/track", json=TRACK, headers=headers)
    assert (response.status_code, _code(response)) == (403, "origin_not_allowed")
    assert "access-control-allow-origin" not in response.headers


async def test_server_key_used_from_a_browser_origin_is_403(client):
    headers = {**basic(SERVER_KEY), "Origin": ORIGIN}
    response = await client.post("/v1/track", json=TRACK, headers=headers)
    assert response.status_code == 403


async def test_allowed_origin_is_echoed(client):
    headers = {**basic(WRITE_KEY), "Origin": ORIGIN}
    response = await client.post("/v1/track", json=TRACK, headers=headers)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN


async def test_preflight_from_allowed_origin_succeeds_and_unknown_is_403(client):
    ask = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    allowed = await client.options("/v1/batch", headers={**ask, "Origin": ORIGIN})
    unknown = await client.options("/v1/batch", headers={**ask, "Origin": "https://evil.example"})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert unknown.status_code == 403


async def test_request_over_the_size_limit_is_413(client, settings):
    padding = "x" * settings.ingest_max_request_bytes
    body = {"batch": [ITEM], "padding": padding}
    response = await client.post("/v1/batch", json=body, headers=basic(SERVER_KEY))
    assert (response.status_code, _code(response)) == (413, "request_too_large")


async def test_gzip_bomb_is_stopped_at_the_limit_with_413(client):
    # 64 MiB of zeros compress to ~64 KiB; inflating it whole would be the attack
    bomb = gzip.compress(b'{"batch": [' + b" " * (64 * 1024 * 1024) + b"]}", 9)
    headers = {**basic(SERVER_KEY), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    response = await client.post("/v1/batch", content=bomb, headers=headers)
    assert (response.status_code, _code(response)) == (413, "request_too_large")


async def test_gzip_body_within_limits_is_accepted(client):
    body = gzip.compress(orjson.dumps({"batch": [ITEM, ITEM]}))
    headers = {**basic(SERVER_KEY), "Content-Encoding": "gzip"}
    response = await client.post("/v1/batch", content=body, headers=headers)
    assert (response.status_code, response.json()["accepted"]) == (200, 2)


async def test_batch_over_the_event_limit_is_413(client, settings):
    batch = [ITEM] * (settings.ingest_max_batch_events + 1)
    response = await client.post("/v1/batch", json={"batch": batch}, headers=basic(SERVER_KEY))
    assert (response.status_code, _code(response)) == (413, "batch_too_large")


async def test_single_event_over_the_event_limit_is_413(client, settings):
    event = {**TRACK, "properties": {"blob": "x" * settings.ingest_max_event_bytes}}
    response = await client.post("/v1/track", json=event, headers=basic(SERVER_KEY))
    assert (response.status_code, _code(response)) == (413, "event_too_large")


async def test_wrong_content_type_is_415(client):
    headers = {**basic(SERVER_KEY), "Content-Type": "application/x-www-form-urlencoded"}
    response = await client.post("/v1/track", content=b"userId=u1", headers=headers)
    assert (response.status_code, _code(response)) == (415, "unsupported_media_type")


async def test_unsupported_content_encoding_is_415(client):
    headers = {**basic(SERVER_KEY), "Content-Encoding": "br"}
    response = await client.post("/v1/track", content=orjson.dumps(TRACK), headers=headers)
    assert (response.status_code, _code(response)) == (415, "unsupported_encoding")


async def test_beacon_accepts_text_plain_with_write_key_in_query(client, kafka_bootstrap, topics):
    body = orjson.dumps({"batch": [{**ITEM, "messageId": "beacon-1"}]})
    headers = {"Content-Type": "text/plain;charset=UTF-8", "Origin": ORIGIN}
    response = await client.post(f"/v1/b?writeKey={WRITE_KEY}", content=body, headers=headers)
    assert response.status_code == 200
    [record] = await read_topic(kafka_bootstrap, topics.interactions, count=1)
    # the browser's own address, truncated, stands in for a missing context.ip
    assert orjson.loads(record.value)["context"]["ip"] == "127.0.0.0"


async def test_mixed_batch_accepts_valid_events_and_dead_letters_invalid_ones(
    client, kafka_bootstrap, topics, tenant
):
    # given a batch with two valid events and three invalid ones
    batch = [
        {"type": "track", "userId": "u1", "event": "Job Viewed", "messageId": "ok-1"},
        {"type": "track", "userId": "u1", "messageId": "bad-no-event"},
        "not an object",
        {"type": "page", "anonymousId": "a1", "name": "Jobs", "messageId": "ok-2"},
        {"type": "teleport", "userId": "u1", "messageId": "bad-type"},
    ]
    # when it is posted
    response = await client.post("/v1/batch", json={"batch": batch}, headers=basic(SERVER_KEY))
    # then the valid ones are accepted and the invalid ones listed with their reasons
    assert response.status_code == 200
    answer = response.json()
    assert answer["accepted"] == 2
    assert [(r["index"], r["messageId"]) for r in answer["rejected"]] == [
        (1, "bad-no-event"),
        (2, None),
        (4, "bad-type"),
    ]
    assert all(r["reason"].startswith("schema_violation: ") for r in answer["rejected"])
    good = await read_topic(kafka_bootstrap, topics.interactions, count=2)
    bad = await read_topic(kafka_bootstrap, topics.interactions_dlq, count=3)
    assert sorted(orjson.loads(r.value)["messageId"] for r in good) == ["ok-1", "ok-2"]
    assert sorted(r.key for r in good) == [f"{tenant}:anon:a1".encode(), f"{tenant}:u1".encode()]
    rows = sorted((orjson.loads(r.value) for r in bad), key=lambda row: row["index"])
    assert [(row["index"], row["failureType"], row["sourceId"]) for row in rows] == [
        (1, "schema_violation", "backend"),
        (2, "schema_violation", "backend"),
        (4, "schema_violation", "backend"),
    ]
    assert rows[2]["payload"] == batch[4]
    assert "track needs an event name" in rows[0]["reason"]


async def test_batch_of_only_invalid_events_is_200_with_nothing_accepted(client):
    batch = [{"type": "track", "event": "x"}, {"type": "nope"}]
    response = await client.post("/v1/batch", json={"batch": batch}, headers=basic(SERVER_KEY))
    assert response.status_code == 200
    assert (response.json()["accepted"], len(response.json()["rejected"])) == (0, 2)
