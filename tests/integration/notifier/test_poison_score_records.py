"""What the notifier cannot use is set aside, and the rest goes on: an unparseable score record
and one whose candidate's state in Redis is corrupt, among crossings of two tenants; a stored
delivery no code foresaw, beside a good one. And SIGTERM stops it while Redis is frozen. One
notifier subprocess per test, real broker and Redis."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from engagement.kafka.topics import Topics
from engagement.store.connection import connect
from engagement.store.redis_keys import KeyLayout
from engagement.tools import localstack
from services.notifier.delivery_queue import DeliveryQueue
from tests.conftest import SESSION_ID
from tests.integration.notifier.conftest import create_topics, score_change, webhooks_toml
from tests.integration.notifier.test_alerts_and_webhooks import eventually
from tests.support.kafka import read_topic

TENANTS = ("t-one", "t-two")


async def test_poison_score_records_go_to_the_dlq_and_every_crossing_is_alerted(
    kafka_bootstrap: str, redis_url: str, receiver, make_notifier
) -> None:
    module = uuid.uuid4().hex[:8]
    topics, redis_prefix = Topics(f"tp{module}."), f"test:{SESSION_ID}p{module}:"
    await create_topics(kafka_bootstrap, topics)
    # given a candidate whose notifier state is corrupt (Redis answers WRONGTYPE)
    client = connect(redis_url)
    await client.set(KeyLayout(redis_prefix).notified("t-one:broken"), "not a hash")
    notifier = make_notifier(
        prefix=topics.prefix,
        redis_prefix=redis_prefix,
        webhooks=webhooks_toml(receiver, {"ok": {"tenants": list(TENANTS)}}),
    )
    await asyncio.to_thread(notifier.start)
    # when an unparseable record and the corrupt candidate's crossing come before good ones
    records = [(b"t-one:garbled", b"{not json")]
    crossings = [("t-one", "broken")] + [(t, f"hot-{k}") for k in range(4) for t in TENANTS]
    for tenant, candidate in crossings:
        change = score_change(tenant, candidate, 1, score=90, tier="hot", previous="cold")
        records.append((f"{tenant}:{candidate}".encode(), change.model_dump_json().encode()))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topics.scores_changed, key=key, value=value)
    finally:
        await producer.stop()
    # then every good crossing is alerted
    good = {f"{t}:hot-{k}" for k in range(4) for t in TENANTS}
    alerts = await read_topic(
        kafka_bootstrap,
        topics.candidate_alerts,
        until=lambda rs: good <= {r.key.decode() for r in rs},
        timeout=60,
    )
    assert good <= {r.key.decode() for r in alerts}, notifier.log_tail()
    # and the two bad records alone are in the scores DLQ, each with its reason
    rows = await read_topic(kafka_bootstrap, topics.scores_dlq, count=2, timeout=30)
    by_key = {r.key.decode(): orjson.loads(r.value) for r in rows}
    assert set(by_key) == {"t-one:garbled", "t-one:broken"}
    assert by_key["t-one:garbled"]["failureType"] == "schema_violation"
    assert by_key["t-one:broken"]["failureType"] == "processing_error"
    assert "WRONGTYPE" in by_key["t-one:broken"]["messages"][0]
    assert by_key["t-one:broken"]["processor"] == "engagement-notifier"
    # and they are counted
    metrics = notifier.metrics()
    for failure_type in ("schema_violation", "processing_error"):
        line = f'engagement_notifier_bad_records_total{{failure_type="{failure_type}"}} 1.0'
        assert line in metrics
    await client.aclose()


async def test_sigterm_stops_the_notifier_within_its_grace_while_redis_is_frozen(
    kafka_bootstrap: str, receiver, make_notifier
) -> None:
    module = uuid.uuid4().hex[:8]
    topics = Topics(f"ts{module}.")
    await create_topics(kafka_bootstrap, topics)
    server = localstack.start_redis()  # a Redis of its own: it is frozen
    try:
        notifier = make_notifier(
            prefix=topics.prefix,
            redis_prefix=f"test:{SESSION_ID}s{module}:",
            webhooks=webhooks_toml(receiver, {"ok": {"tenants": ["t-one"]}}),
            REDIS_URL=server.address,
        )
        await asyncio.to_thread(notifier.start)
        # given Redis frozen while the notifier has a crossing to handle (it retries its batch)
        server.proc.send_signal(signal.SIGSTOP)
        change = score_change("t-one", "c1", 1, score=90, tier="hot", previous="cold")
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(
                topics.scores_changed, key=b"t-one:c1", value=change.model_dump_json().encode()
            )
        finally:
            await producer.stop()
        await asyncio.sleep(3)
        # when it is told to stop, then it exits within the grace a process manager gives it
        assert notifier.proc is not None
        notifier.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(notifier.proc.wait, 10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the notifier ignored SIGTERM for 10 s:\n{notifier.log_tail()}")
    finally:
        server.proc.send_signal(signal.SIGCONT)
        server.stop()


async def test_a_delivery_no_code_foresaw_is_quarantined_and_the_others_are_delivered(
    kafka_bootstrap: str, redis_url: str, receiver, make_notifier
) -> None:
    module = uuid.uuid4().hex[:8]
    topics, redis_prefix = Topics(f"tw{module}."), f"test:{SESSION_ID}w{module}:"
    await create_topics(kafka_bootstrap, topics)
    notifier = make_notifier(
        prefix=topics.prefix,
        redis_prefix=redis_prefix,
        webhooks=webhooks_toml(receiver, {f"ok{module}": {"tenants": ["t-one"]}}),
        NOTIFIER_POISON_RETRIES="0",
    )
    await asyncio.to_thread(notifier.start)
    # given a stored delivery whose body cannot be signed (not UTF-8) beside a good one
    client = connect(redis_url)
    queue = DeliveryQueue(client, prefix=redis_prefix, retention_s=3600)
    good = orjson.dumps({"type": "candidate.hot", "data": {"tenantId": "t-one"}})
    for delivery, body in (("bad", b"\xff\xfe not utf-8"), ("good", good)):
        await queue.enqueue(
            delivery_id=f"{delivery}-{module}",
            endpoint_id=f"ok{module}",
            msg_id=f"{delivery}-{module}",
            record_key="t-one:c1",
            body=body,
            now_ms=int(time.time() * 1000),
        )
    # then the good one is delivered
    await eventually(lambda: receiver.on(f"/hooks/ok{module}"))
    assert [r.body for r in receiver.on(f"/hooks/ok{module}")] == [good], notifier.log_tail()
    # and the bad one is in the webhook DLQ, quarantined with its error
    [row] = await read_topic(kafka_bootstrap, topics.webhooks_dlq, count=1, timeout=30)
    dead = orjson.loads(row.value)
    assert (dead["deliveryId"], dead["outcome"]) == (f"bad-{module}", "quarantined")
    assert "UnicodeDecodeError" in dead["lastError"]
    await client.aclose()
