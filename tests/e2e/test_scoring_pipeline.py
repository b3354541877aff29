"""The scoring pipeline end to end: HTTP ingest → Kafka → scorer subprocess → Redis → read API.

One ingest app and one scorer process serve every test of this module (a Tansu group join costs
seconds); each test uses its own candidates.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import redis
from aiokafka import AIOKafkaProducer

from tests.integration.scorer.expected import Sent, expected_raw, score_of
from tests.integration.scorer.pipeline import Pipeline, at, running_pipeline, track
from tests.support.kafka import read_topic

EVENTS = ["Page Viewed", "Job Viewed", "Article Read", "Webinar Attended", "Application Submitted"]
CHANNELS = ["web", "ad", "email", "social"]


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap: str, redis_url: str, tmp_path_factory) -> Iterator[Pipeline]:
    with running_pipeline(kafka_bootstrap, redis_url, tmp_path_factory.mktemp("scoring")) as p:
        yield p


def _events(candidate: str, n: int, *, seed: int, span_hours: float = 36.0) -> list[Sent]:
    rng = random.Random(seed)
    now = time.time()
    return [
        Sent(
            uuid.uuid4().hex,
            candidate,
            rng.choice(EVENTS),
            rng.choice(CHANNELS),
            at(now - rng.uniform(60, span_hours * 3600)),
        )
        for _ in range(n)
    ]


def _assert_exact(body: dict[str, Any], events: list[Sent], rules: dict[str, Any]) -> None:
    as_of = _epoch(body["asOf"])
    raw = expected_raw(events, rules, as_of)
    assert body["score"] == score_of(raw, rules["score_scale"])
    assert math.isclose(body["raw"], raw, rel_tol=1e-9, abs_tol=1e-9)


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _score_reached(pipeline: Pipeline, events: list[Sent]) -> Any:
    def done(response: httpx.Response) -> bool:
        if response.status_code != 200:
            return False
        body = response.json()
        return body["score"] == score_of(
            expected_raw(events, pipeline.rules, _epoch(body["asOf"])),
            pipeline.rules["score_scale"],
        ) and body["sequence"] == len({e.message_id for e in events})

    return done


def _raw_reached(pipeline: Pipeline, events: list[Sent]) -> Any:
    """Whether the candidate's raw is the closed form of ``events`` (where merges took part: a
    merge counts in the sequence too)."""

    def done(response: httpx.Response) -> bool:
        if response.status_code != 200:
            return False
        body = response.json()
        raw = expected_raw(events, pipeline.rules, _epoch(body["asOf"]))
        return math.isclose(body["raw"], raw, rel_tol=1e-9)

    return done


def test_api_score_equals_closed_form_for_out_of_order_and_repeated_events(pipeline: Pipeline):
    # given events of two candidates over 36 hours, sent shuffled, and one batch sent twice
    by_candidate = {f"u-{i}-{uuid.uuid4().hex[:6]}": _events("", 25, seed=i) for i in range(2)}
    calls = [track(e, user_id=c) for c, evs in by_candidate.items() for e in evs]
    random.Random(7).shuffle(calls)
    pipeline.send(calls[:20])
    pipeline.send(calls[20:])
    pipeline.send(calls[:20])  # a client retry: same messageIds
    # when the scorer has processed them
    for candidate, events in by_candidate.items():
        response = pipeline.wait_for(
            f"/v1/candidates/{candidate}", _score_reached(pipeline, events)
        )
        # then the API returns exactly the closed-form score at its asOf, duplicates counted once
        assert response.status_code == 200, response.text
        body = response.json()
        _assert_exact(body, events, pipeline.rules)
        assert body["sequence"] == len(events)
        assert body["rulesVersion"] == "test-rules-1"
        assert set(body["pillars"]) == {"entrance", "activity", "interaction"}
        assert math.isclose(sum(body["pillars"].values()), body["raw"], rel_tol=1e-9)
        assert math.isclose(sum(body["channels"].values()), body["raw"], rel_tol=1e-9)
        latest = max(events, key=lambda e: e.at)
        assert body["lastEventAt"] is not None
        assert body["contributions"][0]["points"] != 0
        assert math.isclose(_epoch(body["lastEventAt"]), latest.at.timestamp(), abs_tol=1e-3)


def test_unknown_candidate_is_404_with_error_body(pipeline: Pipeline):
    response = pipeline.get("/v1/candidates/nobody-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "candidate_not_found"


def test_read_api_needs_a_read_key(pipeline: Pipeline):
    response = httpx.get(f"{pipeline.base}/v1/tiers", timeout=10)
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"code", "message"}


def test_identify_folds_anonymous_history_into_the_candidate_exactly(pipeline: Pipeline):
    # given anonymous events of a visitor
    anon, user = f"a-{uuid.uuid4().hex[:8]}", f"u-{uuid.uuid4().hex[:8]}"
    before = _events(user, 12, seed=11, span_hours=30)
    pipeline.send([track(e, anonymous_id=anon) for e in before])
    pipeline.wait_for(f"/v1/candidates/anon:{anon}", _score_reached(pipeline, before))
    # and known-user events
    known = _events(user, 5, seed=12, span_hours=10)
    pipeline.send([track(e, user_id=user) for e in known])
    # when the visitor identifies, then browses on anonymously
    identify = {
        "type": "identify",
        "userId": user,
        "anonymousId": anon,
        "messageId": uuid.uuid4().hex,
    }
    pipeline.send([identify])
    later = _events(user, 4, seed=13, span_hours=1)
    pipeline.send([track(e, anonymous_id=anon) for e in later])
    everything = before + known + later
    # then the candidate's score is the closed form over all of it
    response = pipeline.wait_for(f"/v1/candidates/{user}", _raw_reached(pipeline, everything))
    _assert_exact(response.json(), everything, pipeline.rules)
    # and the anonymous id resolves to the candidate
    assert pipeline.get(f"/v1/candidates/anon:{anon}").json()["candidateId"] == user


def test_leaderboard_and_tier_counts_agree_with_candidate_scores(pipeline: Pipeline):
    # given the candidates scored so far (and a few more, some of them hot)
    for i in range(3):
        cand = f"hot-{i}-{uuid.uuid4().hex[:6]}"
        events = [
            Sent(uuid.uuid4().hex, cand, "Application Submitted", "web", at(time.time() - 600 - j))
            for j in range(3)
        ]
        pipeline.send([track(e, user_id=cand) for e in events])
        pipeline.wait_for(f"/v1/candidates/{cand}", _score_reached(pipeline, events))
    # when reading the whole leaderboard page by page
    entries, cursor = [], None
    while True:
        query = "/v1/candidates?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = pipeline.get(query).json()
        entries += page["candidates"]
        cursor = page["nextCursor"]
        if not cursor:
            break
    tiers = pipeline.get("/v1/tiers").json()["tiers"]
    # then it is ordered by score, matches each candidate's own score and the tier counts
    scores = [e["score"] for e in entries]
    assert scores == sorted(scores, reverse=True)
    assert len({e["candidateId"] for e in entries}) == len(entries)
    for entry in entries:
        own = pipeline.get(f"/v1/candidates/{entry['candidateId']}").json()
        assert abs(own["score"] - entry["score"]) <= 1  # valued a moment apart (decay)
        assert own["tier"] == entry["tier"]
    per_tier = {name: sum(1 for e in entries if e["tier"] == name) for name in tiers}
    assert per_tier == tiers
    assert tiers["hot"] >= 3
    hot = pipeline.get("/v1/candidates?tier=hot&limit=50").json()["candidates"]
    assert {e["candidateId"] for e in hot} == {
        e["candidateId"] for e in entries if e["tier"] == "hot"
    }


async def test_erasure_removes_every_trace_and_publishes_a_tombstone(pipeline: Pipeline):
    # given a candidate with anonymous history merged in
    anon, user = f"a-{uuid.uuid4().hex[:8]}", f"u-{uuid.uuid4().hex[:8]}"
    events = _events(user, 6, seed=21)
    pipeline.send([track(e, anonymous_id=anon) for e in events[:3]])
    pipeline.send(
        [{"type": "identify", "userId": user, "anonymousId": anon, "messageId": uuid.uuid4().hex}]
    )
    pipeline.send([track(e, user_id=user) for e in events[3:]])
    reached = pipeline.wait_for(f"/v1/candidates/{user}", _raw_reached(pipeline, events))
    _assert_exact(reached.json(), events, pipeline.rules)
    # when an admin erases the candidate (twice: it is idempotent)
    first = pipeline.delete(f"/v1/candidates/{user}")
    second = pipeline.delete(f"/v1/candidates/{user}")
    # then 204 both times, 404 afterwards, and no Redis key of the candidate or its anon id is left
    assert (first.status_code, second.status_code) == (204, 204)
    assert pipeline.get(f"/v1/candidates/{user}").status_code == 404
    assert pipeline.get(f"/v1/candidates/anon:{anon}").status_code == 404
    client = redis.Redis.from_url(pipeline.redis_url)
    try:
        left = [
            k
            for k in client.scan_iter(match=f"{pipeline.redis_prefix}*", count=1000)
            if user.encode() in k or anon.encode() in k
        ]
        members = [
            m
            for k in client.scan_iter(match=f"{pipeline.redis_prefix}*", count=1000)
            if client.type(k) in (b"zset", b"hash", b"set")
            for m in _members(client, k)
            if user.encode() in m or anon.encode() in m
        ]
    finally:
        client.close()
    assert left == []
    assert members == []
    listed = pipeline.get("/v1/candidates?limit=500").json()["candidates"]
    assert user not in {e["candidateId"] for e in listed}
    # and the latest topic ends with a tombstone for the candidate; the changes topic says why
    key = f"{pipeline.tenant}:{user}".encode()
    latest = await read_topic(
        pipeline.kafka,
        pipeline.topics.scores_latest,
        until=lambda rs: any(r.key == key and r.value is None for r in rs),
    )
    assert [r.value for r in latest if r.key == key][-1] is None
    changes = await read_topic(
        pipeline.kafka,
        pipeline.topics.scores_changed,
        until=lambda rs: any(r.key == key and b"erasure" in (r.value or b"") for r in rs),
    )
    erasure = [orjson.loads(r.value) for r in changes if r.key == key][-1]
    assert erasure["cause"] == {"type": "erasure", "messageId": None, "event": None}


def _members(client: redis.Redis, key: bytes) -> list[bytes]:
    kind = client.type(key)
    if kind == b"zset":
        return list(client.zrange(key, 0, -1))
    if kind == b"set":
        return list(client.smembers(key))
    return list(client.hkeys(key))


async def test_invalid_records_go_to_the_dlq_and_scoring_continues(pipeline: Pipeline):
    # given garbage, a non-object and an envelope missing fields, written straight to the topic
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.kafka, acks="all")
    await producer.start()
    bad_key = f"{pipeline.tenant}:bad-{uuid.uuid4().hex[:6]}".encode()
    try:
        for value in (
            b"\xff not json",
            b"[1, 2]",
            orjson.dumps({"type": "track", "tenantId": pipeline.tenant}),
        ):
            await producer.send_and_wait(pipeline.topics.interactions, key=bad_key, value=value)
    finally:
        await producer.stop()
    # when a valid event follows on the same key's partition
    cand = f"after-bad-{uuid.uuid4().hex[:6]}"
    events = _events(cand, 2, seed=31)
    pipeline.send([track(e, user_id=cand) for e in events])
    # then the valid event is scored and the three bad ones are in the DLQ with their reasons
    assert (
        pipeline.wait_for(f"/v1/candidates/{cand}", _score_reached(pipeline, events)).status_code
        == 200
    )
    rows = await read_topic(
        pipeline.kafka,
        pipeline.topics.interactions_dlq,
        until=lambda rs: sum(r.key == bad_key for r in rs) >= 3,
    )
    mine = [orjson.loads(r.value) for r in rows if r.key == bad_key]
    assert [r["failureType"] for r in mine] == [
        "decode_error",
        "schema_violation",
        "schema_violation",
    ]
    assert all(r["messages"] and r["payload"] for r in mine)
    assert (
        f'engagement_scorer_events_total{{outcome="dlq",tenant="{pipeline.tenant}"}} 3.0'
        in pipeline.scorer.metrics()
    )
