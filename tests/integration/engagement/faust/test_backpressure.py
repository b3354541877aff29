"""Back-pressure through the worker transport (engagement.faust.transport): an agent slower than
its consumer, behind a small stream buffer, still gets every record once and in order."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from engagement.kafka.admin import ensure_topics
from engagement.kafka.topics import Topics
from engagement.tools.localstack import free_port
from tests.integration.scorer.harness import TANSU_TIMEOUTS, ScorerProcess

ROOT = Path(__file__).resolve().parents[4]
PARTITIONS = 3
PER_PARTITION = 1500

Produced = dict[int, list[tuple[int, str]]]  # partition -> (offset, value) in offset order


async def test_a_slow_agent_gets_every_record_once_in_order_and_commits_to_the_end(
    kafka_bootstrap: str, topics: Topics, topic_prefix: str, tmp_path: Path
) -> None:
    # given three partitions holding 1500 records each
    await ensure_topics(kafka_bootstrap, topics, partitions=PARTITIONS, replication_factor=1)
    produced = await produce(kafka_bootstrap, topics.interactions)
    ends = {partition: records[-1][0] + 1 for partition, records in produced.items()}
    # when a worker whose agent is slower than its consumer reads them (buffer of 32 records)
    group = f"{topic_prefix}slow-agent"
    env = slow_agent_env(kafka_bootstrap, topic_prefix, group, tmp_path)
    with running_slow_agent(env, tmp_path / "slow-agent.log") as worker:
        await wait_received(worker, PARTITIONS * PER_PARTITION)
        committed = await wait_committed(kafka_bootstrap, group, topics.interactions, ends)
        report = await received(worker)  # after the commits: a redelivery would show here
    # then each partition's records arrived once each, in offset order
    assert by_partition(report["records"]) == produced
    # and the group's committed offsets reached the end of every partition
    assert committed == ends
    # and the back-pressure paths ran: deliveries waited for room in the full buffer, and the
    # fetcher, with every partition's buffer full, waited for one to drain and was woken by it
    assert report["waitedDeliveries"] > 0, report_counts(report)
    assert report["drainWaits"] > 0, report_counts(report)
    assert report["drainedWaits"] > 0, report_counts(report)


async def produce(bootstrap: str, topic: str) -> Produced:
    """Produce PER_PARTITION records to each partition; return them as the broker stored them."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        values = [(p, f"{p}-{n}") for n in range(PER_PARTITION) for p in range(PARTITIONS)]
        sent = [await producer.send(topic, value.encode(), partition=p) for p, value in values]
        stored = await asyncio.gather(*sent)
    finally:
        await producer.stop()
    produced: Produced = defaultdict(list)
    for (partition, value), metadata in zip(values, stored, strict=True):
        produced[partition].append((metadata.offset, value))
    return {partition: sorted(records) for partition, records in produced.items()}


def by_partition(records: list[list[Any]]) -> Produced:
    """The records the agent got, per partition, in the order it got them."""
    got: Produced = defaultdict(list)
    for partition, offset, value in records:
        got[partition].append((offset, value))
    return dict(got)


def report_counts(report: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in report.items() if key != "records"}


def slow_agent_env(kafka: str, topic_prefix: str, group: str, workdir: Path) -> dict[str, str]:
    """The slow agent's environment: this test's topics and group, batches of 20 records."""
    timeouts = {key.replace("SCORER_", "SLOWAGENT_"): v for key, v in TANSU_TIMEOUTS.items()}
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "KAFKA_TOPIC_PREFIX": topic_prefix,
        "KAFKA_TOPIC_PARTITIONS": str(PARTITIONS),
        "SLOWAGENT_GROUP_ID": group,
        "SLOWAGENT_WEB_PORT": str(free_port()),
        "SLOWAGENT_WEB_HOST": "127.0.0.1",
        "SLOWAGENT_DATA_DIR": str(workdir / "data"),
        "SLOWAGENT_BATCH_SIZE": "20",
        "SLOWAGENT_BATCH_WITHIN": "0.05",
        **timeouts,
    }


@contextlib.contextmanager
def running_slow_agent(env: dict[str, str], log_path: Path) -> Iterator[ScorerProcess]:
    """Run ``tests.integration.engagement.faust.slow_agent`` as a worker process; stop it afterwards."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.engagement.faust.slow_agent"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    worker = ScorerProcess(proc, f"http://127.0.0.1:{env['SLOWAGENT_WEB_PORT']}", log_path)
    try:
        yield worker
    finally:
        worker.stop()


async def received(worker: ScorerProcess) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{worker.web}/received")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def wait_received(worker: ScorerProcess, count: int, timeout: float = 180.0) -> None:
    """Wait until the agent got ``count`` records (fails early if the worker exits)."""
    deadline = time.monotonic() + timeout
    got = 0
    while time.monotonic() < deadline:
        if worker.proc.poll() is not None:
            raise AssertionError(f"worker exited {worker.proc.returncode}:\n{worker.log_tail()}")
        with contextlib.suppress(httpx.TransportError):  # not serving yet
            got = len((await received(worker))["records"])
            if got >= count:
                return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{got} of {count} records after {timeout}s:\n{worker.log_tail()}")


async def wait_committed(
    bootstrap: str, group: str, topic: str, ends: dict[int, int], timeout: float = 60.0
) -> dict[int, int]:
    """Poll the group's committed offsets of ``topic`` until they reach ``ends``; the last read."""
    deadline = time.monotonic() + timeout
    # a consumer in the group that never subscribes: it reads the group's offsets, never joins
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await reader.start()
    try:
        committed: dict[int, int | None] = {}
        while committed != ends and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            committed = {p: await reader.committed(TopicPartition(topic, p)) for p in ends}
        return {p: offset for p, offset in committed.items() if offset is not None}
    finally:
        await reader.stop()
