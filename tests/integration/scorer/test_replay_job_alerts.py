"""Replay gap for job alerts: Redis holds a batch's result, including a (candidate, job) crossing,
but its change records never reached Kafka. The scorer's replay of the batch (every event a
duplicate now) re-publishes the candidate's state with the current states of the jobs its
duplicates name, so the notifier announces the job's crossing once (real broker, Redis and scorer
process; the notifier's handler in process, its Kafka sends captured)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

from engagement.kafka.admin import ensure_topics
from engagement.kafka.topics import Topics
from engagement.model.records import Interaction
from engagement.model.rules import Rules, load_rules
from engagement.store.redis_store import ScoreStore
from services.notifier.delivery_queue import DeliveryQueue
from services.notifier.handler import ChangeHandler, ScoreRecord
from services.notifier.job_state import JobNotifiedStore
from services.notifier.metrics import NotifierMetrics
from services.notifier.publisher import AlertPublisher
from services.notifier.state import NotifiedStore
from tests.integration.notifier.test_exactly_once_alerts import WEBHOOKS, Topic
from tests.integration.scorer.expected import TEST_RULES
from tests.integration.scorer.harness import new_port, running_scorer, scorer_env
from tests.support.kafka import produce_interactions, read_topic


def _event(tenant: str, n: int, event: str, job: str, now: float) -> dict[str, Any]:
    t = datetime.fromtimestamp(now - 60 + n, UTC).isoformat()
    return {
        "type": "track", "messageId": f"u1-{n}", "tenantId": tenant, "sourceId": "site",
        "channel": "web", "receivedAt": t, "timestamp": t, "userId": "u1", "event": event,
        "properties": {"jobId": job}, "traits": {}, "context": {},
    }  # fmt: skip


def _notifier(redis: aioredis.Redis, prefix: str, rules: Rules, topic: Topic) -> ChangeHandler:
    metrics = NotifierMetrics()
    queue = DeliveryQueue(redis, prefix=prefix, retention_s=3600)
    publisher = AlertPublisher(send=topic.send, queue=queue, webhooks=WEBHOOKS, metrics=metrics)

    async def dead_letter(key: bytes, value: bytes) -> None:
        raise AssertionError("no record of this test is bad")

    return ChangeHandler(
        rules=rules,
        state=NotifiedStore(redis, prefix=prefix),
        publisher=publisher,
        metrics=metrics,
        dead_letter=dead_letter,
        jobs=JobNotifiedStore(redis, prefix=prefix),
    )


async def test_a_job_crossing_of_a_batch_whose_records_were_lost_is_announced_once_on_replay(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: aioredis.Redis,
    topics: Topics,
    topic_prefix: str,
    redis_prefix: str,
    unique: str,
    tmp_path: Path,
) -> None:
    # given a batch whose result is in Redis (the scorer died before its records reached Kafka):
    # two applications to J-7 lift u1's profile for it into hot; a page view names J-9 last
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(TEST_RULES)
    rules = load_rules(rules_file)
    tenant, now = f"r{unique}", time.time()
    values = [
        _event(tenant, 0, "Application Submitted", "J-7", now),
        _event(tenant, 1, "Application Submitted", "J-7", now),
        _event(tenant, 2, "Page Viewed", "J-9", now),
    ]
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=rules)
    outcomes = await store.apply_batch([Interaction.model_validate(v) for v in values])
    hot = outcomes[1].jobs[0]
    assert (hot.job_id, hot.tier, hot.previous_tier) == ("J-7", "hot", "warm")
    newest = outcomes[-1].after
    assert newest is not None
    await ensure_topics(kafka_bootstrap, topics, partitions=3, replication_factor=1)
    await produce_interactions(kafka_bootstrap, topics.interactions, values)
    env = scorer_env(
        kafka=kafka_bootstrap,
        redis_url=redis_url,
        topic_prefix=topic_prefix,
        redis_prefix=redis_prefix,
        rules_file=rules_file,
        port=new_port(),
    )

    # when the scorer consumes the batch again, and the notifier takes its records, twice over
    def replayed_to_the_end(records: list[Any]) -> bool:
        return any(orjson.loads(r.value)["sequence"] == newest.sequence for r in records)

    with running_scorer(env):
        changes = await read_topic(
            kafka_bootstrap, topics.scores_changed, until=replayed_to_the_end, timeout=60
        )
    topic = Topic()
    notifier = _notifier(redis_client, redis_prefix, rules, topic)
    batch = [ScoreRecord(r.value, r.timestamp) for r in changes]
    await notifier.handle(batch)
    await notifier.handle(batch)

    # then J-7's crossing into hot is announced once, as the lost record would have (same
    # sequence, hence the same id), from the floor the notifier knew it at; J-9 stays cold
    job_alerts = [a for a in topic.records if "jobId" in a]
    assert [(a["type"], a["jobId"], a["tier"], a["previousTier"]) for a in job_alerts] == [
        ("candidate.job_hot", "J-7", "hot", "cold")
    ]
    assert job_alerts[0]["sequence"] == hot.sequence
