"""Idle anonymous candidates expire in a running scorer: its timer requests their erasure and the
scorer erases them behind their events, tombstone on the latest topic included; a recent visitor
and an identified candidate stay (a real scorer process, broker and Redis)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import redis

from engagement.kafka.topics import Topics
from engagement.store.redis_keys import KeyLayout
from tests.e2e.test_poison_records import produce, sequence, wait_until
from tests.integration.scorer.expected import TEST_RULES
from tests.integration.scorer.harness import ScorerProcess, new_port, scorer_env, start_scorer
from tests.support.kafka import read_topic


@pytest.fixture
def scorer(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> Iterator[tuple[ScorerProcess, Topics, str]]:
    uid = uuid.uuid4().hex[:10]
    topics, prefix = Topics(f"x{uid}."), f"expiry:{uid}:"
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(TEST_RULES)
    env = scorer_env(
        kafka=kafka_bootstrap,
        redis_url=redis_url,
        topic_prefix=topics.prefix,
        redis_prefix=prefix,
        rules_file=rules_file,
        port=new_port(),
    )
    env.update(SCORER_ANONYMOUS_RETENTION_DAYS="1", SCORER_EXPIRY_INTERVAL="1")
    process = start_scorer(env)
    try:
        yield process, topics, prefix
    finally:
        process.stop()
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
        client.close()


def event(message_id: str, days_ago: float, **ids: str) -> tuple[bytes, bytes]:
    at = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
    value = {
        "type": "track",
        "messageId": message_id,
        "tenantId": "acme",
        "sourceId": "site",
        "channel": "web",
        "receivedAt": datetime.now(UTC).isoformat(),
        "timestamp": at,
        "event": "Application Submitted",
        "userId": ids.get("user"),
        "anonymousId": ids.get("anonymous"),
    }
    identity = ids.get("user") or f"anon:{ids.get('anonymous')}"
    return f"acme:{identity}".encode(), orjson.dumps(value)


def test_an_idle_anonymous_candidate_is_erased_and_the_others_stay(
    kafka_bootstrap: str, redis_url: str, scorer: tuple[ScorerProcess, Topics, str]
) -> None:
    process, topics, prefix = scorer
    client, keys = redis.Redis.from_url(redis_url), KeyLayout(prefix)
    # given a visitor last seen 5 days ago, one seen an hour ago, and a known candidate of
    # 5 days ago, with a retention of 1 day
    records = [
        event("idle", 5, anonymous="idle"),
        event("recent", 1 / 24, anonymous="recent"),
        event("known", 5, user="known"),
    ]
    asyncio.run(produce(kafka_bootstrap, topics.interactions, records))
    assert wait_until(lambda: sequence(client, keys, "acme", "known") == 1), process.log_tail()
    # then the idle visitor is erased, with a tombstone on the latest topic
    gone = keys.candidate("acme", "anon:idle").profile
    assert wait_until(lambda: not client.exists(gone)), process.log_tail()
    latest = asyncio.run(
        read_topic(
            kafka_bootstrap,
            topics.scores_latest,
            until=lambda rs: any(r.key == b"acme:anon:idle" and r.value is None for r in rs),
            timeout=30,
        )
    )
    assert any(r.key == b"acme:anon:idle" and r.value is None for r in latest)
    # and the recent visitor and the known candidate stay
    assert sequence(client, keys, "acme", "anon:recent") == 1
    assert sequence(client, keys, "acme", "known") == 1
    client.close()
