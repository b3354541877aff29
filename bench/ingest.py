"""Ingest throughput: events/s through POST /v1/batch beside a raw aiokafka producer, same run.

Starts its own Tansu broker, uses the local Redis, runs `engagement ingest` in a subprocess and
sends 100-event batches from several concurrent HTTP clients; then a raw AIOKafkaProducer sends the
same events (same keys, values, acks=all, same concurrency). Prints both rates, p50/p99 request
latency and the ratio (target >= 0.5). Usage: python bench/ingest.py [--events N] [--clients C]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from engagement import localstack
from engagement.kafka_admin import ensure_topics
from engagement.topics import Topics, identity_key

WRITE_KEY = "bench_write_key"
TENANT = "bench"


def make_batches(events: int, batch_size: int) -> list[list[dict[str, object]]]:
    """Return realistic Segment track events, grouped into batches."""
    now = datetime.now(UTC).isoformat()
    items = [
        {
            "type": "track",
            "messageId": str(uuid.uuid4()),
            "userId": f"cand-{n % 5000}",
            "event": "Job Viewed",
            "timestamp": now,
            "properties": {
                "jobId": f"J-{n % 300}",
                "title": "Backend Engineer",
                "location": "Berlin",
            },
            "context": {
                "page": {"path": "/jobs/backend", "url": "https://careers.example/jobs/backend"},
                "userAgent": "Mozilla/5.0 (X11; Linux x86_64) bench",
                "locale": "en-GB",
            },
        }
        for n in range(events)
    ]
    return [items[i : i + batch_size] for i in range(0, len(items), batch_size)]


async def run_http(
    base: str, batches: list[list[dict[str, object]]], clients: int
) -> tuple[float, list[float]]:
    """Post every batch from ``clients`` concurrent clients; return (seconds, latencies)."""
    queue: asyncio.Queue[list[dict[str, object]]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    latencies: list[float] = []

    async def worker() -> None:
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(
            base_url=base, auth=(WRITE_KEY, ""), limits=limits, timeout=60
        ) as http:
            while not queue.empty():
                body = orjson.dumps(
                    {"batch": queue.get_nowait(), "sentAt": datetime.now(UTC).isoformat()}
                )
                started = time.perf_counter()
                response = await http.post(
                    "/v1/batch", content=body, headers={"Content-Type": "application/json"}
                )
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200 or response.json()["accepted"] != 100:
                    raise SystemExit(
                        f"ingest answered {response.status_code}: {response.text[:300]}"
                    )

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return time.perf_counter() - started, latencies


async def run_raw(
    bootstrap: str, topic: str, batches: list[list[dict[str, object]]], clients: int
) -> tuple[float, list[float]]:
    """Send the same events with a bare producer (same settings), batch by batch, awaiting acks."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    queue: asyncio.Queue[list[dict[str, object]]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    latencies: list[float] = []

    async def worker() -> None:
        while not queue.empty():
            batch = queue.get_nowait()
            started = time.perf_counter()
            futures = [
                await producer.send(
                    topic,
                    key=identity_key(TENANT, str(e["userId"]), None).encode(),
                    value=orjson.dumps(e),
                )
                for e in batch
            ]
            await asyncio.gather(*futures)
            latencies.append(time.perf_counter() - started)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return time.perf_counter() - started, latencies
    finally:
        await producer.stop()


def start_ingest(
    bootstrap: str, redis_url: str, prefix: str, workdir: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """Run `engagement ingest` in a subprocess; return it and its base URL once /readyz is 200."""
    sources = workdir / "sources.toml"
    sources.write_text(
        f'[[sources]]\nsource_id = "bench"\ntenant_id = "{TENANT}"\nwrite_key = "{WRITE_KEY}"\n'
    )
    port = localstack.free_port()
    env = {
        **os.environ,
        "SOURCES_FILE": str(sources),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC_PREFIX": prefix,
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "engagement.cli", "ingest", "--port", str(port)]
    with open(workdir / "ingest.log", "wb") as log:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"ingest exited: {(workdir / 'ingest.log').read_text()[-2000:]}")
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit("ingest did not become ready in 60 s")


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def main(args: argparse.Namespace) -> None:
    broker = localstack.start_tansu()
    redis = localstack.ensure_redis(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    redis_url = redis.address if redis else os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    proc = None
    try:
        await ensure_topics(broker.address, Topics(prefix), partitions=12, replication_factor=1)
        raw_topic = Topics(prefix).name("bench.raw.v1")
        await ensure_topics(
            broker.address,
            Topics(prefix),
            partitions=12,
            replication_factor=1,
            bases=("bench.raw.v1",),
        )
        proc, base = start_ingest(broker.address, redis_url, prefix, workdir)
        warmup = make_batches(20 * args.batch, args.batch)
        await run_http(base, warmup, args.clients)
        await run_raw(broker.address, raw_topic, warmup, args.clients)
        batches = make_batches(args.events, args.batch)
        http_s, http_lat = await run_http(base, batches, args.clients)
        raw_s, raw_lat = await run_raw(broker.address, raw_topic, batches, args.clients)
        report(args, http_s, http_lat, raw_s, raw_lat)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(15)
        broker.stop()
        if redis is not None:
            redis.stop()


def report(
    args: argparse.Namespace,
    http_s: float,
    http_lat: list[float],
    raw_s: float,
    raw_lat: list[float],
) -> None:
    http_rate, raw_rate = args.events / http_s, args.events / raw_s
    print(
        f"events: {args.events} in batches of {args.batch}, {args.clients} concurrent clients, Tansu broker"
    )
    print(
        f"ingest /v1/batch : {http_rate:10.0f} events/s  p50 {percentile(http_lat, 50) * 1000:6.1f} ms  "
        f"p99 {percentile(http_lat, 99) * 1000:6.1f} ms per 100-event request"
    )
    print(
        f"raw aiokafka     : {raw_rate:10.0f} events/s  p50 {percentile(raw_lat, 50) * 1000:6.1f} ms  "
        f"p99 {percentile(raw_lat, 99) * 1000:6.1f} ms per 100-event batch"
    )
    print(f"ratio ingest/raw : {http_rate / raw_rate:.2f} (target >= 0.5)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--clients", type=int, default=8)
    asyncio.run(main(parser.parse_args()))
