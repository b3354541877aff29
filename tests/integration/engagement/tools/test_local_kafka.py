"""Apache Kafka from the Maven cache (engagement.tools.local_kafka), and what the services learn from a
broker: whether it takes idempotent producers, and the settings of the topics they create."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from engagement.kafka.admin import ensure_topics, idempotence_supported, producer_idempotence
from engagement.kafka.topics import Topics
from engagement.tools import local_kafka, localstack
from tests.support.kafka import read_topic


async def test_apache_kafka_takes_idempotent_records_and_leaves_no_data_when_stopped(
    topics: Topics,
) -> None:
    # given Apache Kafka started from the cache (fetched first if need be), the topics on it
    broker = local_kafka.start_kafka()
    try:
        await ensure_topics(broker.address, topics, partitions=3, replication_factor=1)
        # then producers there are idempotent unless told otherwise
        assert await idempotence_supported(broker.address) is True
        assert await producer_idempotence("auto", broker.address) is True
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.address, acks="all", enable_idempotence=True
        )
        await producer.start()
        try:
            # when an idempotent producer sends a record
            await producer.send_and_wait(topics.interactions, key=b"acme:u1", value=b"{}")
        finally:
            await producer.stop()
        # then it is read back
        records = await read_topic(broker.address, topics.interactions, count=1)
        assert [(r.key, r.value) for r in records] == [(b"acme:u1", b"{}")]
    finally:
        broker.stop()
    # and once stopped, its data directory is gone
    assert broker.workdir is not None and not broker.workdir.exists()


async def test_producers_against_tansu_are_not_idempotent() -> None:
    tansu = localstack.start_tansu()
    try:
        assert await idempotence_supported(tansu.address) is False
        assert await producer_idempotence("auto", tansu.address) is False
    finally:
        tansu.stop()


async def test_an_explicit_idempotence_setting_is_not_asked_of_the_broker() -> None:
    unreachable = f"127.0.0.1:{localstack.free_port()}"
    assert await producer_idempotence("true", unreachable) is True
    assert await producer_idempotence("false", unreachable) is False


async def test_topics_are_created_with_min_insync_replicas(
    kafka_bootstrap: str, topics: Topics
) -> None:
    # when the topics are created at replication factor 1
    await ensure_topics(kafka_bootstrap, topics, partitions=3, replication_factor=1)
    # then the broker holds min.insync.replicas=1 for them (a factor of 3 gives 2)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, topics.interactions)
        described = await admin.describe_configs([resource])
    finally:
        await admin.close()
    entries = {e[0]: e[1] for r in described for res in r.resources for e in res[4]}
    assert entries["min.insync.replicas"] == "1"
