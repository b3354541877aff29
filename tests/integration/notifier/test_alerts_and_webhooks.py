"""Score records in, alerts and signed webhooks out: one notifier subprocess, real broker, Redis, HTTP."""

from __future__ import annotations

import asyncio
import math
import time
import uuid

import orjson
import pytest
from standardwebhooks import Webhook

from engagement.kafka.topics import Topics
from tests.conftest import SESSION_ID
from tests.integration.notifier.conftest import SECRET, create_topics, score_change, webhooks_toml
from tests.support.kafka import read_topic

MODULE = uuid.uuid4().hex[:8]
TOPICS = Topics(f"tn{MODULE}.")


@pytest.fixture(scope="module")
async def notifier(kafka_bootstrap, receiver, make_notifier):
    receiver.scripts.update(
        {"/hooks/flaky": [500, 500, 200], "/hooks/broken": [500], "/hooks/gone": [410]}
    )
    await create_topics(kafka_bootstrap, TOPICS)
    hooks = webhooks_toml(
        receiver,
        {
            "ok": {"tenants": ["t-ok"]},
            "flaky": {"tenants": ["t-flaky"]},
            "broken": {"tenants": ["t-broken"]},
            "gone": {"tenants": ["t-gone"]},
            "private": {"tenants": ["t-private"], "allow_private": False},
        },
    )
    proc = make_notifier(
        prefix=TOPICS.prefix, redis_prefix=f"test:{SESSION_ID}n{MODULE}:", webhooks=hooks
    )
    return await asyncio.to_thread(proc.start)


async def eventually(check, timeout: float = 30.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(every)


def alerts_for(records, candidate: str) -> list[dict]:
    values = [orjson.loads(r.value) for r in records]
    return [v for v in values if v["candidateId"] == candidate]


async def alerts_until(bootstrap: str, candidate: str, done) -> list[dict]:
    records = await read_topic(
        bootstrap,
        TOPICS.candidate_alerts,
        timeout=60,  # returns as soon as ``done``; a loaded box may need a rebalance or two
        until=lambda rs: done(alerts_for(rs, candidate)),
    )
    return alerts_for(records, candidate)


async def test_crossing_hot_publishes_one_alert_and_one_verified_webhook_and_replay_adds_nothing(
    notifier, receiver, feed_for, kafka_bootstrap
):
    feed = feed_for(TOPICS)
    records = [
        score_change("t-ok", "u1", 1, score=30, tier="cold", previous="cold"),
        score_change("t-ok", "u1", 2, score=55, tier="warm", previous="cold"),
        score_change("t-ok", "u1", 3, score=74, tier="hot", previous="warm"),
        score_change("t-ok", "u1", 4, score=80, tier="hot", previous="hot"),
    ]
    # when score records push u1 over the hot threshold
    for record in records:
        await feed.send(record)
    # then one candidate.hot (after one tier_changed) is on the alerts topic, with CloudEvents headers
    alerts = await alerts_until(kafka_bootstrap, "u1", lambda a: len(a) >= 2)
    assert [(a["type"], a["tier"], a["sequence"]) for a in alerts] == [
        ("candidate.tier_changed", "warm", 2),
        ("candidate.hot", "hot", 3),
    ]
    # and the receiver got exactly those two, signed so that standardwebhooks verifies them
    hooks = await eventually(
        lambda: len(receiver.on("/hooks/ok")) >= 2 and receiver.on("/hooks/ok")
    )
    # (webhooks are sent concurrently: their order is not guaranteed, receivers use `sequence`)
    verified = sorted(
        ((Webhook(SECRET).verify(h.body, h.headers), h.headers["webhook-id"]) for h in hooks),
        key=lambda pair: pair[0]["data"]["sequence"],
    )
    assert [(b["type"], webhook_id) for b, webhook_id in verified] == [
        (a["type"], a["id"]) for a in alerts
    ]
    # when the same records are replayed, followed by a real change (the sentinel)
    for record in records:
        await feed.send(record)
    await feed.send(score_change("t-ok", "u1", 5, score=60, tier="warm", previous="hot"))
    # then only the sentinel's candidate.cooled is new, on the topic and at the receiver
    alerts = await alerts_until(kafka_bootstrap, "u1", lambda a: len(a) >= 3)
    await asyncio.sleep(0.5)
    alerts = alerts_for(await read_topic(kafka_bootstrap, TOPICS.candidate_alerts, timeout=2), "u1")
    assert [a["type"] for a in alerts] == [
        "candidate.tier_changed",
        "candidate.hot",
        "candidate.cooled",
    ]
    hooks = await eventually(
        lambda: len(receiver.on("/hooks/ok")) >= 3 and receiver.on("/hooks/ok")
    )
    assert len({h.headers["webhook-id"] for h in hooks}) == len(hooks) == 3


async def test_a_score_oscillating_between_exit_and_enter_raises_no_alert_storm(
    notifier, feed_for, kafka_bootstrap
):
    feed = feed_for(TOPICS)
    # given u2 became hot, then its score oscillates between hot's exit (65) and enter (70)
    scores = [72, 66, 69, 65, 69, 67, 71, 66]
    await feed.send(score_change("t-ok", "u2", 1, score=72, tier="hot", previous="cold"))
    for seq, score in enumerate(scores[1:], start=2):
        # each raw in the middle of its integer score (score_change's default sits on its lower
        # edge: a second of decay would round 65 down to 64, under the exit)
        raw = 50.0 * math.log(100 / (100 - score))
        await feed.send(
            score_change("t-ok", "u2", seq, score=score, tier="hot", previous="hot", raw=raw)
        )
    # and finally drops below the exit
    await feed.send(score_change("t-ok", "u2", 20, score=60, tier="warm", previous="hot"))
    # then exactly one hot and one cooled alert
    alerts = await alerts_until(kafka_bootstrap, "u2", lambda a: len(a) >= 2)
    assert [(a["type"], a["sequence"]) for a in alerts] == [
        ("candidate.hot", 1),
        ("candidate.cooled", 20),
    ]


async def test_a_failing_receiver_gets_the_same_webhook_id_until_it_is_delivered_once(
    notifier, receiver, feed_for, kafka_bootstrap
):
    # given a receiver answering 500, 500, then 200
    await feed_for(TOPICS).send(
        score_change("t-flaky", "u3", 1, score=90, tier="hot", previous="cold")
    )
    # then it sees three attempts with one webhook-id, each signed
    hooks = await eventually(
        lambda: len(receiver.on("/hooks/flaky")) >= 3 and receiver.on("/hooks/flaky")
    )
    assert len({h.headers["webhook-id"] for h in hooks}) == 1
    assert all(Webhook(SECRET).verify(h.body, h.headers) for h in hooks)
    # and the delivery is recorded once as delivered; nothing went to the DLQ
    metrics = await eventually(
        lambda: (
            'engagement_webhook_deliveries_total{endpoint="flaky",outcome="delivered"} 1.0'
            in (m := notifier.metrics())
            and m
        )
    )
    assert 'engagement_webhook_deliveries_total{endpoint="flaky",outcome="retry"} 2.0' in metrics
    dlq = await read_topic(kafka_bootstrap, TOPICS.webhooks_dlq, timeout=1)
    assert all(orjson.loads(r.value)["endpoint"] != "flaky" for r in dlq)


async def test_a_receiver_that_always_fails_ends_in_the_webhook_dlq(
    notifier, receiver, feed_for, kafka_bootstrap
):
    # given a receiver that always answers 500
    await feed_for(TOPICS).send(
        score_change("t-broken", "u4", 1, score=90, tier="hot", previous="cold")
    )
    # then after the last attempt the delivery is on the webhook DLQ with the payload
    records = await read_topic(kafka_bootstrap, TOPICS.webhooks_dlq, count=1, timeout=30)
    [dead] = [orjson.loads(r.value) for r in records]
    assert (dead["endpoint"], dead["outcome"], dead["attempts"], dead["lastStatus"]) == (
        "broken",
        "dlq",
        3,
        500,
    )
    assert dead["payload"]["data"]["candidateId"] == "u4"
    assert len(receiver.on("/hooks/broken")) == 3


async def test_an_endpoint_answering_410_is_disabled_and_gets_nothing_more(
    notifier, receiver, feed_for, kafka_bootstrap
):
    feed = feed_for(TOPICS)
    # given an endpoint that answers 410 Gone to the first alert
    await feed.send(score_change("t-gone", "u5", 1, score=90, tier="hot", previous="cold"))
    await eventually(lambda: receiver.on("/hooks/gone"))
    # when a second alert for it follows
    await feed.send(score_change("t-gone", "u5", 2, score=50, tier="warm", previous="hot"))
    # then both end in the DLQ (gone, then disabled) and the receiver saw only the first
    records = await read_topic(
        kafka_bootstrap,
        TOPICS.webhooks_dlq,
        timeout=30,
        until=lambda rs: len([r for r in rs if orjson.loads(r.value)["endpoint"] == "gone"]) >= 2,
    )
    outcomes = [v["outcome"] for r in records if (v := orjson.loads(r.value))["endpoint"] == "gone"]
    assert outcomes == ["gone", "disabled"]
    assert len(receiver.on("/hooks/gone")) == 1


async def test_a_loopback_endpoint_that_is_not_allowlisted_is_refused(
    notifier, receiver, feed_for, kafka_bootstrap
):
    # given an endpoint on 127.0.0.1 without allow_private
    await feed_for(TOPICS).send(
        score_change("t-private", "u6", 1, score=90, tier="hot", previous="cold")
    )
    # then no request leaves and the delivery is in the DLQ as refused
    records = await read_topic(
        kafka_bootstrap,
        TOPICS.webhooks_dlq,
        timeout=30,
        until=lambda rs: any(orjson.loads(r.value)["endpoint"] == "private" for r in rs),
    )
    [dead] = [v for r in records if (v := orjson.loads(r.value))["endpoint"] == "private"]
    assert dead["outcome"] == "refused" and "not public" in dead["lastError"]
    assert receiver.on("/hooks/private") == []


async def test_a_notifier_replaying_every_record_from_the_start_publishes_nothing_new(
    notifier, receiver, make_notifier, feed_for, kafka_bootstrap
):
    # given everything the tests above produced and alerted
    before = await read_topic(kafka_bootstrap, TOPICS.candidate_alerts, timeout=2)
    hooks_before = len(receiver.received)
    # when the notifier is replaced by one in a fresh consumer group (offsets reset to earliest)
    await asyncio.to_thread(notifier.stop)
    replay = make_notifier(prefix=TOPICS.prefix, redis_prefix="unused", webhooks="")
    replay.env = {
        **notifier.env,
        "NOTIFIER_GROUP_ID": f"replay{MODULE}",
        "NOTIFIER_WEB_PORT": replay.env["NOTIFIER_WEB_PORT"],
    }
    await asyncio.to_thread(replay.start)
    # and, after the replayed records, one real change arrives
    await feed_for(TOPICS).send(
        score_change("t-ok", "u1", 6, score=80, tier="hot", previous="warm")
    )
    after = await read_topic(
        kafka_bootstrap, TOPICS.candidate_alerts, timeout=30, until=lambda rs: len(rs) > len(before)
    )
    await asyncio.sleep(1.0)
    after = await read_topic(kafka_bootstrap, TOPICS.candidate_alerts, timeout=2)
    # then only that change's alert and webhook are new
    new = [orjson.loads(r.value) for r in after[len(before) :]]
    assert [(a["candidateId"], a["type"], a["sequence"]) for a in new] == [
        ("u1", "candidate.hot", 6)
    ]
    await eventually(lambda: len(receiver.received) > hooks_before)
    await asyncio.sleep(0.5)
    assert len(receiver.received) == hooks_before + 1
