"""A valid event answered 200 is on the interactions topic, normalised, keyed, with CloudEvents."""

from __future__ import annotations

import orjson

from engagement.kafka.cloudevents import headers_dict
from engagement.model.records import Interaction
from tests.integration.ingest.conftest import SERVER_KEY, basic
from tests.support.kafka import read_topic


async def test_tracked_event_is_acknowledged_and_normalised(
    client, kafka_bootstrap, topics, tenant
):
    # given a server-side track call with client clocks 10 s ahead
    event = {
        "userId": "cand-1",
        "event": "Job Viewed",
        "messageId": "m-1",
        "timestamp": "2030-01-01T00:00:00Z",
        "sentAt": "2030-01-01T00:00:10Z",
        "properties": {"jobId": "J-1"},
        "context": {"ip": "203.0.113.77"},
    }
    # when it is posted
    response = await client.post("/v1/track", json=event, headers=basic(SERVER_KEY))
    # then it is answered accepted and is on the topic, normalised
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "accepted": 1, "dropped": 0, "rejected": []}
    [record] = await read_topic(kafka_bootstrap, topics.interactions, count=1)
    interaction = Interaction.model_validate_json(record.value)
    assert record.key == f"{tenant}:cand-1".encode()
    assert (interaction.tenantId, interaction.sourceId, interaction.channel) == (
        tenant,
        "backend",
        "ats",
    )
    assert interaction.context["ip"] == "203.0.113.0"
    assert (interaction.receivedAt - interaction.timestamp).total_seconds() == 10.0
    headers = headers_dict(record.headers)
    assert headers["ce_id"] == "m-1"
    assert headers["ce_source"] == f"/tenants/{tenant}/sources/backend"
    assert headers["ce_subject"] == "Job Viewed"
    assert "writeKey" not in orjson.loads(record.value)
