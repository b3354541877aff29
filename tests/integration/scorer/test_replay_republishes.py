"""Replay gap: Redis holds a batch's result but its change records never reached Kafka."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import redis.asyncio as aioredis

from engagement.kafka.admin import ensure_topics
from engagement.kafka.topics import Topics
from engagement.model.records import Interaction
from engagement.model.rules import load_rules
from engagement.store.redis_store import ScoreStore
from tests.integration.scorer.expected import TEST_RULES
from tests.integration.scorer.harness import new_port, running_scorer, scorer_env
from tests.support.kafka import produce_interactions, read_topic


def _interaction(tenant: str, user: str, n: int, now: float) -> dict[str, object]:
    t = datetime.fromtimestamp(now - 60 + n, UTC).isoformat()
    return {
        "type": "track", "messageId": f"{user}-{n}", "tenantId": tenant, "sourceId": "site",
        "channel": "web", "receivedAt": t, "timestamp": t, "userId": user,
        "event": "Application Submitted", "properties": {}, "traits": {}, "context": {},
    }  # fmt: skip


async def test_replayed_batch_republishes_the_current_state_with_its_sequence(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: aioredis.Redis,
    topics: Topics,
    topic_prefix: str,
    redis_prefix: str,
    unique: str,
    tmp_path: Path,
) -> None:
    # given events whose result is in Redis (the scorer died before its records were flushed)
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(TEST_RULES)
    tenant, user, now = f"r{unique}", "u1", time.time()
    values = [_interaction(tenant, user, n, now) for n in range(3)]
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=load_rules(rules_file))
    outcomes = await store.apply_batch([Interaction.model_validate(v) for v in values])
    assert outcomes[-1].after is not None
    current = outcomes[-1].after
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
    # when the scorer consumes the same events again (every one is a duplicate now)
    with running_scorer(env):
        changes = await read_topic(kafka_bootstrap, topics.scores_changed, count=1, timeout=60)
    # then the candidate's current state is published as a change record with its sequence
    # (once per replayed batch: how the three events split into batches is up to the consumer,
    # and consumers drop the repeats by sequence)
    assert changes
    for record in changes:
        change = orjson.loads(record.value)
        assert (change["candidateId"], change["sequence"]) == (user, current.sequence)
        assert (change["score"], change["tier"]) == (current.score, current.tier)
        assert change["previousTier"] is None
        assert dict(record.headers)["ce_id"] == f"{tenant}:{user}:{current.sequence}".encode()
