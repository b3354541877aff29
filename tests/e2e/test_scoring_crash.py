"""Crash safety: SIGKILL the scorer in the middle of a stream, restart it, lose and double nothing."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.test_scoring_pipeline import CHANNELS, EVENTS, _epoch
from tests.integration.scorer.expected import Sent, expected_raw, score_of
from tests.integration.scorer.harness import start_scorer
from tests.integration.scorer.pipeline import Pipeline, at, counted, running_pipeline, track

N_EVENTS, N_CANDIDATES, PER_REQUEST = 3000, 50, 100


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap: str, redis_url: str, tmp_path_factory) -> Iterator[Pipeline]:
    with running_pipeline(kafka_bootstrap, redis_url, tmp_path_factory.mktemp("crash")) as p:
        yield p


def test_sigkill_mid_stream_then_restart_scores_every_event_exactly_once(pipeline: Pipeline):
    # given 3,000 events over 50 candidates, in the order a busy site would send them
    rng = random.Random(42)
    now = time.time()
    candidates = [f"c{i}-{uuid.uuid4().hex[:6]}" for i in range(N_CANDIDATES)]
    events = [
        Sent(
            uuid.uuid4().hex,
            rng.choice(candidates),
            rng.choice(EVENTS),
            rng.choice(CHANNELS),
            at(now - rng.uniform(60, 40 * 3600)),
        )
        for _ in range(N_EVENTS)
    ]
    requests = [
        [track(e, user_id=e.candidate) for e in events[i : i + PER_REQUEST]]
        for i in range(0, N_EVENTS, PER_REQUEST)
    ]
    # when the scorer is SIGKILLed while it is working through them
    with ThreadPoolExecutor(2) as pool:
        sending = pool.map(pipeline.send, requests)
        deadline = time.monotonic() + 120
        while counted(pipeline) < N_EVENTS * 0.2 and time.monotonic() < deadline:
            time.sleep(0.05)
        processed_before_kill = counted(pipeline)
        pipeline.scorer.kill()
        list(sending)
    assert 0 < processed_before_kill < N_EVENTS
    # and restarted (it replays everything since its last commit)
    pipeline.scorer = start_scorer(pipeline.env)
    try:
        # then every candidate's score is exactly the formula: nothing lost, nothing counted twice
        for cand in candidates:
            mine = [e for e in events if e.candidate == cand]
            response = pipeline.wait_for(
                f"/v1/candidates/{cand}",
                lambda r, mine=mine: r.status_code == 200 and r.json()["sequence"] == len(mine),
            )
            body = response.json()
            raw = expected_raw(mine, pipeline.rules, _epoch(body["asOf"]))
            assert (body["sequence"], body["score"]) == (
                len(mine),
                score_of(raw, pipeline.rules["score_scale"]),
            )
            assert abs(body["raw"] - raw) <= 1e-9 * max(1.0, abs(raw))
    finally:
        pipeline.scorer.stop()
