"""Alerts and webhooks: latency at a steady rate, then deliveries/s in bursts, beside a reference.

Runs a real notifier subprocess against Tansu (or KAFKA_BOOTSTRAP_SERVERS) and Redis, and a
receiver (uvicorn, its own process) that verifies every signature. Every ScoreChange record
produced is a cold -> hot crossing of a new candidate, so it yields one alert and one webhook per
endpoint of its tenant.

1. Latency: records at a steady rate; p50/p95/p99/max of record produced -> alert published and
   -> webhook received.
2. Bursts of ``--burst`` records at once (``bench.burst``), each to its own tenant: one fast
   endpoint; one answering 500 to 10% of requests at random (retried after 1 s, then 2 s ...);
   a fast endpoint beside one that takes 2 s per request. Printed: the time from the first
   record produced to the last webhook received, and deliveries/s over the webhooks' own span,
   beside the reference, measured in the same run: the same signed POSTs sent straight to the
   same receiver from an httpx client with as many in flight as the notifier's
   WEBHOOK_CONCURRENCY (a failed one sent again at once).

    .venv/bin/python bench/alerts.py --rate 100 --seconds 20 --burst 10000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
import redis.asyncio as aioredis
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from standardwebhooks import Webhook

from engagement.kafka.admin import ensure_topics
from engagement.kafka.topics import Topics
from engagement.model.records import Cause, ScoreChange
from engagement.model.webhooks import WebhookEndpoint, request_headers
from engagement.store.redis_keys import glob_literal
from engagement.tools import localstack

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "config" / "dev" / "rules.toml"
SLOW_SECONDS = 2.0
FAILING = 0.1
CONCURRENCY = (
    16  # the notifier's WEBHOOK_CONCURRENCY default; the reference keeps as many in flight
)
ENDPOINTS = {  # id -> (receiver path, tenant)
    "latency": ("/fast/latency", "bench"),
    "fast": ("/fast/a", "b-fast"),
    "flaky": ("/flaky/b", "b-flaky"),
    "beside": ("/fast/c", "b-slow"),
    "slow": ("/slow/c", "b-slow"),
}


class Receiver:
    """ASGI receiver: verifies every signature; ``/flaky/*`` answers 500 to 10% of requests at
    random, ``/slow/*`` answers after 2 s, the rest at once; ``GET /stats?path=`` tells what one
    path received (``&times=1``: each candidate's first arrival)."""

    def __init__(self) -> None:
        self.webhook = Webhook(SECRET)
        self.bad = 0
        self.attempts: dict[str, list[float]] = {}  # path -> each attempt's arrival
        self.delivered: dict[str, dict[str, float]] = {}  # path -> webhook-id -> first 2xx time
        self.arrived: dict[str, dict[str, float]] = {}  # path -> candidate -> first arrival

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        if path == "/stats":
            await self._stats(scope, send)
            return
        status = await self._hook(path, body, {k.decode(): v.decode() for k, v in scope["headers"]})
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def _hook(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        now = time.time()
        self.attempts.setdefault(path, []).append(now)
        try:
            data = self.webhook.verify(body, headers)
        except Exception:
            self.bad += 1
            return 400
        self.arrived.setdefault(path, {}).setdefault(data["data"]["candidateId"], now)
        if path.startswith("/slow/"):
            await asyncio.sleep(SLOW_SECONDS)
        elif path.startswith("/flaky/") and random.random() < FAILING:
            return 500
        self.delivered.setdefault(path, {}).setdefault(headers["webhook-id"], time.time())
        return 204

    async def _stats(self, scope, send) -> None:  # type: ignore[no-untyped-def]
        query = dict(parse_qsl(scope["query_string"].decode()))
        path = query.get("path", "")
        done = sorted(self.delivered.get(path, {}).values())
        tried = self.attempts.get(path, [])
        value: dict[str, Any] = {
            "bad": self.bad,
            "attempts": len(tried),
            "attempt_p90": tried[max(0, int(len(tried) * 0.9) - 1)] - tried[0] if tried else 0,
            "delivered": len(done),
            "first": done[0] if done else None,
            "p90": done[max(0, int(len(done) * 0.9) - 1)] if done else None,
            "last": done[-1] if done else None,
        }
        if query.get("times"):
            value["arrived"] = self.arrived.get(path, {})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": orjson.dumps(value)})


def run_receiver(port: int) -> None:
    """The receiver's own process (``alerts.py --receiver PORT``)."""
    app = Receiver()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


@contextlib.contextmanager
def receiver_process() -> Any:
    port = localstack.free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--receiver", str(port)])
    try:
        localstack.wait_for_port("127.0.0.1", port, timeout=20)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def stats(base: str, path: str, times: bool = False) -> dict[str, Any]:
    params = {"path": path, **({"times": "1"} if times else {})}
    value: dict[str, Any] = httpx.get(f"{base}/stats", params=params, timeout=30).json()
    return value


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


def webhooks_toml(base: str) -> str:
    lines = ['require_https = false\nallow_private_networks = ["127.0.0.1/32"]']
    for name, (path, tenant) in ENDPOINTS.items():
        lines.append(
            f'[[endpoints]]\nid = "{name}"\nurl = "{base}{path}"\nsecret = "{SECRET}"\n'
            f'tenants = ["{tenant}"]'
        )
    return "\n".join(lines) + "\n"


def start_notifier(
    bootstrap: str, redis_url: str, topics: Topics, base: str, workdir: Path
) -> tuple[subprocess.Popen[bytes], int]:
    hooks = workdir / "webhooks.toml"
    hooks.write_text(webhooks_toml(base))
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
        "WEBHOOK_RETRY_BASE": "1",
        "WEBHOOK_RETRY_FACTOR": "2",
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
                    alert = orjson.loads(r.value)
                    if alert["tenantId"] == "bench":
                        out.setdefault(alert["candidateId"], r.timestamp / 1000)
    finally:
        await consumer.stop()


async def produce(
    producer: AIOKafkaProducer,
    topic: str,
    tenant: str,
    count: int,
    rate: float | None = None,
    sent: dict[str, float] | None = None,
) -> None:
    """``count`` crossings of new candidates of ``tenant``, at ``rate`` per second (None: at once)."""
    start = time.monotonic()
    for i in range(count):
        if rate is not None:
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        cand = f"c{i}"
        if sent is not None:
            sent[cand] = time.time()
        await producer.send(topic, key=f"{tenant}:{cand}".encode(), value=change(tenant, cand))
    await producer.flush()


def summary(name: str, sent: dict[str, float], seen: dict[str, float]) -> str:
    lat = sorted((seen[c] - t) * 1000 for c, t in sent.items() if c in seen)
    if not lat:
        return f"{name}: nothing arrived"
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else lat * 99
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


async def until(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(check):
            return
        await asyncio.sleep(0.2)


async def latency(
    args: argparse.Namespace, bootstrap: str, topics: Topics, producer: AIOKafkaProducer, base: str
) -> None:
    sent: dict[str, float] = {}
    alerts: dict[str, float] = {}
    stop = asyncio.Event()
    reader = asyncio.create_task(read_alerts(bootstrap, topics.candidate_alerts, alerts, stop))
    try:
        n = int(args.rate * args.seconds)
        await produce(producer, topics.scores_changed, "bench", n, args.rate, sent)
        path = ENDPOINTS["latency"][0]
        await until(lambda: len(alerts) >= n and stats(base, path)["delivered"] >= n, 30)
    finally:
        stop.set()
        await reader
    seen = stats(base, path, times=True)
    print(
        f"rate {args.rate}/s for {args.seconds}s, 1 alert + 1 webhook per record, "
        f"bad signatures: {seen['bad']}"
    )
    print(summary("record produced -> alert published", sent, alerts))
    print(summary("record produced -> webhook received", sent, seen["arrived"]))


@dataclass
class Burst:
    """What one endpoint received of a burst: deliveries, attempts, and when."""

    delivered: int
    attempts: int
    seconds: float  # first record produced (first request sent) -> last webhook received
    per_second: float  # deliveries/s while flowing: first webhook received -> 90% of them
    attempts_per_second: float  # attempts/s while flowing: first attempt -> 90% of them
    cpu: float | None = None  # CPU seconds of the sender (the notifier: every thread)

    @classmethod
    def of(cls, got: dict[str, Any], started: float, cpu: float | None = None) -> Burst:
        flowing = (got["p90"] or 0) - (got["first"] or 0)
        rate = int(got["delivered"] * 0.9) / flowing if flowing > 0 else float("nan")
        tried = got["attempt_p90"]
        attempts = int(got["attempts"] * 0.9) / tried if tried > 0 else float("nan")
        seconds = (got["last"] or started) - started
        return cls(got["delivered"], got["attempts"], seconds, rate, attempts, cpu)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def burst(
    producer: AIOKafkaProducer, topics: Topics, base: str, tenant: str, count: int, pid: int
) -> dict[str, Burst]:
    """Produce ``count`` crossings of ``tenant`` at once; return what each of its endpoints got
    once every fast one has all (or 300 s have passed)."""
    paths = {name: path for name, (path, t) in ENDPOINTS.items() if t == tenant}
    waited = [path for path in paths.values() if not path.startswith("/slow/")]
    cpu, started = cpu_seconds(pid), time.time()
    await produce(producer, topics.scores_changed, tenant, count)
    await until(lambda: all(stats(base, p)["delivered"] >= count for p in waited), 300)
    after = cpu_seconds(pid)
    used = after - cpu if after is not None and cpu is not None else None
    return {name: Burst.of(stats(base, path), started, used) for name, path in paths.items()}


async def reference(base: str, path: str, count: int, concurrency: int) -> Burst:
    """The same signed POSTs sent straight to the receiver, ``concurrency`` in flight, each sent
    again at once until it is answered 2xx."""
    url = base + path
    endpoint = WebhookEndpoint(id="reference", url=url, secret=SECRET)
    bodies = iter(range(count))
    attempts = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal attempts
        for n in bodies:
            body = orjson.dumps({"type": "candidate.hot", "data": {"candidateId": f"r{n}"}})
            msg_id = f"ref_{uuid.uuid4().hex}"
            while True:
                headers = request_headers(
                    endpoint, msg_id=msg_id, sent_at=datetime.now(UTC), body=body
                )
                attempts += 1
                response = await client.post(url, content=body, headers=headers)
                if response.is_success:
                    break

    cpu, started = time.process_time(), time.time()
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    used = time.process_time() - cpu
    return Burst.of(await asyncio.to_thread(stats, base, path), started, used)


def line(name: str, ours: Burst, ref: Burst | None, count: int, attempts: bool = False) -> str:
    """One scenario's figures; ``attempts``: compare attempts/s (failures are retried later by
    the notifier's schedule, at once by the reference), else deliveries/s."""
    rate, unit = (ours.attempts_per_second, "attempts") if attempts else (ours.per_second, "")
    text = (
        f"{name}: {ours.delivered}/{count} delivered in {ours.seconds:.1f} s, "
        f"{rate:.0f} {unit or 'deliveries'}/s ({ours.attempts} attempts)"
    )
    if ours.cpu is not None:
        text += f", notifier CPU {ours.cpu / max(1, ours.attempts) * 1e6:.0f} us/attempt"
    if ref is not None:
        ref_rate = ref.attempts_per_second if attempts else ref.per_second
        text += (
            f" | reference {ref.seconds:.1f} s, {ref_rate:.0f}/s ({ref.attempts} attempts), "
            f"CPU {(ref.cpu or 0) / ref.attempts * 1e6:.0f} us/request: "
            f"ratio {rate / ref_rate:.2f}"
        )
    return text


async def bursts(
    args: argparse.Namespace, topics: Topics, producer: AIOKafkaProducer, base: str, pid: int
) -> None:
    n = args.burst
    print(
        f"burst of {n} alerts, WEBHOOK_CONCURRENCY {CONCURRENCY}; time from the first record "
        "(request) to the last webhook received; deliveries/s while flowing (first webhook -> "
        "90% of them); the same receiver process:"
    )
    fast = (await burst(producer, topics, base, "b-fast", n, pid))["fast"]
    ref_fast = await reference(base, "/fast/ref", n, CONCURRENCY)
    print(line("  fast endpoint           ", fast, ref_fast, n))
    flaky = (await burst(producer, topics, base, "b-flaky", n, pid))["flaky"]
    ref_flaky = await reference(base, "/flaky/ref", n, CONCURRENCY)
    print(line("  10% failures (500)      ", flaky, ref_flaky, n, attempts=True))
    both = await burst(producer, topics, base, "b-slow", n, pid)
    print(line("  fast beside a 2 s one   ", both["beside"], ref_fast, n))
    print(
        f"  meanwhile the 2 s endpoint answered {both['slow'].delivered} (its lane: at most "
        f"{CONCURRENCY / SLOW_SECONDS:.0f}/s); fast beside it / fast alone: "
        f"{both['beside'].per_second / fast.per_second:.2f} (deliveries/s)"
    )


async def bench(args: argparse.Namespace, bootstrap: str, redis_url: str) -> None:
    topics = Topics(f"bench{uuid.uuid4().hex[:6]}.")
    await ensure_topics(bootstrap, topics, partitions=4, replication_factor=1)
    async with contextlib.AsyncExitStack() as cleanup:  # each step undone, even if one fails
        cleanup.push_async_callback(forget_keys, redis_url, key_prefix(topics))
        base = cleanup.enter_context(receiver_process())
        workdir = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
        proc, _port = await asyncio.to_thread(
            start_notifier, bootstrap, redis_url, topics, base, workdir
        )
        cleanup.callback(proc.wait, 20)
        cleanup.callback(proc.terminate)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
        await producer.start()
        cleanup.push_async_callback(producer.stop)
        await latency(args, bootstrap, topics, producer, base)
        if args.burst:
            await bursts(args, topics, producer, base, proc.pid)


def main() -> None:
    if sys.argv[1:2] == ["--receiver"]:
        run_receiver(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=100.0, help="score records per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--burst", type=int, default=10_000, help="records per burst (0: no bursts)"
    )
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
