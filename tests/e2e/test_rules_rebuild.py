"""A rules rebuild (docs/operations.md §3): replay the interactions topic into a new key prefix with
the scorer in rebuild mode, carry the sequences over, switch the scorers to it.

The rebuild scores the new rules' formula (another half-life, one event type dropped), erases
again the candidate erased before it, and publishes nothing; after ``engagement rebuild finish``
the first record of the switched scorer is past every sequence the replaced store published.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import orjson
import pytest
import redis
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition

from engagement.kafka.admin import read_partitions
from engagement.model.rules import load_rules
from engagement.model.score_views import CandidateView
from engagement.store.redis_store import ScoreStore
from tests.integration.scorer.expected import TEST_RULES, Sent, expected_raw, load_toml, score_of
from tests.integration.scorer.harness import ENGAGEMENT, ScorerProcess, new_port, start_scorer
from tests.integration.scorer.pipeline import Pipeline, at, counted, running_pipeline, track
from tests.support.kafka import read_topic

# the rebuild's rules: another half-life, and Job Viewed no longer scores
NEW_RULES = (
    TEST_RULES.replace('version = "test-rules-1"', 'version = "test-rules-2"')
    .replace("half_life_days = 1.0", "half_life_days = 3.0")
    .replace('[events."Job Viewed"]\npillar = "entrance"\npoints = 2\ndaily_cap = 50\n', "")
)


@pytest.fixture
def pipeline(kafka_bootstrap: str, redis_url: str, tmp_path) -> Iterator[Pipeline]:
    with running_pipeline(kafka_bootstrap, redis_url, tmp_path) as p:
        yield p


def test_rebuild_scores_the_new_rules_publishes_nothing_and_the_switch_keeps_sequences_rising(
    pipeline: Pipeline, tmp_path
):
    tenant, uid = pipeline.tenant, uuid.uuid4().hex[:8]
    user, jobs, erased = f"u-{uid}", f"j-{uid}", f"e-{uid}"
    anon, visitor = f"a-{uid}", f"v-{uid}"  # folded into user, and into erased
    now = time.time()

    def sent(cand: str, event: str, hours_ago: float) -> Sent:
        return Sent(uuid.uuid4().hex, cand, event, "web", at(now - hours_ago * 3600))

    def identify(user_id: str, anonymous_id: str) -> dict[str, str]:
        return {"type": "identify", "userId": user_id, "anonymousId": anonymous_id,
                "messageId": uuid.uuid4().hex}  # fmt: skip

    # given a live store: a candidate with anonymous history folded in (and a duplicate), one
    # whose events are mostly Job Viewed, and one erased through the API with the anonymous
    # visitor folded into it, whose browser goes on after the erasure (a new profile)
    anonymous = [sent(user, "Article Read", 30), sent(user, "Page Viewed", 29)]
    known = [sent(user, "Webinar Attended", 20), sent(user, "Application Submitted", 2)]
    job_views = [sent(jobs, "Job Viewed", h) for h in (9, 8, 7, 6)] + [sent(jobs, "Page Viewed", 5)]
    pipeline.send([track(e, anonymous_id=anon) for e in anonymous])
    pipeline.send([track(e, user_id=user) for e in known + known[:1]])
    pipeline.send([identify(user, anon)])
    pipeline.send([track(e, user_id=jobs) for e in job_views])
    pipeline.send([track(sent(erased, "Article Read", 3), anonymous_id=visitor)])
    pipeline.send([track(sent(erased, "Application Submitted", 1), user_id=erased)])
    pipeline.send([identify(erased, visitor)])
    _wait(lambda: counted(pipeline) >= 14, "the live scorer took the 14 records")
    assert pipeline.delete(f"/v1/candidates/{erased}").status_code == 204
    _wait(lambda: counted(pipeline, "erased") >= 2, "the live scorer reached both requests")
    pipeline.send([track(sent(visitor, "Page Viewed", 0.5), anonymous_id=visitor)])
    _wait(lambda: counted(pipeline) >= 17, "the live scorer took the visitor's new event")
    ids = (user, jobs, f"anon:{visitor}")
    before = {c: pipeline.get(f"/v1/candidates/{c}").json()["sequence"] for c in ids}
    assert before[jobs] == 5 and before[f"anon:{visitor}"] == 1
    topics = pipeline.topics
    outputs = [topics.scores_changed, topics.scores_latest, topics.interactions_dlq]
    published = _ends(pipeline.kafka, [*outputs, topics.interactions])

    # when a scorer in rebuild mode replays the topic into a new prefix under the new rules
    rules_file = tmp_path / "rules-2.toml"
    rules_file.write_text(NEW_RULES)
    rules = load_toml(rules_file)
    new_prefix = f"{pipeline.redis_prefix}rebuilt:"
    env = pipeline.env | {
        "REDIS_KEY_PREFIX": new_prefix,
        "SCORER_GROUP_ID": f"rebuild-{uid}",
        "RULES_FILE": str(rules_file),
        "SCORER_WEB_PORT": str(new_port()),
    }
    rebuild = start_scorer(env | {"SCORER_REBUILD": "true"})
    try:
        everything = published[topics.interactions]
        _wait(lambda: _counted(rebuild) >= everything, f"rebuild took {everything} records")
        # (events received long ago are no end-to-end latency: the latency alert stays quiet)
        assert "engagement_scorer_end_to_end_seconds_count 0.0" in rebuild.metrics()
    finally:
        rebuild.stop()

    # then it holds the new rules' formula, the merge, and not the erased candidate
    mine = anonymous + known
    view = _view(pipeline, new_prefix, rules_file, user)
    assert view is not None and view.state.sequence == before[user]
    raw = expected_raw(mine, rules, view.state.as_of or 0.0)
    assert abs(view.state.raw - raw) <= 1e-9 * raw
    assert view.state.score == score_of(raw, rules["score_scale"])
    assert view.state.rules_version == "test-rules-2"
    assert view.merged_ids == (f"anon:{anon}",)
    assert _view(pipeline, new_prefix, rules_file, jobs).state.sequence == 1  # type: ignore[union-attr]
    assert _keys(pipeline, f"{new_prefix}{{{tenant}:{erased}}}*") == []
    # and the visitor's event after the erasure (its fence is the DELETE's, not the rebuild's now)
    after_erasure = _view(pipeline, new_prefix, rules_file, f"anon:{visitor}")
    assert after_erasure is not None and after_erasure.state.sequence == 1
    # and it published nothing: no score record, no erasure record or request, no DLQ row
    assert _ends(pipeline.kafka, [*outputs, topics.interactions]) == published

    # when the live scorer stops, the sequences are carried over and the scorers switch
    pipeline.scorer.stop()
    finish = _finish(pipeline.redis_prefix, env)
    assert finish.returncode == 0, finish.stderr
    # user, jobs and the two anonymous ids: jobs had fewer events scored under the new rules
    assert "4 candidates, 1 raised, 0 not rebuilt" in finish.stdout, finish.stdout
    assert _view(pipeline, new_prefix, rules_file, jobs).state.sequence == 5  # type: ignore[union-attr]
    assert _rank_sequence(pipeline, new_prefix, jobs) == 5
    assert _view(pipeline, new_prefix, rules_file, user).state.sequence == before[user]  # type: ignore[union-attr]
    again = _finish(pipeline.redis_prefix, env)
    assert "0 raised" in again.stdout  # idempotent
    pipeline.scorer = start_scorer(env)  # the rebuild's group: it goes on from where it stopped
    try:
        pipeline.send([track(sent(jobs, "Application Submitted", 0.1), user_id=jobs)])
        # then its first record of the candidate is past every one published before
        key = f"{tenant}:{jobs}".encode()

        def of_jobs(records: list) -> list[dict]:
            return [orjson.loads(r.value) for r in records if r.key == key and r.value]

        records = asyncio.run(
            read_topic(
                pipeline.kafka,
                topics.scores_changed,
                until=lambda rs: any(r["sequence"] == 6 for r in of_jobs(rs)),
                timeout=60,
            )
        )
    finally:
        pipeline.scorer.stop()
    sequences = [r["sequence"] for r in of_jobs(records)]
    assert sequences[-1] == 6 and max(sequences[:-1]) == 5, sequences
    assert of_jobs(records)[-1]["rulesVersion"] == "test-rules-2"


def _finish(replaced_prefix: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``engagement rebuild finish`` with the rebuild's environment."""
    command = [ENGAGEMENT, "rebuild", "finish", "--from-prefix", replaced_prefix]
    return subprocess.run(command, env=os.environ | env, capture_output=True, text=True, timeout=60)


def _counted(scorer: ScorerProcess) -> float:
    """Records the scorer counted, whatever their outcome (engagement_scorer_events_total)."""
    lines = scorer.metrics().splitlines()
    return sum(
        float(line.split()[-1])
        for line in lines
        if line.startswith("engagement_scorer_events_total{")
    )


def _wait(done: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.2)


def _ends(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """Records on each topic so far (the sum of its partitions' end offsets)."""

    async def ends() -> dict[str, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await consumer.start()
        try:
            found = {}
            for topic in topics:
                partitions = await read_partitions(bootstrap, topic)
                assert partitions, f"no topic {topic}"
                offsets = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
                found[topic] = sum(offsets.values())
            return found
        finally:
            await consumer.stop()

    return asyncio.run(ends())


def _view(pipeline: Pipeline, prefix: str, rules_file, cand: str) -> CandidateView | None:
    async def view() -> CandidateView | None:
        client = aioredis.Redis.from_url(pipeline.redis_url)
        try:
            store = ScoreStore(client, prefix=prefix, rules=load_rules(rules_file))
            return await store.get_candidate(pipeline.tenant, cand, time.time())
        finally:
            await client.aclose()

    return asyncio.run(view())


def _keys(pipeline: Pipeline, pattern: str) -> list[bytes]:
    client = redis.Redis.from_url(pipeline.redis_url)
    try:
        return list(client.scan_iter(match=pattern, count=1000))
    finally:
        client.close()


def _rank_sequence(pipeline: Pipeline, prefix: str, cand: str) -> int:
    client = redis.Redis.from_url(pipeline.redis_url)
    try:
        return int(client.hget(f"{prefix}{{{pipeline.tenant}}}:seq", cand) or 0)
    finally:
        client.close()
