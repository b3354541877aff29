"""Ingest throughput: events/s through POST /v1/batch beside a raw aiokafka producer, same run.

Starts its own Tansu broker, uses the local Redis, runs `engagement ingest --workers W` in a
subprocess and sends 100-event batches from several concurrent HTTP clients; then a raw
AIOKafkaProducer sends the same events (same keys, values, acks=all, same concurrency). Each
configuration in --workers (default: one worker, then one per core) gets its own ingest and raw
round, so every ratio compares figures taken moments apart. Prints the configuration, both rates,
p50/p99 latency and the ratio (target >= 0.5).
Usage: python bench/ingest.py [--events N] [--clients C] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import httpx
import orjson
from aiokafka import AIOKafkaProducer

from engagement.kafka.admin import ALL_TOPICS, ensure_topics
from engagement.kafka.topics import Topics, identity_key
from engagement.tools import localstack
from services.ingest.settings import IngestSettings

WRITE_KEY = "bench_write_key"
BASIC_AUTH = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
TENANT = "bench"
TARGET = 0.5


@dataclass(frozen=True)
class Round:
    """One measured configuration: the ingest run and the raw run right after it."""

    workers: int
    http_seconds: float
    http_latencies: list[float]
    raw_seconds: float
    raw_latencies: list[float]


def make_batches(events: int, batch_size: int) -> list[list[dict[str, object]]]:
    """Return realistic Segment track events, grouped into batches."""
    now = datetime.now(UTC).isoformat()
    items: list[dict[str, object]] = [
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

    headers = {"Content-Type": "application/json", "Authorization": BASIC_AUTH}

    async def worker() -> None:
        # aiohttp, not httpx: the client shares the CPUs with the server, and httpx spends about
        # as much CPU per event as the raw producer does, which would tax only the HTTP side.
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(base, connector=connector, headers=headers) as http:
            while not queue.empty():
                batch = queue.get_nowait()
                body = orjson.dumps({"batch": batch, "sentAt": datetime.now(UTC).isoformat()})
                started = time.perf_counter()
                async with http.post("/v1/batch", data=body) as response:
                    answer = await response.read()
                latencies.append(time.perf_counter() - started)
                if response.status != 200 or orjson.loads(answer)["accepted"] != len(batch):
                    raise SystemExit(f"ingest answered {response.status}: {answer[:300]!r}")

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
    bootstrap: str, redis_url: str, prefix: str, workdir: Path, workers: int
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
    command += ["--workers", str(workers)]
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
    """Return the q-th percentile of ``values``."""
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def main(args: argparse.Namespace) -> None:
    broker = localstack.start_tansu()
    redis = localstack.ensure_redis(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    redis_url = redis.address if redis else os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    try:
        await ensure_topics(
            broker.address,
            Topics(prefix),
            partitions=12,
            replication_factor=1,
            bases=(*ALL_TOPICS, "bench.raw.v1"),
        )
        print_configuration(args)
        rounds = []
        for workers in args.workers:
            measured = await measure(args, broker.address, redis_url, prefix, workdir, workers)
            report(args, measured)
            rounds.append(measured)
        summarise(rounds)
    finally:
        broker.stop()
        if redis is not None:
            redis.stop()


async def measure(
    args: argparse.Namespace,
    bootstrap: str,
    redis_url: str,
    prefix: str,
    workdir: Path,
    workers: int,
) -> Round:
    """Run the ingest with ``workers`` processes, then the raw producer; return both figures."""
    raw_topic = Topics(prefix).name("bench.raw.v1")
    proc, base = start_ingest(bootstrap, redis_url, prefix, workdir, workers)
    try:
        warmup = make_batches(20 * args.batch * workers, args.batch)
        await run_http(base, warmup, args.clients)
        await run_raw(bootstrap, raw_topic, warmup, args.clients)
        batches = make_batches(args.events, args.batch)
        http_s, http_lat = await run_http(base, batches, args.clients)
    finally:
        proc.terminate()
        proc.wait(15)
    raw_s, raw_lat = await run_raw(bootstrap, raw_topic, batches, args.clients)
    return Round(workers, http_s, http_lat, raw_s, raw_lat)


def print_configuration(args: argparse.Namespace) -> None:
    """Print what was measured and how, so figures can be compared across machines."""
    ingest = IngestSettings()
    print(
        f"configuration: {args.events} events in batches of {args.batch}, {args.clients} "
        f"concurrent aiohttp clients; Tansu broker, 12 partitions, acks=all; ingest: uvicorn "
        f"(uvloop + httptools), KAFKA_LINGER_MS={ingest.kafka_linger_ms}, "
        f"KAFKA_MAX_BATCH_BYTES={ingest.kafka_max_batch_bytes}, "
        f"KAFKA_COMPRESSION_TYPE={ingest.kafka_compression_type}; raw producer: linger 5 ms, "
        f"256 KiB batches, no compression; {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )


def report(args: argparse.Namespace, measured: Round) -> None:
    """Print one round: both rates, both latency percentiles and the ratio."""
    http_rate = args.events / measured.http_seconds
    raw_rate = args.events / measured.raw_seconds
    lat_h, lat_r = measured.http_latencies, measured.raw_latencies
    print(f"-- ingest with {measured.workers} worker process(es)")
    print(
        f"ingest /v1/batch : {http_rate:10.0f} events/s  p50 {percentile(lat_h, 50) * 1000:6.1f} ms"
        f"  p99 {percentile(lat_h, 99) * 1000:6.1f} ms per {args.batch}-event request"
    )
    print(
        f"raw aiokafka     : {raw_rate:10.0f} events/s  p50 {percentile(lat_r, 50) * 1000:6.1f} ms"
        f"  p99 {percentile(lat_r, 99) * 1000:6.1f} ms per {args.batch}-event batch"
    )
    print(f"ratio ingest/raw : {http_rate / raw_rate:.2f} (target >= {TARGET})")


def summarise(rounds: list[Round]) -> None:
    """Print the ratio of every configuration on one line."""
    ratios = ", ".join(
        f"{r.workers} worker(s) {r.raw_seconds / r.http_seconds:.2f}" for r in rounds
    )
    print(f"summary: ingest/raw ratio {ratios} (target >= {TARGET})")


def worker_counts(text: str) -> list[int]:
    """Parse ``--workers`` ("1,2")."""
    return [int(part) for part in text.split(",") if part.strip()]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--workers",
        type=worker_counts,
        default=[1, os.cpu_count() or 1] if (os.cpu_count() or 1) > 1 else [1],
        help="comma-separated ingest worker counts to measure (default: 1, then one per CPU)",
    )
    asyncio.run(main(parser.parse_args()))
