"""The dev stack's webhook receiver verifies signatures; its status line reads at a glance."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import orjson
import pytest
from standardwebhooks import Webhook

from engagement.tools.devstack.monitor import Snapshot, describe_breakdown, rates_between
from engagement.tools.devstack.receiver import ReceivedAlert, WebhookReceiver
from engagement.tools.devstack.view import status_line

SECRET = "whsec_" + "ZGV2LXJlY2VpdmVyLXRlc3Qtc2VjcmV0"
BODY = orjson.dumps(
    {
        "type": "candidate.hot",
        "timestamp": "2026-11-25T10:00:00Z",
        "data": {
            "tenantId": "demo",
            "candidateId": "u-1",
            "score": 74,
            "tier": "hot",
            "previousTier": "warm",
        },
    }
)


@pytest.fixture
def receiver():
    received: list[ReceivedAlert] = []
    server = WebhookReceiver(
        host="127.0.0.1", port=0, secret=SECRET, on_alert=received.append
    ).start()
    yield server, received
    server.stop()


def _post(port: int, *, secret: str, msg_id: str = "alrt_1") -> int:
    now = datetime.now(UTC)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, BODY.decode()),
        "content-type": "application/json",
    }
    return httpx.post(f"http://127.0.0.1:{port}/hooks", content=BODY, headers=headers).status_code


def test_receiver_accepts_a_correctly_signed_alert_and_reports_it(receiver):
    server, received = receiver
    assert _post(server.port, secret=SECRET) == 200
    assert [(a.type, a.candidate, a.score, a.previous_tier, a.tier) for a in received] == [
        ("candidate.hot", "u-1", 74, "warm", "hot")
    ]


def test_receiver_rejects_a_wrong_signature(receiver):
    server, received = receiver
    assert _post(server.port, secret="whsec_" + "b3RoZXItc2VjcmV0LXZhbHVl") == 401
    assert received == [] and server.rejected == 1


def test_receiver_reports_a_retried_delivery_once(receiver):
    server, received = receiver
    assert _post(server.port, secret=SECRET) == 200
    assert _post(server.port, secret=SECRET) == 200
    assert len(received) == 1


def test_status_line_shows_rates_lag_tiers_and_services():
    snapshot = Snapshot(
        at=10.0,
        accepted={"web": 30.0, "ad": 10.0},
        rates={"web": 3.0, "ad": 1.0},
        lag=5.0,
        tiers={"hot": 1, "cold": 7, "warm": 2},
        services={"ingest": "ready"},
    )
    line = status_line(snapshot, alerts=4)
    assert line.startswith("status: events/s ad=1.0 web=3.0 | accepted 40 ")
    assert "| lag 5 | tiers cold=7 warm=2 hot=1 | alerts 4 | ingest=ready" in line


def test_rates_are_events_per_second_since_the_previous_snapshot():
    previous = Snapshot(at=10.0, accepted={"web": 10.0})
    assert rates_between(previous, {"web": 30.0, "ad": 4.0}, 12.0) == {"web": 10.0, "ad": 2.0}
    assert rates_between(None, {"web": 30.0}, 12.0) == {"web": 0.0}


def test_breakdown_lists_pillars_and_channels():
    view = {
        "score": 74,
        "pillars": {"entrance": 5.0, "interaction": 60.0},
        "channels": {"web": 65.0},
    }
    assert describe_breakdown(view) == "score 74 (entrance 5, interaction 60; web 65)"
