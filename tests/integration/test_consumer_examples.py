"""The consumer examples of docs/topics.md read what the scorer writes: the confluent-kafka
(librdkafka) one in docs/examples/ats_consumer.py, and Apache Kafka's console consumer from the
cache `make kafka` fills (real broker: the session's)."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from engagement.kafka.admin import ensure_topics
from engagement.kafka.cloudevents import ce_type
from engagement.kafka.score_records import record
from engagement.kafka.topics import Topics
from engagement.model.records import Cause, ScoreChange
from engagement.tools import kafka_jars

ROOT = Path(__file__).resolve().parents[2]


def example() -> object:
    spec = importlib.util.spec_from_file_location(
        "ats_consumer", ROOT / "docs/examples/ats_consumer.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def change(candidate: str, sequence: int, score: int) -> ScoreChange:
    return ScoreChange(
        tenantId="acme",
        candidateId=candidate,
        score=score,
        previousScore=None,
        tier="hot" if score >= 70 else "warm",
        previousTier=None,
        raw=100.0,
        pillars={"entrance": 0.0, "activity": 0.0, "interaction": 100.0},
        channels={"web": 100.0},
        sequence=sequence,
        asOf=datetime(2026, 12, 6, 9, 30, tzinfo=UTC),
        rulesVersion="2026-12",
        cause=Cause(messageId=f"m{sequence}", event="Application Submitted"),
    )


async def published(bootstrap: str, topics: Topics, changes: list[ScoreChange]) -> None:
    """The score records of ``changes``, as the scorer writes them (key, headers, value)."""
    await ensure_topics(bootstrap, topics, partitions=3, replication_factor=1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for c in changes:
            out = record(topics.scores_changed, c, "score.changed")
            headers = [(name, value) for name, value in out.headers]
            await producer.send_and_wait(out.topic, out.value, key=out.key, headers=headers)
    finally:
        await producer.stop()


async def test_the_confluent_kafka_example_stores_each_candidates_records_once_in_order(
    kafka_bootstrap: str,
) -> None:
    # given score records of two candidates, one of them replayed (the same sequence twice)
    topics = Topics(f"cx{uuid.uuid4().hex[:8]}.")
    changes = [change("u1", 1, 55), change("u2", 1, 72), change("u1", 2, 71), change("u1", 2, 71)]
    await published(kafka_bootstrap, topics, changes)
    # when an ATS follows the changes topic with the example
    follow = example().follow  # type: ignore[attr-defined]
    rows = await asyncio.to_thread(follow, kafka_bootstrap, topics.scores_changed, "ats", most=3)
    # then it stores each record once, per candidate in order, with its key, headers and value
    by_key: dict[str, list[int]] = {}
    for row in rows:
        by_key.setdefault(row["key"], []).append(row["value"]["sequence"])
        assert row["headers"]["ce_specversion"] == "1.0"
        assert row["headers"]["ce_type"] == ce_type("score.changed")
        assert row["headers"]["ce_id"] == f"{row['key']}:{row['value']['sequence']}"
        ScoreChange.model_validate(row["value"])
    assert by_key == {"acme:u1": [1, 2], "acme:u2": [1]}


async def test_kafkas_console_consumer_prints_the_keys_headers_and_values(
    kafka_bootstrap: str,
) -> None:
    if not kafka_jars.fetched():
        pytest.fail("the Apache Kafka cache is empty: run `make kafka` (make test does)")
    topics = Topics(f"cc{uuid.uuid4().hex[:8]}.")
    await published(kafka_bootstrap, topics, [change("u9", 1, 80)])
    classpath = str(kafka_jars.cache_dir() / "lib" / "*")
    printed = await asyncio.to_thread(
        subprocess.run,
        [
            "java", "-cp", classpath, "org.apache.kafka.tools.consumer.ConsoleConsumer",
            "--bootstrap-server", kafka_bootstrap, "--topic", topics.scores_changed,
            "--from-beginning", "--max-messages", "1", "--timeout-ms", "30000",
            "--property", "print.key=true", "--property", "print.headers=true",
        ],
        capture_output=True, text=True, timeout=90, check=True,
    )  # fmt: skip
    line = printed.stdout.strip().splitlines()[-1]
    assert f"ce_type:{ce_type('score.changed')}" in line
    assert "\tacme:u9\t" in line and '"sequence":1' in line
