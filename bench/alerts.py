"""Alert latency: score record produced → alert published, and → signed webhook received.

Runs a real notifier subprocess against Tansu (or KAFKA_BOOTSTRAP_SERVERS) and Redis, a local
receiver (uvicorn) that verifies every signature, and produces ScoreChange records at a steady
rate, each one a cold → hot crossing of a new candidate (so every record yields one alert and one
webhook). Prints p50/p95/p99/max of both latencies.

    .venv/bin/python bench/alerts.py --rate 100 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import redis.asyncio as aioredis
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from standardwebhooks import Webhook

from engagement.kafka.admin import ensure_topics
from engagement.kafka.topics import Topics
from engagement.model.records import Cause, ScoreChange
from engagement.store.redis_keys import glob_literal
from engagement.tools import localstack

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "config" / "dev" / "rules.toml"


class Receiver:
    """ASGI receiver: verifies the signature and records arrival time per candidate."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.bad = 0
        self.webhook = Webhook(SECRET)

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        now = time.time()
        if scope["path"] == "/hooks":
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            try:
                data = self.webhook.verify(body, headers)
                self.arrived.setdefault(data["data"]["candidateId"], now)
            except Exception:
                self.bad += 1
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def serve(app: Receiver) -> tuple[str, uvicorn.Server]:
    port = localstack.free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    localstack.wait_for_port("127.0.0.1", port, timeout=10)
    return f"http://127.0.0.1:{port}/hooks", server


def change(tenant: str, candidate: str) -> bytes:
    record = ScoreChange(
        tenantId=tenant,
        candidateId=candidate,
        score=80,
        previousScore=30,
        tier="hot",
        previousTier="cold",
        raw=50 * math.log(100 / 20.5),
        pillars={},
        channels={},
        sequence=1,
        asOf=datetime.now(UTC),
        rulesVersion="bench",
        cause=Cause(messageId=uuid.uuid4().hex, event="Application Submitted"),
    )
    return record.model_dump_json().encode()


def key_prefix(topics: Topics) -> str:
    """The notifier's Redis key prefix: under ``BENCH_KEY_PREFIX`` (default ``bench:``), per run."""
    return os.environ.get("BENCH_KEY_PREFIX", "bench:") + topics.prefix


def start_notifier(
    bootstrap: str, redis_url: str, topics: Topics, url: str, workdir: Path
) -> tuple[subprocess.Popen[bytes], int]:
    hooks = workdir / "webhooks.toml"
    hooks.write_text(
        'require_https = false\nallow_private_networks = ["127.0.0.1/32"]\n'
        f'[[endpoints]]\nid = "bench"\nurl = "{url}"\nsecret = "{SECRET}"\n'
    )
    port = localstack.free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC_PREFIX": topics.prefix,
        "KAFKA_TOPIC_PARTITIONS": "4",
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": key_prefix(topics),
        "RULES_FILE": str(RULES),
        "WEBHOOKS_FILE": str(hooks),
        "NOTIFIER_WEB_PORT": str(port),
        "NOTIFIER_DATA_DIR": str(workdir / "data"),
        "NOTIFIER_SESSION_TIMEOUT": "6",
        "NOTIFIER_HEARTBEAT_INTERVAL": "1",
        "NOTIFIER_REBALANCE_TIMEOUT": "6",
        "NOTIFIER_REQUEST_TIMEOUT": "10",
        "LOG_LEVEL": "WARNING",
    }
    log = open(workdir / "notifier.log", "wb")  # noqa: SIM115 - owned by the child
    exe = str(Path(sys.executable).with_name("engagement"))
    proc = subprocess.Popen([exe, "notifier"], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc, port
        if proc.poll() is not None:
            raise SystemExit(f"notifier exited; see {workdir / 'notifier.log'}")
        time.sleep(0.2)
    raise SystemExit("notifier not ready after 60 s")


async def read_alerts(
    bootstrap: str, topic: str, out: dict[str, float], stop: asyncio.Event
) -> None:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100)
            for records in batch.values():
                for r in records:
                    out.setdefault(orjson.loads(r.value)["candidateId"], r.timestamp / 1000)
    finally:
        await consumer.stop()


async def produce(
    bootstrap: str, topic: str, rate: float, seconds: float, sent: dict[str, float]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    try:
        start, n = time.monotonic(), int(rate * seconds)
        for i in range(n):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            cand = f"c{i}"
            sent[cand] = time.time()
            await producer.send(topic, key=f"bench:{cand}".encode(), value=change("bench", cand))
        await producer.flush()
    finally:
        await producer.stop()


def summary(name: str, sent: dict[str, float], seen: dict[str, float]) -> str:
    lat = sorted((seen[c] - t) * 1000 for c, t in sent.items() if c in seen)
    if not lat:
        return f"{name}: nothing arrived"
    q = statistics.quantiles(lat, n=100, method="inclusive")
    return (
        f"{name}: n={len(lat)}/{len(sent)} p50={q[49]:.1f} ms p95={q[94]:.1f} ms "
        f"p99={q[98]:.1f} ms max={lat[-1]:.1f} ms"
    )


async def forget_keys(redis_url: str, prefix: str) -> None:
    """Delete the notifier's keys of this run (the Redis may be a shared one)."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{glob_literal(prefix)}*", count=1000):
            batch.append(key)
            if len(batch) == 1000:
                await client.unlink(*batch)
                batch = []
        if batch:
            await client.unlink(*batch)
    finally:
        await client.aclose()


async def bench(args: argparse.Namespace, bootstrap: str, redis_url: str) -> None:
    topics = Topics(f"bench{uuid.uuid4().hex[:6]}.")
    await ensure_topics(bootstrap, topics, partitions=4, replication_factor=1)
    receiver = Receiver()
    sent: dict[str, float] = {}
    alerts: dict[str, float] = {}
    async with contextlib.AsyncExitStack() as cleanup:  # each step undone, even if one fails
        cleanup.push_async_callback(forget_keys, redis_url, key_prefix(topics))
        url, server = serve(receiver)
        cleanup.callback(setattr, server, "should_exit", True)
        workdir = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
        proc, _port = await asyncio.to_thread(
            start_notifier, bootstrap, redis_url, topics, url, workdir
        )
        cleanup.callback(proc.wait, 20)
        cleanup.callback(proc.terminate)
        stop = asyncio.Event()
        reader = asyncio.create_task(read_alerts(bootstrap, topics.candidate_alerts, alerts, stop))
        cleanup.push_async_callback(lambda: reader)
        cleanup.callback(stop.set)
        await produce(bootstrap, topics.scores_changed, args.rate, args.seconds, sent)
        for _ in range(150):  # up to 30 s for the stragglers
            if len(alerts) >= len(sent) and len(receiver.arrived) >= len(sent):
                break
            await asyncio.sleep(0.2)
    print(
        f"rate {args.rate}/s for {args.seconds}s, 1 alert + 1 webhook per record, bad signatures: {receiver.bad}"
    )
    print(summary("record produced -> alert published", sent, alerts))
    print(summary("record produced -> webhook received", sent, receiver.arrived))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=100.0, help="score records per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            broker = localstack.start_tansu()
            stack.callback(broker.stop)
            bootstrap = broker.address
        redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        started = localstack.ensure_redis(redis_url)
        if started is not None:
            stack.callback(started.stop)
            redis_url = started.address
        asyncio.run(bench(args, bootstrap, redis_url))


if __name__ == "__main__":
    main()
