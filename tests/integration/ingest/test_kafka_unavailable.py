"""When Kafka does not acknowledge in time the answer is 503 + Retry-After, never 200."""

from __future__ import annotations

import asyncio

import httpx

from services.ingest.app import create_app
from tests.integration.ingest.conftest import SERVER_KEY, basic, ingest_settings, outage_settings
from tests.support.server import serve
from tests.support.services import start_private_broker

ITEM = {"type": "track", "userId": "u1", "event": "Job Viewed"}


async def test_unreachable_broker_answers_503_and_never_200(redis_url, topic_prefix, sources_file):
    # given an ingest service on a private broker that has acknowledged an event
    broker = start_private_broker()
    try:
        settings = outage_settings(
            broker.address,
            kafka_topic_prefix=topic_prefix,
            redis_url=redis_url,
            sources_file=sources_file,
        )
        with serve(create_app(settings), ready_path="/readyz") as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                before = await client.post(
                    "/v1/batch", json={"batch": [ITEM]}, headers=basic(SERVER_KEY)
                )
                assert before.status_code == 200
                # when the broker goes away
                broker.stop()
                answers = await asyncio.gather(
                    *(
                        client.post(
                            "/v1/batch", json={"batch": [ITEM] * 3}, headers=basic(SERVER_KEY)
                        )
                        for _ in range(5)
                    ),
                    client.post("/v1/track", json=ITEM, headers=basic(SERVER_KEY)),
                )
                ready = await client.get("/readyz")
    finally:
        broker.stop()
    # then every request is refused with 503 and Retry-After, none is answered 200
    assert [a.status_code for a in answers] == [503] * 6
    assert {a.headers["retry-after"] for a in answers} == {"7"}
    assert {a.json()["error"]["code"] for a in answers} == {"kafka_unavailable"}
    assert ready.status_code == 503


async def test_readyz_is_503_until_the_producer_is_connected(redis_url, topic_prefix, sources_file):
    # given an ingest service whose broker is not there yet
    from engagement.tools.localstack import free_port

    port = free_port()
    settings = ingest_settings(
        kafka_bootstrap_servers=f"127.0.0.1:{port}",
        kafka_topic_prefix=topic_prefix,
        redis_url=redis_url,
        sources_file=sources_file,
        ingest_produce_timeout_seconds=1.0,
    )
    with serve(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            # then it is alive but not ready, and refuses events with 503
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 503
            refused = await client.post("/v1/track", json=ITEM, headers=basic(SERVER_KEY))
            assert refused.status_code == 503
            # when the broker starts, it becomes ready and accepts events
            broker = start_private_broker(port)
            try:
                for _ in range(300):
                    if (await client.get("/readyz")).status_code == 200:
                        break
                    await asyncio.sleep(0.1)
                accepted = await client.post("/v1/track", json=ITEM, headers=basic(SERVER_KEY))
            finally:
                broker.stop()
    assert accepted.status_code == 200
