"""The lag exporter reads the consumer groups' lag from the real broker, consumer or none."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from prometheus_client.parser import text_string_to_metric_families

from engagement.kafka.admin import ensure_topics
from engagement.kafka.topics import Topics
from engagement.tools.localstack import free_port
from services.lag_exporter.broker import BrokerOffsets
from services.lag_exporter.exporter import LagExporter
from services.lag_exporter.main import serve
from services.lag_exporter.settings import LagExporterSettings

PARTITIONS = 2


@pytest.fixture
async def settings(kafka_bootstrap: str, topics: Topics, topic_prefix: str) -> LagExporterSettings:
    await ensure_topics(kafka_bootstrap, topics, partitions=PARTITIONS, replication_factor=1)
    return LagExporterSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=topic_prefix,
        lag_exporter_host="127.0.0.1",
        lag_exporter_port=free_port(),
    )


@pytest.fixture
async def exporter(settings: LagExporterSettings) -> AsyncIterator[LagExporter]:
    source = BrokerOffsets(settings.kafka_bootstrap_servers, timeout=20)
    yield LagExporter(source, settings.watched())
    await source.close()


async def _produce(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for n in range(count):
            await producer.send_and_wait(topic, b"{}", key=f"acme:u{n}".encode())
    finally:
        await producer.stop()


async def _commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commit as the group would after consuming up to ``offsets`` (no member joins)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
    finally:
        await consumer.stop()


def _samples(text: str, family: str) -> dict[tuple[str, str], float]:
    """(group, partition) -> value of one family in an exposition."""
    return {
        (s.labels["group"], s.labels["partition"]): s.value
        for f in text_string_to_metric_families(text)
        if f.name == family
        for s in f.samples
    }


async def _lag(exporter: LagExporter, group: str) -> float:
    text = (await exporter.exposition()).decode()
    return sum(
        v for (g, _), v in _samples(text, "engagement_consumer_group_lag").items() if g == group
    )


async def test_lag_rises_while_nobody_consumes_and_falls_when_the_group_commits(
    settings: LagExporterSettings, exporter: LagExporter
) -> None:
    scorer, notifier = (w.group for w in settings.watched())
    topic = settings.topics.interactions
    # given an interactions topic nobody consumes yet: no lag
    assert await _lag(exporter, scorer) == 0
    # when records are produced and no scorer runs, then the lag rises by each of them
    await _produce(settings.kafka_bootstrap_servers, topic, 6)
    assert await _lag(exporter, scorer) == 6
    await _produce(settings.kafka_bootstrap_servers, topic, 4)
    assert await _lag(exporter, scorer) == 10
    # when the group commits one partition to its end, then the lag falls by that partition's
    offsets = await exporter.source.read(scorer, topic)
    first = offsets[0]
    await _commit(settings.kafka_bootstrap_servers, scorer, {TopicPartition(topic, 0): first.high})
    assert await _lag(exporter, scorer) == 10 - first.high
    # and when it commits every partition to its end, then no lag is left
    ends = {TopicPartition(topic, o.partition): o.high for o in offsets}
    await _commit(settings.kafka_bootstrap_servers, scorer, ends)
    assert await _lag(exporter, scorer) == 0
    # and the notifier's group, on its own topic, was never behind
    assert await _lag(exporter, notifier) == 0


async def test_every_partition_of_both_groups_is_a_series_with_its_offset(
    settings: LagExporterSettings, exporter: LagExporter
) -> None:
    # given 3 records on the changes topic, none consumed by the notifier
    scorer, notifier = (w.group for w in settings.watched())
    await _produce(settings.kafka_bootstrap_servers, settings.topics.scores_changed, 3)
    # when scraped
    text = (await exporter.exposition()).decode()
    # then each group has one lag and one offset series per partition
    expected = {(g, str(p)) for g in (scorer, notifier) for p in range(PARTITIONS)}
    assert set(_samples(text, "engagement_consumer_group_lag")) == expected
    assert set(_samples(text, "engagement_consumer_group_offset")) == expected
    assert await _lag(exporter, notifier) == 3


async def test_a_broker_that_does_not_answer_leaves_the_lag_absent_and_counts_an_error() -> None:
    # given an exporter pointed at a port where no broker listens
    settings = LagExporterSettings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    source = BrokerOffsets(settings.kafka_bootstrap_servers, timeout=5)
    exporter = LagExporter(source, settings.watched())
    # when scraped
    text = (await exporter.exposition()).decode()
    await source.close()
    # then no lag series is served (absent() rules fire) and the failure is counted
    assert _samples(text, "engagement_consumer_group_lag") == {}
    assert "engagement_lag_exporter_errors_total 1.0" in text


async def test_the_command_serves_metrics_liveness_and_readiness_over_http(
    settings: LagExporterSettings,
) -> None:
    # given the exporter's HTTP server
    started = asyncio.Event()
    task = asyncio.create_task(serve(settings, started=started))
    await asyncio.wait_for(started.wait(), 30)
    base = f"http://127.0.0.1:{settings.lag_exporter_port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            # when probed and scraped, then it is alive, ready and serves both groups' lag
            assert (await client.get("/livez")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200
            metrics = (await client.get("/metrics")).text
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    groups = {g for g, _ in _samples(metrics, "engagement_consumer_group_lag")}
    assert groups == {w.group for w in settings.watched()}
