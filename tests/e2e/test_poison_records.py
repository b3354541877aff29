"""Poison records end to end: a real scorer process, two tenants, a Redis of its own.

Two records that stopped all scoring before: an identify whose userId holds U+001F (written
straight to the topic, as an older ingest or another producer could) and an event of a candidate
whose state in Redis is corrupt. Sent among good events of both tenants, the good ones are scored,
the corrupt one alone is quarantined to the DLQ and counted, and the scorer stays ready; once the state is
repaired, ``engagement dlq replay`` scores it. Then SIGTERM while Redis is frozen stops the scorer
within its 10 s grace.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
from aiokafka import AIOKafkaProducer

from engagement.kafka.topics import Topics
from engagement.store.redis_keys import KeyLayout
from engagement.tools import localstack
from tests.integration.scorer.expected import TEST_RULES
from tests.integration.scorer.harness import (
    ENGAGEMENT,
    ScorerProcess,
    new_port,
    scorer_env,
    start_scorer,
)
from tests.support.kafka import read_topic

TENANTS = ("acme", "globex")


@pytest.fixture
def own_redis() -> Iterator[localstack.LocalProcess]:
    """A Redis for this test alone: it is frozen and thawed."""
    server = localstack.start_redis()
    try:
        yield server
    finally:
        server.proc.send_signal(signal.SIGCONT)
        server.stop()


@pytest.fixture
def scorer(
    kafka_bootstrap: str, own_redis: localstack.LocalProcess, tmp_path: Path
) -> Iterator[tuple[ScorerProcess, Topics, str]]:
    uid = uuid.uuid4().hex[:10]
    topic_prefix, redis_prefix = f"p{uid}.", f"poison:{uid}:"
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(TEST_RULES)
    env = scorer_env(
        kafka=kafka_bootstrap,
        redis_url=own_redis.address,
        topic_prefix=topic_prefix,
        redis_prefix=redis_prefix,
        rules_file=rules_file,
        port=new_port(),
    )
    process = start_scorer(env)
    try:
        yield process, Topics(topic_prefix), redis_prefix
    finally:
        process.stop()


def interaction(tenant: str, message_id: str, **ids: Any) -> tuple[bytes, bytes]:
    """An interaction record (key, value) as ingest writes it, received now."""
    now = datetime.now(UTC).isoformat()
    kind = "identify" if ids.get("kind") == "identify" else "track"
    value: dict[str, Any] = {
        "type": kind,
        "messageId": message_id,
        "tenantId": tenant,
        "sourceId": "site",
        "channel": "web",
        "receivedAt": now,
        "timestamp": now,
        "userId": ids.get("user"),
        "anonymousId": ids.get("anonymous"),
    }
    if kind == "track":
        value["event"] = "Application Submitted"
    identity = ids.get("user") or f"anon:{ids.get('anonymous')}"
    return f"{tenant}:{identity}".encode(), orjson.dumps(value)


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def sequence(client: redis.Redis, keys: KeyLayout, tenant: str, candidate: str) -> int:
    value = client.hget(keys.candidate(tenant, candidate).profile, "s")
    return 0 if value is None else int(value)


def wait_until(condition: Any, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)
    return bool(condition())


def test_poison_records_are_set_aside_and_every_tenant_goes_on_being_scored(
    kafka_bootstrap: str,
    own_redis: localstack.LocalProcess,
    scorer: tuple[ScorerProcess, Topics, str],
) -> None:
    process, topics, prefix = scorer
    client = redis.Redis.from_url(own_redis.address)
    keys = KeyLayout(prefix)
    # given a candidate whose state in Redis is corrupt
    client.set(keys.candidate("acme", "broken").profile, "not a hash")
    # when the poison records come first, then good events of both tenants
    poison = [
        interaction("acme", "anon-visit", anonymous="sep-anon"),
        interaction(
            "acme", "sep-identify", kind="identify", anonymous="sep-anon", user="sep\x1fuser"
        ),
        interaction("acme", "broken-event", user="broken"),
    ]
    good = [interaction(t, f"{t}-{k}", user=f"good-{k}") for k in range(6) for t in TENANTS]
    asyncio.run(produce(kafka_bootstrap, topics.interactions, poison + good))
    # then every good event is scored
    assert wait_until(
        lambda: all(sequence(client, keys, t, f"good-{k}") == 1 for k in range(6) for t in TENANTS)
    ), process.log_tail()
    # and the U+001F identify is no poison: the visitor's points are the user's
    assert wait_until(lambda: sequence(client, keys, "acme", "sep\x1fuser") >= 1)
    # and the corrupt candidate's event alone is in the DLQ, with its reason
    rows = asyncio.run(
        read_topic(
            kafka_bootstrap,
            topics.interactions_dlq,
            until=lambda rs: any(r.key == b"acme:broken" for r in rs),
            timeout=30,
        )
    )
    quarantined = [orjson.loads(r.value) for r in rows]
    assert [row["origin"]["key"] for row in quarantined] == ["acme:broken"]
    assert quarantined[0]["failureType"] == "processing_error"
    assert "WRONGTYPE" in quarantined[0]["messages"][0]
    # and it is counted, and the scorer is ready
    metrics = process.metrics()
    assert (
        'engagement_scorer_quarantined_total{failure_type="processing_error",tenant="acme"} 1.0'
        in metrics
    )
    assert httpx.get(f"{process.web}/readyz", timeout=10).status_code == 200
    # and once the state is repaired, replaying the DLQ scores the record
    client.delete(keys.candidate("acme", "broken").profile)
    replayed = subprocess.run(
        [ENGAGEMENT, "dlq", "replay", "--topic", "interactions"],
        env=process_env(kafka_bootstrap, topics),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "       1  replayed" in replayed.stdout, replayed.stdout
    assert wait_until(lambda: sequence(client, keys, "acme", "broken") == 1), process.log_tail()
    client.close()


def process_env(kafka_bootstrap: str, topics: Topics) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": topics.prefix,
    }


def test_sigterm_stops_the_scorer_within_its_grace_while_redis_is_frozen(
    kafka_bootstrap: str,
    own_redis: localstack.LocalProcess,
    scorer: tuple[ScorerProcess, Topics, str],
) -> None:
    process, topics, _ = scorer
    # given Redis frozen while the scorer has events to score (it retries their batch)
    own_redis.proc.send_signal(signal.SIGSTOP)
    asyncio.run(
        produce(kafka_bootstrap, topics.interactions, [interaction("acme", "m1", user="u1")])
    )
    time.sleep(3)
    # when the scorer is told to stop
    os.killpg(process.proc.pid, signal.SIGTERM)
    # then it exits within the grace a process manager gives it (nothing was committed that
    # was not done: the batch is replayed by the next scorer)
    try:
        process.proc.wait(10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the scorer ignored SIGTERM for 10 s:\n{process.log_tail()}")
