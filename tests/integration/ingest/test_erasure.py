"""GDPR erasure over HTTP: a DELETE that Kafka refused is completed by the client's retry."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import redis.asyncio as aioredis
from aiokafka import ConsumerRecord

from engagement.kafka.admin import ensure_topics
from engagement.kafka.topics import Topics
from engagement.model.rules import load_rules
from engagement.store.erasure_fence import TOKEN, fence_id
from engagement.store.redis_store import ScoreStore
from engagement.tools.localstack import free_port
from services.ingest.app import create_app
from tests.integration.ingest.conftest import ADMIN_KEY, outage_settings
from tests.support.kafka import read_topic
from tests.support.server import serve
from tests.support.services import start_private_broker
from tests.unit.engagement.model.strategies import interaction

MERGED = ("anon:x", "old-crm-id", "anon:y")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def given_u1_with_merged_ids(store: ScoreStore, tenant: str) -> int:
    """u1 with anon:x folded in and old-crm-id (itself holding anon:y) aliased into it; returns
    u1's last sequence."""
    t0 = time.time() - 60
    await store.apply_batch(
        [
            interaction("a1", t0, user_id=None, anonymous_id="x", tenant=tenant),
            interaction("a2", t0, user_id=None, anonymous_id="y", tenant=tenant),
            interaction("u1", t0 + 1, tenant=tenant),
        ]
    )
    await store.apply_batch(
        [
            interaction("i1", t0 + 2, kind="identify", anonymous_id="x", tenant=tenant),
            interaction(
                "i2", t0 + 2, kind="identify", user_id="old-crm-id", anonymous_id="y", tenant=tenant
            ),
        ]
    )
    alias = interaction("al1", t0 + 3, kind="alias", tenant=tenant)
    await store.apply_batch([alias.model_copy(update={"previousId": "old-crm-id"})])
    view = await store.get_candidate(tenant, "u1", time.time())
    assert view is not None
    return view.state.sequence


async def delete_until_answered(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """What a client does: repeat the DELETE while it is answered 503 (at most 60 times)."""
    for _ in range(60):
        answer = await client.delete(path, headers=bearer(ADMIN_KEY))
        if answer.status_code != 503:
            return answer
        await asyncio.sleep(0.5)
    return answer


async def read_erasure(
    bootstrap: str, topics: Topics, tenant: str
) -> tuple[list[ConsumerRecord], list[ConsumerRecord]]:
    """The latest topic's tombstones and the changes topic's erasure records of u1."""
    wanted = {f"{tenant}:{cand}".encode() for cand in ("u1", *MERGED)}
    latest = await read_topic(
        bootstrap,
        topics.scores_latest,
        until=lambda rs: wanted <= {r.key for r in rs if r.value is None},
    )
    changes = await read_topic(
        bootstrap, topics.scores_changed, until=lambda rs: any(r.value for r in rs)
    )
    return [r for r in latest if r.value is None], changes


async def test_a_delete_retried_after_a_kafka_outage_publishes_the_whole_erasure(
    redis_url: str,
    redis_client: aioredis.Redis,
    redis_prefix: str,
    topic_prefix: str,
    topics: Topics,
    sources_file,
    tenant: str,
) -> None:
    # given u1 with three ids merged into it, and an ingest service on a private broker
    port = free_port()
    broker = start_private_broker(port)
    settings = outage_settings(
        broker.address,
        kafka_topic_prefix=topic_prefix,
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
        sources_file=sources_file,
    )
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=load_rules(settings.rules_file))
    last_sequence = await given_u1_with_merged_ids(store, tenant)
    try:
        with serve(create_app(settings), ready_path="/readyz") as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                # when Kafka goes away, so the DELETE wipes Redis but is not acknowledged
                broker.stop()
                refused = await client.delete("/v1/candidates/u1", headers=bearer(ADMIN_KEY))
                # and the client retries once Kafka is back (a fresh broker: same address)
                broker = start_private_broker(port)
                await ensure_topics(broker.address, topics, partitions=3, replication_factor=1)
                retried = await delete_until_answered(client, "/v1/candidates/u1")
        tombstones, changes = await read_erasure(broker.address, topics, tenant)
        requests = await read_topic(
            broker.address, topics.interactions, until=lambda rs: len(rs) >= 1 + len(MERGED)
        )
    finally:
        broker.stop()
    # then the first answer says to retry, and the retry succeeds
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "7"
    assert refused.json()["error"]["code"] == "kafka_unavailable"
    assert retried.status_code == 204
    # and the retry published a tombstone for u1 and every id merged into it
    keys = {r.key.decode() for r in tombstones}
    assert keys == {f"{tenant}:{cand}" for cand in ("u1", *MERGED)}
    # and the erasure record that follows u1's last score record
    erasures = [orjson.loads(r.value) for r in changes]
    assert {(e["candidateId"], e["cause"]["type"]) for e in erasures} == {("u1", "erasure")}
    assert {e["sequence"] for e in erasures} == {last_sequence + 1}
    # and one erasure request per erased id for the scorer, keyed (partitioned) as its events
    asked = {r.key.decode(): orjson.loads(r.value) for r in requests}
    assert set(asked) == {f"{tenant}:{cand}" for cand in ("u1", *MERGED)}
    assert {(v["type"], v["tenantId"], f"{tenant}:{v['candidateId']}") for v in asked.values()} == {
        ("erasure", tenant, key) for key in asked
    }
    assert asked[f"{tenant}:u1"]["sequence"] == last_sequence + 1
    assert {dict(r.headers)["ce_type"] for r in requests} == {
        b"org.candidate-engagement.interaction.erasure.v1"
    }
    # and each erased id is fenced, by a digest, until the scorer reaches its request
    stored = await redis_client.hgetall(f"{redis_prefix}erasing")  # type: ignore[misc]
    fences = {k.decode(): v.decode() for k, v in stored.items()}
    assert fences.pop(TOKEN)  # and the hash's change token moved (erasure_fence.FenceCache)
    assert fences == {fence_id(tenant, v["candidateId"]): v["requestedAt"] for v in asked.values()}
    # and nothing of u1 or of a merged id is left in Redis
    left = [k async for k in redis_client.scan_iter(match=f"{redis_prefix}{{{tenant}:*")]
    assert left == []
    assert await redis_client.hkeys(f"{redis_prefix}{{{tenant}}}:seq") == []


async def test_a_delete_repeated_after_success_answers_204_and_leaves_no_key(
    settings, client: httpx.AsyncClient, redis_client: aioredis.Redis, redis_prefix: str, tenant
) -> None:
    # given u1 with merged ids, erased
    store = ScoreStore(redis_client, prefix=redis_prefix, rules=load_rules(settings.rules_file))
    await given_u1_with_merged_ids(store, tenant)
    first = await client.delete("/v1/candidates/u1", headers=bearer(ADMIN_KEY))
    # when the DELETE is repeated
    second = await client.delete("/v1/candidates/u1", headers=bearer(ADMIN_KEY))
    # then both succeed and no key of u1 (not even a pending erasure) is left
    assert (first.status_code, second.status_code) == (204, 204)
    assert [k async for k in redis_client.scan_iter(match=f"{redis_prefix}{{{tenant}:*")] == []
