"""An event far over the size limit, in a request the operator allowed to be large, is rejected
like any other: the answer is 200 with the rejection, and its dead-letter row, which would be
past what the broker takes if it held the whole event, holds the start of it."""

from __future__ import annotations

import httpx
import orjson

from engagement.kafka.bad_rows import DLQ_VALUE_MAX_BYTES
from services.ingest.app import create_app
from tests.integration.ingest.conftest import SERVER_KEY, basic
from tests.support.kafka import read_topic
from tests.support.server import serve


async def test_a_huge_rejected_event_is_answered_and_dead_lettered_with_its_start(
    settings, kafka_bootstrap, topics
):
    # given an ingest taking requests of up to 4 MiB (events stay limited to 32 KiB)
    large = settings.model_copy(update={"ingest_max_request_bytes": 4 * 1024 * 1024})
    huge = {
        "type": "track",
        "messageId": "huge-1",
        "userId": "u1",
        "event": "Job Viewed",
        "properties": {"note": "x" * 1_500_000},
    }
    good = {"type": "track", "messageId": "ok-1", "userId": "u1", "event": "Job Viewed"}
    # when a batch holds a 1.5 MB event and a good one
    with serve(create_app(large), ready_path="/readyz") as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            response = await client.post(
                "/v1/batch", json={"batch": [huge, good]}, headers=basic(SERVER_KEY)
            )
    # then the good one is accepted and the huge one rejected, as for any too large event
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 1
    assert [r["messageId"] for r in answer["rejected"]] == ["huge-1"]
    # and its dead-letter row says so, with the start of the event as text
    [row] = await read_topic(kafka_bootstrap, topics.interactions_dlq, count=1)
    assert len(row.value) <= DLQ_VALUE_MAX_BYTES
    bad = orjson.loads(row.value)
    assert (bad["failureType"], bad["messageId"]) == ("size_violation", "huge-1")
    assert bad["payloadTruncated"] is True
    assert bad["payloadBytes"] == len(orjson.dumps(huge))
    assert orjson.dumps(huge).decode().startswith(bad["payload"])
