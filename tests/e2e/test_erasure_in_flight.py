"""Erasure while the candidate's events are in flight: on Kafka, accepted, not yet in Redis.

``DELETE`` wipes Redis at once; events accepted before it but scored after it would put the
candidate back (profile, leaderboard entry, snapshots after the tombstone) and send score records
(alerts, webhooks) about a person who asked to be erased. ``DELETE`` fences the ids, so the scorer
withholds those events, and the erasure requests ingest writes into each erased id's partition
have the scorer erase again behind them and mark the fences reached.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import orjson
import pytest
import redis

from engagement.store.erasure_fence import TOKEN
from engagement.store.redis_keys import KeyLayout
from tests.e2e.test_scoring_pipeline import _assert_exact, _events, _raw_reached, _score_reached
from tests.integration.scorer.harness import start_scorer
from tests.integration.scorer.pipeline import Pipeline, counted, running_pipeline, track
from tests.support.kafka import read_topic


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap: str, redis_url: str, tmp_path_factory) -> Iterator[Pipeline]:
    with running_pipeline(kafka_bootstrap, redis_url, tmp_path_factory.mktemp("erasure")) as p:
        yield p


def client_fences(pipeline: Pipeline) -> dict[bytes, bytes]:
    """The fences in Redis (without the hash's change token)."""
    client = redis.Redis.from_url(pipeline.redis_url)
    try:
        stored: dict[bytes, bytes] = client.hgetall(KeyLayout(pipeline.redis_prefix).erasing)  # type: ignore[assignment]
    finally:
        client.close()
    stored.pop(TOKEN.encode(), None)
    return stored


def _wait_erased(pipeline: Pipeline, n: int) -> None:
    response = pipeline.wait_for("/v1/tiers", lambda _r: counted(pipeline, "erased") >= n)
    assert counted(pipeline, "erased") >= n, (response.text, pipeline.scorer.log_tail())


async def test_events_in_flight_during_an_erasure_are_never_scored(pipeline: Pipeline):
    # given a candidate with anonymous history merged in, scored
    anon, user = f"a-{uuid.uuid4().hex[:8]}", f"u-{uuid.uuid4().hex[:8]}"
    scored = _events(user, 3, seed=41)
    pipeline.send([track(e, anonymous_id=anon) for e in scored[:2]])
    identify = {"type": "identify", "userId": user, "anonymousId": anon}
    pipeline.send([identify | {"messageId": uuid.uuid4().hex}])
    pipeline.send([track(scored[2], user_id=user)])
    reached = pipeline.wait_for(f"/v1/candidates/{user}", _raw_reached(pipeline, scored))
    _assert_exact(reached.json(), scored, pipeline.rules)
    # and more of its events accepted while the scorer is down: on Kafka, not in Redis yet
    pipeline.scorer.stop()
    in_flight = _events(user, 4, seed=42)
    pipeline.send([track(e, user_id=user) for e in in_flight[:3]])
    pipeline.send([track(in_flight[3], anonymous_id=anon)])  # in the anonymous id's partition
    # when an admin erases the candidate, and the candidate comes back afterwards
    assert pipeline.delete(f"/v1/candidates/{user}").status_code == 204
    assert pipeline.get(f"/v1/candidates/{user}").status_code == 404
    after = _events(user, 2, seed=43, span_hours=1)
    pipeline.send([track(e, user_id=user) for e in after])
    pipeline.scorer = start_scorer(pipeline.env)
    try:
        _wait_erased(pipeline, 2)  # the candidate's request and its anonymous id's
        response = pipeline.wait_for(f"/v1/candidates/{user}", _score_reached(pipeline, after))
        # then the candidate holds exactly the events sent after the erasure: none in flight
        assert response.status_code == 200, response.text
        body = response.json()
        _assert_exact(body, after, pipeline.rules)
        assert body["sequence"] == len(after)
        ids = {c["messageId"] for c in body["contributions"]}
        assert ids == {e.message_id for e in after}
        # and its anonymous id, whose event in flight landed after the wipe, is gone again
        assert pipeline.get(f"/v1/candidates/anon:{anon}").status_code == 404
        client = redis.Redis.from_url(pipeline.redis_url)
        try:
            left = [
                k
                for k in client.scan_iter(match=f"{pipeline.redis_prefix}*", count=1000)
                if anon.encode() in k
            ]
            keys = KeyLayout(pipeline.redis_prefix)
            pending = [keys.pending_erasure(pipeline.tenant, c) for c in (user, f"anon:{anon}")]
            assert (left, client.exists(*pending)) == ([], 0)
        finally:
            client.close()
        # and the leaderboard knows the candidate by its new events only
        listed = pipeline.get("/v1/candidates?limit=500").json()["candidates"]
        mine = [e for e in listed if e["candidateId"] in (user, f"anon:{anon}")]
        assert [(e["candidateId"], e["score"]) for e in mine] == [(user, body["score"])]
        # and the events in flight were withheld: counted, never scored; both fences reached
        assert counted(pipeline, "erasing") == len(in_flight)
        fences = client_fences(pipeline)
        assert len(fences) == 2 and all(b" " in stamp for stamp in fences.values()), fences
        # and no score record on either topic is about an event in flight
        key = f"{pipeline.tenant}:{user}".encode()
        after_ids = {e.message_id for e in after}
        latest = await read_topic(
            pipeline.kafka,
            pipeline.topics.scores_latest,
            until=lambda rs: any(
                r.key == key
                and r.value
                and orjson.loads(r.value)["cause"]["messageId"] in after_ids
                for r in rs
            ),
        )
        in_flight_ids = {e.message_id for e in in_flight}
        snapshots = [orjson.loads(r.value) for r in latest if r.value]
        assert not [v for v in snapshots if v["cause"]["messageId"] in in_flight_ids]
        # and the changes topic's last erasure record outnumbers every sequence before it
        changes = await read_topic(
            pipeline.kafka,
            pipeline.topics.scores_changed,
            until=lambda rs: (
                sum(r.key == key and b'"erasure"' in (r.value or b"") for r in rs) >= 2
            ),
        )
        records = [orjson.loads(r.value) for r in changes if r.key == key]
        erasures = [k for k, r in enumerate(records) if r["cause"]["type"] == "erasure"]
        before = [r["sequence"] for r in records[: erasures[-1]]]
        assert records[erasures[-1]]["sequence"] > max(before[erasures[0] + 1 :] or [0])
        assert all(r["cause"]["messageId"] in after_ids for r in records[erasures[-1] + 1 :])
        assert not [r for r in records if r["cause"]["messageId"] in in_flight_ids]
    finally:
        pipeline.scorer.stop()
