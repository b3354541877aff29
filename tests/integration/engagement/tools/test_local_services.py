"""The test harness itself: a real broker and a real Redis are there, and topics get created."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from engagement.kafka.admin import ensure_topics
from tests.support.kafka import read_topic


async def test_created_topics_carry_records(kafka_bootstrap, topics):
    # given the project's topics, created as a service does at startup
    await ensure_topics(kafka_bootstrap, topics, partitions=3, replication_factor=1)
    await ensure_topics(kafka_bootstrap, topics, partitions=3, replication_factor=1)  # idempotent
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        # when a record is produced with headers
        await producer.send_and_wait(
            topics.interactions, key=b"acme:u1", value=b"{}", headers=[("ce_id", b"m1")]
        )
    finally:
        await producer.stop()
    # then it can be read back with its key and headers
    records = await read_topic(kafka_bootstrap, topics.interactions, count=1)
    assert [(r.key, r.value, r.headers) for r in records] == [
        (b"acme:u1", b"{}", (("ce_id", b"m1"),))
    ]


async def test_redis_answers(redis_client, redis_prefix):
    await redis_client.set(f"{redis_prefix}probe", "1")
    assert await redis_client.get(f"{redis_prefix}probe") == b"1"
