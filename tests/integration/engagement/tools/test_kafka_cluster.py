"""Three Apache Kafka nodes from the Maven cache (``engagement.tools.kafka_cluster``): topics the
services create there are replicated three times with ``min.insync.replicas=2``, and a node
killed and started again comes back with its data into every in-sync replica set."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from engagement.kafka.admin import ensure_topics
from engagement.kafka.topics import Topics
from engagement.tools import kafka_cluster
from engagement.tools.kafka_cluster import KafkaCluster
from tests.support.kafka import read_topic


@pytest.fixture(scope="module")
def cluster() -> Iterator[KafkaCluster]:
    started = kafka_cluster.start_kafka_cluster(3)
    try:
        yield started
    finally:
        started.stop()


async def _partition(bootstrap: str, topic: str) -> dict[str, Any] | None:
    """The topic's one partition as the cluster describes it (None while its metadata still
    lists none: right after the topic is created)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        (config,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    entries = {e[0]: e[1] for res in config.resources for e in res[4]}
    if not described["partitions"]:
        return None
    (partition,) = described["partitions"]
    return {**partition, "min.insync.replicas": entries["min.insync.replicas"]}


async def _until_in_sync(bootstrap: str, topic: str) -> dict[str, Any]:
    """The partition, once all three replicas are in sync (polled: nothing notifies it)."""
    while True:
        partition = await _partition(bootstrap, topic)
        if partition is not None and len(partition["isr"]) == 3:
            return partition
        await asyncio.sleep(0.2)


async def test_topics_on_three_nodes_have_three_replicas_two_of_them_needed(
    cluster: KafkaCluster, topics: Topics
) -> None:
    # when the services' topics are created at replication factor 3
    await ensure_topics(cluster.bootstrap, topics, partitions=1, replication_factor=3)
    # then each partition has a replica on every node, and an acks=all send needs two of them
    partition = await _until_in_sync(cluster.bootstrap, topics.interactions)
    assert sorted(partition["replicas"]) == [1, 2, 3]
    assert partition["min.insync.replicas"] == "2"


async def test_a_killed_leader_restarts_with_its_data_and_rejoins_the_in_sync_replicas(
    cluster: KafkaCluster, topics: Topics
) -> None:
    # given a record acknowledged by every replica of a partition
    await ensure_topics(cluster.bootstrap, topics, partitions=1, replication_factor=3)
    leader = int((await _until_in_sync(cluster.bootstrap, topics.interactions))["leader"])
    producer = AIOKafkaProducer(
        bootstrap_servers=cluster.bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        await producer.send_and_wait(topics.interactions, key=b"k", value=b"before")
        # when its leader is SIGKILLed, another record is sent, and the node started again
        cluster.node(leader).kill()
        await producer.send_and_wait(topics.interactions, key=b"k", value=b"while away")
    finally:
        await producer.stop()
    await asyncio.to_thread(cluster.node(leader).start)
    # then the node is back in the in-sync replicas, and both records are there
    partition = await _until_in_sync(cluster.bootstrap, topics.interactions)
    assert leader in partition["isr"]
    assert cluster.node(leader).starts == 2
    records = await read_topic(cluster.bootstrap, topics.interactions, count=2)
    assert [r.value for r in records] == [b"before", b"while away"]
