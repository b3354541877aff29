"""What analytics.js (@segment/analytics-next) needs: its settings and the short single-event paths."""

from __future__ import annotations

from urllib.parse import urlsplit

import orjson

from tests.integration.ingest.conftest import ORIGIN, SERVER_KEY, WRITE_KEY, basic
from tests.support.kafka import read_topic

# One body per short path, shaped as analytics-next's normalize() sends it (text/plain JSON).
SHORT_PATH_BODIES = {
    "t": {"type": "track", "event": "Job Viewed", "properties": {"jobId": "J-1"}},
    "p": {"type": "page", "name": "Careers", "properties": {"path": "/careers"}},
    "i": {"type": "identify", "userId": "cand-1", "traits": {"email": "ada@example.com"}},
    "a": {"type": "alias", "userId": "cand-1", "previousId": "anon-1"},
    "g": {"type": "group", "groupId": "team-1", "traits": {"name": "Platform"}},
    "s": {"type": "screen", "name": "Job Detail"},
}


def _as_analytics_next_sends(short: str, body: dict) -> bytes:
    return orjson.dumps(
        {
            "anonymousId": "anon-1",
            "messageId": f"ajs-next-{short}-0123456789abcdef",
            "timestamp": "2030-01-01T00:00:00.000Z",
            "sentAt": "2030-01-01T00:00:00.100Z",
            "context": {"library": {"name": "analytics.js", "version": "next-1.84.3"}},
            "integrations": {},
            "writeKey": WRITE_KEY,
            "_metadata": {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []},
            **body,
        }
    )


async def test_each_short_path_ingests_its_type_like_the_long_path(
    client, kafka_bootstrap, topics, tenant
):
    # given one analytics-next-shaped event per short path, sent from an allowed browser origin
    headers = {**basic(WRITE_KEY), "Origin": ORIGIN, "Content-Type": "text/plain"}
    # when each is posted to /v1/<first letter of its type>
    for short, body in SHORT_PATH_BODIES.items():
        content = _as_analytics_next_sends(short, body)
        response = await client.post(f"/v1/{short}", content=content, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == 1
    # then every event is on the interactions topic with its type, messageId and tenant
    records = await read_topic(kafka_bootstrap, topics.interactions, count=6)
    values = {v["messageId"]: v for v in (orjson.loads(r.value) for r in records)}
    for short, body in SHORT_PATH_BODIES.items():
        value = values[f"ajs-next-{short}-0123456789abcdef"]
        assert (value["type"], value["tenantId"]) == (body["type"], tenant)
        assert "writeKey" not in value


async def test_a_short_path_decides_the_type_as_the_long_path_does(client, kafka_bootstrap, topics):
    # given a body that claims to be a page view
    body = {"type": "page", "event": "Job Viewed", "anonymousId": "anon-2"}
    # when it is posted to the track short path
    response = await client.post("/v1/t", json=body, headers=basic(SERVER_KEY))
    # then it is stored as a track, exactly like /v1/track would store it
    assert response.status_code == 200, response.text
    [record] = await read_topic(kafka_bootstrap, topics.interactions, count=1)
    assert orjson.loads(record.value)["type"] == "track"


async def test_settings_point_analytics_js_back_at_this_service(client, ingest_url):
    # given a browser source's write key
    # when analytics.js fetches its settings from the allowed origin
    response = await client.get(f"/v1/projects/{WRITE_KEY}/settings", headers={"Origin": ORIGIN})
    # then they send every event to this host's /v1, without remote metrics, CORS allowed
    assert response.status_code == 200, response.text
    settings = response.json()
    assert settings["integrations"] == {
        "Segment.io": {
            "apiKey": WRITE_KEY,
            "apiHost": f"{urlsplit(ingest_url).netloc}/v1",
            "protocol": "http",
        }
    }
    assert settings["metrics"] == {"sampleRate": 0}
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["cache-control"] == "no-store"  # no INGEST_PUBLIC_URL: from Host


async def test_settings_for_an_unknown_write_key_are_404(client):
    # given a key no source has
    # when its settings are fetched
    response = await client.get("/v1/projects/wk_nobody/settings")
    # then the answer is 404 with the JSON error
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_write_key"


async def test_settings_from_an_origin_the_key_does_not_allow_are_403(client):
    # given the server-side key, which allows no browser origin
    # when its settings are fetched from a page
    response = await client.get(f"/v1/projects/{SERVER_KEY}/settings", headers={"Origin": ORIGIN})
    # then the answer is 403
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "origin_not_allowed"


async def test_preflight_allows_the_retry_count_header_analytics_js_adds_to_retries(client):
    # given analytics.js retrying an event (it then adds X-Retry-Count next to Authorization)
    headers = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-retry-count",
    }
    # when the browser asks whether it may send it
    response = await client.options("/v1/t", headers=headers)
    # then every header it needs is allowed
    assert response.status_code == 204
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert {"authorization", "content-type", "x-retry-count"} <= allowed
