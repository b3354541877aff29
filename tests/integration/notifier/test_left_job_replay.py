"""A job the candidate left in a batch whose records were lost: the scorer dropped its weakest job
profile (past ``SCORER_JOBS_PER_CANDIDATE``) while the notifier held the candidate hot for it, and
died after the Redis write, before its records reached Kafka. The replay of the batch (every event
a duplicate) re-publishes the drop, so the notifier announces the ``candidate.job_cooled`` the lost
record would have, once (real Redis; the scorer's store and record building and the notifier's
handler in process, the alerts topic captured)."""

from __future__ import annotations

import time
import tomllib
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from engagement.model.records import Interaction
from engagement.model.rules import Rules, parse_rules
from engagement.model.score_views import ApplyOutcome
from engagement.store.redis_store import ScoreStore
from services.notifier.handler import ScoreRecord
from services.scorer.score_changes import score_records
from tests.integration.notifier.test_exactly_once_alerts import Topic
from tests.integration.scorer.expected import TEST_RULES
from tests.integration.scorer.test_replay_job_alerts import _notifier

# a job is hot from a job score of 20: one webinar (12 points: 21) for J-7, one application
# (40 points: 55) for J-9
JOB_TIERS = """
[[job_tiers]]
name = "cold"
enter = 1
exit = 1

[[job_tiers]]
name = "hot"
enter = 20
exit = 15
"""


def _event(tenant: str, n: int, event: str, job: str, now: float) -> Interaction:
    t = datetime.fromtimestamp(now - 60 + n, UTC).isoformat()
    return Interaction.model_validate({
        "type": "track", "messageId": f"u1-{n}", "tenantId": tenant, "sourceId": "site",
        "channel": "web", "receivedAt": t, "timestamp": t, "userId": "u1", "event": event,
        "properties": {"jobId": job}, "traits": {}, "context": {},
    })  # fmt: skip


def _records(outcomes: list[ApplyOutcome]) -> list[ScoreRecord]:
    """What the scorer publishes on the changes topic for a batch's outcomes."""
    out = score_records(
        outcomes, changes_topic="changes", latest_topic="latest", floor_of=lambda _: "cold"
    )
    now_ms = int(time.time() * 1000)
    return [ScoreRecord(r.value, now_ms) for r in out if r.topic == "changes" and r.value]


async def test_a_job_left_in_a_batch_whose_records_were_lost_is_announced_cooled_on_replay(
    redis_client: aioredis.Redis, redis_prefix: str, unique: str
) -> None:
    # given u1 announced hot for J-7, with at most one job profile per candidate
    rules: Rules = parse_rules(tomllib.loads(TEST_RULES + JOB_TIERS))
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=rules, jobs_kept=1)
    topic = Topic()
    notifier = _notifier(redis_client, redis_prefix, rules, topic)
    tenant, now = f"r{unique}", time.time()
    first = await store.apply_batch([_event(tenant, 0, "Webinar Attended", "J-7", now)])
    await notifier.handle(_records(first))
    assert [(a["type"], a["jobId"]) for a in topic.records] == [("candidate.job_hot", "J-7")]
    # and a batch applied to Redis whose records never reached Kafka: an application to J-9
    # makes it u1's one job, dropping J-7
    lost = [_event(tenant, 1, "Application Submitted", "J-9", now)]
    applied = await store.apply_batch(lost)
    left = [s for s in applied[0].jobs if s.removed]
    assert [s.job_id for s in left] == ["J-7"]

    # when the scorer replays the batch and the notifier takes its records, twice over
    replayed = await store.apply_batch(lost)
    assert replayed[0].outcome == "duplicate"
    records = _records(replayed)
    await notifier.handle(records)
    await notifier.handle(records)

    # then J-7's cooling is announced once, as the lost record would have (its sequence, so
    # its id), because u1 left the job; J-9's crossing into hot once
    job_alerts: list[dict[str, Any]] = [a for a in topic.records[1:] if "jobId" in a]
    found = [(a["type"], a["jobId"], a["tier"], a["previousTier"]) for a in job_alerts]
    assert sorted(found) == [
        ("candidate.job_cooled", "J-7", "cold", "hot"),
        ("candidate.job_hot", "J-9", "hot", "cold"),
    ]
    cooled = next(a for a in job_alerts if a["jobId"] == "J-7")
    assert cooled["sequence"] == left[0].sequence
    assert cooled["cause"]["type"] == "left"
