"""Redis Cluster failover under load: a master is SIGKILLed while the scorer scores, its replica
takes over, and the scorer goes on without a restart.

Redis replicates asynchronously: a write a master acknowledged and had not yet sent to its replica
is lost when the replica takes over ("Redis Cluster consistency guarantees", redis.io). Here that
is at most a few events of candidates on the killed master's slots, scored in the moment before
the kill; every other event is scored, and every event sent once the replica took over is too.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import redis
from aiokafka import AIOKafkaProducer
from redis.crc import key_slot

from engagement.kafka.admin import ensure_topics
from engagement.kafka.topics import Topics
from engagement.store.redis_keys import KeyLayout
from engagement.tools.redis_cluster import LocalRedisCluster, start_redis_cluster
from tests.integration.scorer.expected import TEST_RULES
from tests.integration.scorer.harness import new_port, running_scorer, scorer_env

CANDIDATES = 120
RATE = 250  # events/s sent
BEFORE, AFTER = 4.0, 3.0  # seconds of load before the kill, and after the replica took over


def _event(tenant: str, i: int, now: float) -> dict[str, object]:
    t = datetime.fromtimestamp(now - 3600 + i * 0.01, UTC).isoformat()
    return {
        "type": "track", "messageId": f"m{i}", "tenantId": tenant, "sourceId": "site",
        "channel": "web", "receivedAt": t, "timestamp": t, "userId": f"u{i % CANDIDATES}",
        "event": "Job Viewed", "properties": {}, "traits": {}, "context": {},
    }  # fmt: skip


class Load:
    """Events sent at a steady rate, numbered; ``sent`` the count acknowledged by Kafka."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, tenant: str) -> None:
        self.producer, self.topic, self.tenant = producer, topic, tenant
        self.sent = 0
        self.start = time.time()

    async def run(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            batch = [_event(self.tenant, self.sent + k, self.start) for k in range(RATE // 10)]
            for value in batch:
                key = f"{self.tenant}:{value['userId']}".encode()
                await self.producer.send(self.topic, key=key, value=orjson.dumps(value))
            await self.producer.flush()
            self.sent += len(batch)
            await asyncio.sleep(0.1)


def _master_port_of(cluster: LocalRedisCluster, key: str, *, avoid: int | None = None) -> int:
    """The port of the master serving ``key``'s slot, asked of a node other than ``avoid``."""
    port = next(p for p in cluster.ports() if p != avoid)
    client = redis.Redis(port=port, socket_timeout=2)
    try:
        slot = int(client.execute_command("CLUSTER KEYSLOT", key))  # type: ignore[no-untyped-call]
        for start, end, master, *_ in client.execute_command("CLUSTER SLOTS"):  # type: ignore[no-untyped-call]
            if start <= slot <= end:
                return int(master[1])
    finally:
        client.close()
    raise AssertionError(f"no master serves slot {slot}")


async def _until_taken_over(cluster: LocalRedisCluster, key: str, killed: int) -> float:
    """Wait until a replica serves ``key``'s slot (and the cluster is ok); when it did."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _master_port_of(cluster, key, avoid=killed) != killed:
            client = redis.Redis(port=next(p for p in cluster.ports() if p != killed))
            try:
                if client.execute_command("CLUSTER INFO")["cluster_state"] == "ok":  # type: ignore[no-untyped-call]
                    return time.monotonic()
            finally:
                client.close()
        await asyncio.sleep(0.05)
    raise AssertionError("no replica took over within 60 s")


def _scored(cluster: LocalRedisCluster, keys: KeyLayout, tenant: str) -> dict[str, set[str]]:
    """Candidate -> the messageIds its dedupe set holds (the events scored into it)."""
    alive = next(node.address for node in cluster.nodes if node.proc.poll() is None)
    client = redis.RedisCluster.from_url(alive)
    try:
        return {
            f"u{c}": {
                m.decode()
                for m in client.zrange(f"{keys.candidate_base(tenant, f'u{c}')}:d", 0, -1)
            }
            for c in range(CANDIDATES)
        }
    finally:
        client.close()


async def test_a_killed_master_is_replaced_by_its_replica_and_the_scorer_goes_on_without_a_restart(
    kafka_bootstrap: str,
    topics: Topics,
    topic_prefix: str,
    redis_prefix: str,
    unique: str,
    tmp_path: Path,
) -> None:
    # given a Redis Cluster of three masters with a replica each, and a scorer on it under load
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(TEST_RULES)
    tenant, keys = f"f{unique}", KeyLayout(redis_prefix)
    cluster = start_redis_cluster(3, 1, node_timeout_ms=1000)
    await ensure_topics(kafka_bootstrap, topics, partitions=3, replication_factor=1)
    env = scorer_env(
        kafka=kafka_bootstrap, redis_url=cluster.url, topic_prefix=topic_prefix,
        redis_prefix=redis_prefix, rules_file=rules_file, port=new_port(),
    )  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        with running_scorer(env) as scorer:
            load = Load(producer, topics.interactions, tenant)
            await load.run(BEFORE)
            # when the master of u0's slot is SIGKILLed, the load going on
            probe = keys.candidate(tenant, "u0").profile
            killed = _master_port_of(cluster, probe)
            node = next(n for n in cluster.nodes if n.address.endswith(f":{killed}/0"))
            on_master = _candidates_on(cluster, keys, tenant, killed)
            sent_at_kill, killed_at = load.sent, time.monotonic()
            node.proc.kill()
            during = asyncio.create_task(load.run(600))
            taken_over = await _until_taken_over(cluster, probe, killed)
            recovered = await _scored_again(cluster, keys, tenant, on_master, sent_at_kill)
            during.cancel()
            sent_at_takeover = load.sent
            await load.run(AFTER)
            sent = load.sent
            # then, once the scorer caught up, every event is scored but for a few of the
            # killed master's, scored in the moment before the kill (asynchronous replication)
            scored = await _caught_up(cluster, keys, tenant, sent)
            pid_unchanged = scorer.proc.poll() is None
    finally:
        await producer.stop()
        cluster.stop()
    lost = {f"m{i}" for i in range(sent)} - set().union(*scored.values())
    lost_candidates = {f"u{int(m[1:]) % CANDIDATES}" for m in lost}
    on_killed = lost_candidates & on_master
    print(
        f"\nredis failover: {sent} events sent ({sent_at_kill} before the kill, "
        f"{sent_at_takeover - sent_at_kill} until the replica took over), {sent - len(lost)} "
        f"scored, {len(lost)} lost (all of candidates on the killed master: "
        f"{on_killed == lost_candidates}); replica serving {taken_over - killed_at:.2f} s after "
        f"the SIGKILL (cluster-node-timeout 1 s), the scorer scoring its slots again "
        f"{recovered - killed_at:.2f} s after it; scorer restarts: {0 if pid_unchanged else 1}"
    )
    assert pid_unchanged
    assert on_killed == lost_candidates
    assert not {f"m{i}" for i in range(sent_at_kill, sent)} & lost  # nothing sent after the kill
    assert len(lost) <= RATE  # at most the events of the last second before it


def _candidates_on(cluster: LocalRedisCluster, keys: KeyLayout, tenant: str, port: int) -> set[str]:
    """The candidates whose slot the master at ``port`` serves."""
    client = redis.Redis(port=port, socket_timeout=2)
    try:
        ranges = [
            (start, end)
            for start, end, master, *_ in client.execute_command("CLUSTER SLOTS")  # type: ignore[no-untyped-call]
            if int(master[1]) == port
        ]
    finally:
        client.close()
    return {
        f"u{c}"
        for c in range(CANDIDATES)
        if any(
            lo <= key_slot(keys.candidate(tenant, f"u{c}").profile.encode()) <= hi
            for lo, hi in ranges
        )
    }


async def _scored_again(
    cluster: LocalRedisCluster, keys: KeyLayout, tenant: str, on_master: set[str], since: int
) -> float:
    """When an event sent after the kill is first found scored on the killed master's slots."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        scored = _scored(cluster, keys, tenant)
        if any(int(m[1:]) >= since for c in on_master for m in scored[c]):
            return time.monotonic()
        await asyncio.sleep(0.1)
    raise AssertionError("the scorer did not score the killed master's slots again in 60 s")


async def _caught_up(
    cluster: LocalRedisCluster, keys: KeyLayout, tenant: str, sent: int
) -> dict[str, set[str]]:
    """What is scored once the count stops moving with the last event sent scored."""
    last, still, deadline = -1, 0, time.monotonic() + 120
    while time.monotonic() < deadline:
        scored = _scored(cluster, keys, tenant)
        count = sum(len(ids) for ids in scored.values())
        done = f"m{sent - 1}" in scored[f"u{(sent - 1) % CANDIDATES}"]
        still = still + 1 if count == last and done else 0
        if still >= 4:
            return scored
        last = count
        await asyncio.sleep(0.5)
    return _scored(cluster, keys, tenant)
