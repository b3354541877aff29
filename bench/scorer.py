"""Scorer benchmark: events/s of one worker beside its references, end-to-end latency, memory.

Runs its own Tansu broker and Redis (engagement.tools.localstack). Figures, same run, same data:
  ours        `engagement scorer` (subprocess): take_events + pipelined Lua + score records
  (a) kafka   a raw aiokafka consumer reading and decoding (orjson + Interaction) the same topic
  (b) redis   ScoreStore.apply_batch (the same Lua, pipelined) straight into Redis, no Kafka
  (c) naive   a Faust agent doing one store call (Redis round trips) per event
  (d) Faust   the scorer's Faust app (same settings, transport, take_events) whose agent does
              nothing: the framework's own ceiling, not part of the ratio
and Redis CPU per event (the capacity of one Redis core), the CPU per event of the scorer,
Redis and the broker together (the most events/s this box's cores hold at that cost); then end-to-end latency (HTTP accepted
-> score in Redis) at a steady rate, Redis bytes per
candidate over 100,000 candidates, and the scorer's RSS over the run.
--redis-cluster: the store is a Redis Cluster of three masters (one replica each) instead, and
the Redis CPU is that of every node, masters and replicas, with each master's share printed (one
tenant's rank keys sit on one master). --kafka: Apache Kafka (engagement.tools.local_kafka, the
make kafka cache) instead of Tansu.
Usage: python bench/scorer.py [--events 100000] [--naive-events 6000] [--rate 2000] [--seconds 20]
       [--redis-cluster] [--kafka]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
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
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engagement.kafka.admin import ensure_topics  # noqa: E402
from engagement.kafka.topics import Topics  # noqa: E402
from engagement.model.records import Interaction  # noqa: E402
from engagement.model.rules import load_rules  # noqa: E402
from engagement.store.connection import connect  # noqa: E402
from engagement.store.redis_store import ScoreStore  # noqa: E402
from engagement.tools import local_kafka, localstack, redis_cluster  # noqa: E402

RULES = ROOT / "config" / "rules.toml"
EVENTS = ["Page Viewed", "Job Viewed", "Article Read", "Video Watched", "Application Started"]
PARTITIONS = 3
JOB_SHARE = 0.0  # the share of events that name a job (--job-share)
JOB_GROUPS = 40  # candidate k's job events name the 5 jobs of group k % 40: 200 jobs in all
TANSU = {
    "SCORER_SESSION_TIMEOUT": "6",
    "SCORER_HEARTBEAT_INTERVAL": "1",
    "SCORER_REBALANCE_TIMEOUT": "6",
}


def interaction(i: int, candidates: int, tenant: str, now: float) -> dict[str, object]:
    """Event ``i``: half a second after event ``i - 1`` over the 12 hours before ``now`` (as live
    traffic arrives, so the store decays each candidate forward), then again from 12 hours back."""
    t = datetime.fromtimestamp(now - 43200 + (i % 86400) * 0.5, UTC).isoformat()
    return {
        "type": "track", "messageId": f"m{i}", "tenantId": tenant, "sourceId": "bench",
        "channel": "web", "receivedAt": t, "timestamp": t, "userId": f"u{i % candidates}",
        "event": EVENTS[i % len(EVENTS)], "properties": job_properties(i, candidates),
        "traits": {}, "context": {},
    }  # fmt: skip


def job_properties(i: int, candidates: int) -> dict[str, str]:
    """Event ``i``'s properties: a job id for JOB_SHARE of the events (spread evenly), one of the 5
    jobs of its candidate's group, so a candidate ends with up to 5 job profiles."""
    if (i * 7919) % 1000 >= JOB_SHARE * 1000:
        return {}
    group = (i % candidates) % JOB_GROUPS
    return {"jobId": f"J-{group * 5 + (i // candidates) % 5}"}


async def produce(bootstrap: str, topic: str, n: int, candidates: int, tenant: str) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    now = time.time()
    try:
        futures = []
        for i in range(n):
            value = interaction(i, candidates, tenant, now)
            futures.append(
                await producer.send(
                    topic, key=f"{tenant}:{value['userId']}".encode(), value=orjson.dumps(value)
                )
            )
            if len(futures) >= 5000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def raw_consumer(bootstrap: str, topic: str, n: int) -> float:
    """(a) events/s of aiokafka alone, decoding each value into an Interaction."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=2000,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen, start = 0, time.perf_counter()
        while seen < n:
            for records in (await consumer.getmany(timeout_ms=500, max_records=2000)).values():
                for r in records:
                    Interaction.model_validate(orjson.loads(r.value))
                seen += len(records)
        return n / (time.perf_counter() - start)
    finally:
        await consumer.stop()


async def direct_redis(redis_url: str, n: int, candidates: int, tenant: str) -> tuple[float, float]:
    """(b) events/s of the store's pipelined Lua alone (batches of 500, parsed in advance), and
    Redis's CPU seconds per event meanwhile."""
    client = connect(redis_url)
    store = ScoreStore(client, prefix=f"bench:b:{uuid.uuid4().hex[:6]}:", rules=load_rules(RULES))
    now = time.time()
    batch = [Interaction.model_validate(interaction(i, candidates, tenant, now)) for i in range(n)]
    cpu = redis_cpu_seconds(redis_url)
    start = time.perf_counter()
    for i in range(0, n, 500):
        await store.apply_batch(batch[i : i + 500])
    rate = n / (time.perf_counter() - start)
    await client.aclose()
    return rate, (redis_cpu_seconds(redis_url) - cpu) / n


def redis_cpu_seconds(redis_url: str) -> float:
    """CPU seconds the Redis server has used (INFO cpu: user + system, main thread included);
    on a cluster, every node's."""
    return sum(redis_cpu_by_node(redis_url).values())


def redis_used_memory(redis_url: str) -> float:
    """Bytes of data Redis holds (INFO memory used_memory); on a cluster, its masters'."""
    import redis

    with redis.Redis.from_url(redis_url) as client:
        if not int(client.info("cluster").get("cluster_enabled", 0)):
            return float(client.info("memory")["used_memory"])
    with redis.RedisCluster.from_url(redis_url) as cluster:
        used = cluster.info("memory", target_nodes=redis.RedisCluster.PRIMARIES)
    return float(sum(node["used_memory"] for node in used.values()))


def redis_cpu_by_node(redis_url: str) -> dict[str, float]:
    """CPU seconds used by each Redis node, named "master host:port" / "replica host:port"."""
    import redis

    with redis.Redis.from_url(redis_url) as client:
        if not int(client.info("cluster").get("cluster_enabled", 0)):
            info = client.info("cpu")
            return {"redis": float(info["used_cpu_user"]) + float(info["used_cpu_sys"])}
        nodes = client.execute_command("CLUSTER NODES")
    used = {}
    for address, node in nodes.items():
        role = "master" if "master" in node["flags"] else "replica"
        host, port = address.split("@")[0].rsplit(":", 1)
        with redis.Redis(host=host, port=int(port)) as client:
            info = client.info("cpu")
        used[f"{role} {host}:{port}"] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return used


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds a process has used, all its threads (utime + stime of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuBudget:
    """CPU seconds per event of the scorer, Redis and the broker while the scorer drains the
    topic: what the run costs the whole box, against the cores it has."""

    def __init__(self, scorer_pid: int, redis_url: str, broker_pid: int) -> None:
        self.pids, self.redis_url = {"scorer": scorer_pid, "broker": broker_pid}, redis_url
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        used = {name: process_cpu_seconds(pid) for name, pid in self.pids.items()}
        return used | {"redis": redis_cpu_seconds(self.redis_url)}

    def per_event(self, events: int) -> dict[str, float]:
        end = self._read()
        return {name: (end[name] - self.start[name]) / events for name in end}


def scorer_env(kafka: str, redis_url: str, prefix: str, group: str, port: int) -> dict[str, str]:
    return {
        **os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka, "REDIS_URL": redis_url, "KAFKA_TOPIC_PREFIX": prefix,
        "KAFKA_TOPIC_PARTITIONS": str(PARTITIONS), "REDIS_KEY_PREFIX": f"bench:{group}:", "RULES_FILE": str(RULES),
        "SCORER_WEB_PORT": str(port), "SCORER_WEB_HOST": "127.0.0.1", "SCORER_GROUP_ID": group,
        "SCORER_DATA_DIR": tempfile.mkdtemp(), "LOG_LEVEL": "WARNING", **TANSU,
    }  # fmt: skip


def events_done(web: str) -> float:
    text = httpx.get(f"{web}/metrics", timeout=10).text
    return sum(
        float(v) for v in re.findall(r"^engagement_scorer_events_total\{[^}]*\} (\S+)$", text, re.M)
    )


class RssSampler(threading.Thread):
    """Samples a process's resident set size once a second."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[float] = []  # MiB, one a second
        self.stop = threading.Event()
        self.started = time.monotonic()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
                self.samples.append(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024)  # type: ignore[union-attr]
            except (OSError, AttributeError):
                return
            self.stop.wait(1.0)


def wait_count(web: str, n: float, timeout: float = 600) -> tuple[float, float]:
    """Poll the scorer's event counter; return (time it first counted, time it reached n). A
    scrape costs the scorer a few milliseconds (lag and tier gauges), so once it has started it
    is polled every half second and the instant it reached n is interpolated between the last
    two polls (the rate is steady), instead of polling fast and slowing it down."""
    first = None
    previous = (0.0, 0.0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done = events_done(web)
        except httpx.HTTPError:
            done = 0.0
        now = time.perf_counter()
        if done > 0 and first is None:
            first = now
        if done >= n:
            at, count = previous
            if first is None or count <= 0:
                return first or now, now
            return first, at + (now - at) * (n - count) / (done - count)
        previous = (now, done)
        time.sleep(0.02 if first is None else 0.5)
    raise RuntimeError(f"scorer did not reach {n} events")


def start_scorer(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    log = open(tempfile.mktemp(suffix=".log"), "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("engagement")), "scorer"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    web = f"http://127.0.0.1:{env['SCORER_WEB_PORT']}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{web}/healthz", timeout=1).status_code == 200:
                return proc, web
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("scorer did not start")


def naive_agent_main() -> None:
    """(c) a Faust agent doing one store call per event; prints when it saw N events."""
    import faust

    n = int(os.environ["NAIVE_EVENTS"])
    app = faust.App(os.environ["SCORER_GROUP_ID"], broker="kafka://" + os.environ["KAFKA_BOOTSTRAP_SERVERS"], store="memory://",
                    web_enabled=False, topic_disable_leader=True, broker_session_timeout=6, broker_heartbeat_interval=1,
                    broker_rebalance_timeout=6, consumer_auto_offset_reset="earliest", datadir=tempfile.mkdtemp())  # fmt: skip
    topic = app.topic(
        Topics(os.environ["KAFKA_TOPIC_PREFIX"]).interactions,
        key_serializer="raw",
        value_serializer="raw",
    )
    state = {"seen": 0, "first": 0.0}

    @app.agent(topic)
    async def naive(stream: faust.StreamT[bytes]) -> None:
        store = ScoreStore(
            connect(os.environ["REDIS_URL"]),
            prefix=os.environ["REDIS_KEY_PREFIX"],
            rules=load_rules(RULES),
        )
        async for value in stream:
            await store.apply_batch([Interaction.model_validate(orjson.loads(value))])
            state["seen"] += 1
            if state["seen"] == 1:
                state["first"] = time.perf_counter()
            if state["seen"] == n:
                print(f"NAIVE {n / (time.perf_counter() - state['first']):.1f}", flush=True)

    from faust.worker import Worker

    Worker(app, loglevel="WARNING", redirect_stdouts=False).execute_from_commandline()


def null_agent_main() -> None:
    """(d) the scorer's Faust app with an agent that only takes batches; prints when it saw N."""
    import faust

    from engagement.faust.app import faust_app, raw_topic
    from engagement.faust.run import run_worker
    from services.scorer.settings import ScorerSettings

    n = int(os.environ["NAIVE_EVENTS"])

    def build(settings: ScorerSettings) -> faust.App:
        app = faust_app(settings, stream_buffer_maxsize=8192, topic_disable_leader=True)
        state = {"seen": 0, "first": 0.0}

        @app.agent(raw_topic(app, settings.topics.interactions), concurrency=1)
        async def null(stream: faust.StreamT[bytes]) -> None:
            async for events in stream.take_events(  # type: ignore[attr-defined]
                settings.batch_size, within=settings.batch_within
            ):
                if state["seen"] == 0:
                    state["first"] = time.perf_counter()
                state["seen"] += len(events)
                if state["seen"] >= n > state["seen"] - len(events):
                    print(f"NAIVE {n / (time.perf_counter() - state['first']):.1f}", flush=True)

        return app

    run_worker([], settings_type=ScorerSettings, build_app=build, description=None)


def naive_rate(env: dict[str, str], n: int, flag: str = "--naive-agent") -> float:
    env = {**env, "NAIVE_EVENTS": str(n)}
    log_path = tempfile.mktemp(suffix="-naive.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, __file__, flag], env=env, stdout=subprocess.PIPE, stderr=log
        )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(b"NAIVE "):
                return float(line.split()[1])
        raise RuntimeError(f"{flag[2:]} exited:\n{Path(log_path).read_text()[-3000:]}")
    finally:
        proc.terminate()
        proc.wait(20)


async def end_to_end(
    kafka: str, redis_url: str, prefix: str, web: str, rate: int, seconds: int
) -> dict[str, float]:
    """Send ``rate`` events/s through the ingest HTTP API; latency from the scorer's histogram."""
    from services.ingest.app import create_app
    from services.ingest.settings import IngestSettings
    from tests.support.server import serve

    workdir = Path(tempfile.mkdtemp())
    (workdir / "sources.toml").write_text(
        '[[sources]]\nsource_id="b"\ntenant_id="e2e"\nchannel="web"\nwrite_key="wk_b"\nallowed_origins=[]\nconsent_required=false\n'
    )
    settings = IngestSettings(sources_file=workdir / "sources.toml", kafka_bootstrap_servers=kafka, kafka_topic_prefix=prefix,
                              kafka_topic_partitions=PARTITIONS, redis_url=redis_url)  # fmt: skip
    before = histogram(web)
    per_request, sent = 50, 0
    with serve(create_app(settings), ready_path="/readyz") as base:
        async with httpx.AsyncClient(base_url=base, auth=("wk_b", ""), timeout=30) as client:
            start = time.perf_counter()
            tick = per_request / rate
            pending = set()
            while time.perf_counter() - start < seconds:
                batch = [
                    {
                        "type": "track",
                        "event": "Job Viewed",
                        "userId": f"e{(sent + j) % 5000}",
                        "messageId": uuid.uuid4().hex,
                    }
                    for j in range(per_request)
                ]
                pending.add(asyncio.create_task(client.post("/v1/batch", json={"batch": batch})))
                sent += per_request
                await asyncio.sleep(max(0.0, start + sent / rate - time.perf_counter() - tick * 0))
            await asyncio.gather(*pending)
            achieved = sent / (time.perf_counter() - start)
        await asyncio.to_thread(wait_until_caught_up, web, before, sent)
    after = histogram(web)
    delta = {le: after[le] - before.get(le, 0.0) for le in after}
    return {"rate": achieved, "p50": quantile(delta, 0.5), "p99": quantile(delta, 0.99), "n": sent}


def wait_until_caught_up(web: str, before: dict[float, float], sent: int) -> None:
    deadline = time.monotonic() + 120
    while (
        time.monotonic() < deadline
        and histogram(web).get(float("inf"), 0) - before.get(float("inf"), 0) < sent
    ):
        time.sleep(0.2)


def histogram(web: str) -> dict[float, float]:
    text = httpx.get(f"{web}/metrics", timeout=10).text
    found = re.findall(
        r'^engagement_scorer_end_to_end_seconds_bucket\{le="([^"]+)"\} (\S+)$', text, re.M
    )
    return {float(le): float(v) for le, v in found}


def quantile(buckets: dict[float, float], q: float) -> float:
    """Linear interpolation inside the histogram bucket holding the q-quantile."""
    total = buckets.get(float("inf"), 0.0)
    if not total:
        return float("nan")
    lower_le, lower_count = 0.0, 0.0
    for le in sorted(buckets):
        count = buckets[le]
        if count >= q * total:
            if le == float("inf"):
                return lower_le
            share = (q * total - lower_count) / max(count - lower_count, 1e-9)
            return lower_le + (le - lower_le) * share
        lower_le, lower_count = le, count
    return lower_le


async def memory(redis_url: str, candidates: int) -> tuple[float, float]:
    """Redis bytes per candidate (used_memory delta) with and without the dedupe sets."""
    client = connect(redis_url)
    prefix = f"mem:{uuid.uuid4().hex[:6]}:"
    store = ScoreStore(client, prefix=prefix, rules=load_rules(RULES))
    base = redis_used_memory(redis_url)
    now = time.time()
    for i in range(0, candidates * 2, 1000):  # two events per candidate
        await store.apply_batch(
            [
                Interaction.model_validate(interaction(j, candidates, "mem", now))
                for j in range(i, i + 1000)
            ]
        )
    full = redis_used_memory(redis_url)
    async for key in client.scan_iter(match=f"{prefix}*:d", count=5000):
        await client.delete(key)
    without = redis_used_memory(redis_url)
    await client.aclose()
    return (full - base) / candidates, (without - base) / candidates


async def job_memory(redis_url: str, candidates: int) -> tuple[float, float]:
    """Redis bytes per candidate with 5 events each, every one naming another job (5 job
    profiles: hash field, rank member, the job's tier set and sequence entries), and with the same
    events naming no job."""
    client = connect(redis_url)
    out = []
    for naming in (True, False):
        store = ScoreStore(client, prefix=f"memj:{uuid.uuid4().hex[:6]}:", rules=load_rules(RULES))
        base = redis_used_memory(redis_url)
        now = time.time()
        for start in range(0, candidates, 200):
            batch = []
            for k in range(start, min(start + 200, candidates)):
                for j in range(5):
                    fields = interaction(k * 5 + j, 10**9, "memj", now)
                    fields["userId"] = f"u{k}"
                    fields["properties"] = (
                        {"jobId": f"J-{(k % JOB_GROUPS) * 5 + j}"} if naming else {}
                    )
                    batch.append(Interaction.model_validate(fields))
            await store.apply_batch(batch)
        out.append((redis_used_memory(redis_url) - base) / candidates)
    await client.aclose()
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--naive-events", type=int, default=6_000)
    parser.add_argument("--candidates", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--memory-candidates", type=int, default=100_000)
    parser.add_argument(
        "--job-share", type=float, default=0.0, help="share of the events naming a job (0 to 1)"
    )
    parser.add_argument("--redis-cluster", action="store_true", help="a 3-master Redis Cluster")
    parser.add_argument("--kafka", action="store_true", help="Apache Kafka instead of Tansu")
    parser.add_argument("--naive-agent", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--null-agent", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global JOB_SHARE
    JOB_SHARE = args.job_share
    if args.naive_agent:
        return naive_agent_main()
    if args.null_agent:
        return null_agent_main()
    broker = local_kafka.start_kafka() if args.kafka else localstack.start_tansu()
    redis_proc = (
        redis_cluster.start_redis_cluster() if args.redis_cluster else localstack.start_redis()
    )
    redis_url = (
        redis_proc.url
        if isinstance(redis_proc, redis_cluster.LocalRedisCluster)
        else redis_proc.address
    )
    try:
        run(args, broker.address, redis_url, broker.proc.pid)
    finally:
        broker.stop()
        redis_proc.stop()


def run(args: argparse.Namespace, kafka: str, redis_url: str, broker_pid: int) -> None:
    prefix = f"b{uuid.uuid4().hex[:6]}."
    topics = Topics(prefix)
    asyncio.run(ensure_topics(kafka, topics, partitions=PARTITIONS, replication_factor=1))
    asyncio.run(produce(kafka, topics.interactions, args.events, args.candidates, "bench"))
    print(
        f"scorer bench: {args.events:,} events, {args.candidates:,} candidates, {PARTITIONS} partitions, "
        f"{'Apache Kafka' if args.kafka else 'Tansu'} + "
        f"{'a 3-master Redis Cluster (1 replica each)' if args.redis_cluster else 'Redis'} on this box"
        f", {JOB_SHARE:.0%} of the events naming a job"
    )
    a = asyncio.run(raw_consumer(kafka, topics.interactions, args.events))
    b, redis_b = asyncio.run(direct_redis(redis_url, args.events, args.candidates, "bench"))
    env = scorer_env(
        kafka, redis_url, prefix, f"ours{uuid.uuid4().hex[:6]}", localstack.free_port()
    )
    proc, web = start_scorer(env)
    rss = RssSampler(proc.pid)
    rss.start()
    try:
        budget = CpuBudget(proc.pid, redis_url, broker_pid)
        nodes_before = redis_cpu_by_node(redis_url)
        first, last = wait_count(web, args.events)
        cpu = budget.per_event(args.events)
        nodes = {
            k: (v - nodes_before[k]) / args.events for k, v in redis_cpu_by_node(redis_url).items()
        }
        redis_ours = cpu["redis"]
        ours = (args.events - 1) / max(last - first, 1e-9)
        c = naive_rate(
            scorer_env(kafka, redis_url, prefix, f"naive{uuid.uuid4().hex[:6]}", 0),
            args.naive_events,
        )
        d = naive_rate(
            scorer_env(
                kafka, redis_url, prefix, f"null{uuid.uuid4().hex[:6]}", localstack.free_port()
            ),
            args.events,
            "--null-agent",
        )
        print(f"  ours   (scorer, 1 worker process)      {ours:10,.0f} events/s")
        print(f"  (a)    raw aiokafka consume + decode   {a:10,.0f} events/s")
        print(f"  (b)    pipelined Lua straight to Redis {b:10,.0f} events/s")
        print(
            f"  (c)    naive Faust agent, 1 call/event {c:10,.0f} events/s (first {args.naive_events:,} events)"
        )
        print(
            f"  (d)    Faust alone, agent does nothing {d:10,.0f} events/s (the framework's ceiling)"
        )
        print(
            f"  ours / min(a, b) = {ours / min(a, b):.2f}   (targets: >= 20,000 events/s and >= 0.4)"
        )
        print(f"  Redis CPU per event: {redis_ours * 1e6:.1f} µs under ours (scripts, rank updates, "
              f"scrapes), {redis_b * 1e6:.1f} µs under (b): one Redis core serves about "
              f"{1 / max(redis_ours, 1e-9):,.0f} events/s")  # fmt: skip
        if len(nodes) > 1:
            print("  Redis CPU per event by node: " + ", ".join(
                f"{name} {used * 1e6:.1f} µs" for name, used in sorted(nodes.items())))  # fmt: skip
        total = sum(cpu.values())
        cores = len(os.sched_getaffinity(0))
        print(f"  CPU per event while ours drains: scorer {cpu['scorer'] * 1e6:.1f} µs (all its threads), "
              f"Redis {cpu['redis'] * 1e6:.1f} µs, broker {cpu['broker'] * 1e6:.1f} µs; {total * 1e6:.1f} µs "
              f"in all: {cores} cores hold at most {cores / total:,.0f} events/s at that cost; one core "
              f"of scorer CPU scores {1 / max(cpu['scorer'], 1e-9):,.0f} events/s")  # fmt: skip
        e2e = asyncio.run(end_to_end(kafka, redis_url, prefix, web, args.rate, args.seconds))
        print(f"  end-to-end (HTTP received -> score in Redis) at {e2e['rate']:,.0f} events/s for {args.seconds}s "
              f"({e2e['n']:,.0f} events): p50 {e2e['p50'] * 1000:.0f} ms, p99 {e2e['p99'] * 1000:.0f} ms (histogram-interpolated)")  # fmt: skip
    finally:
        rss.stop.set()
        proc.terminate()
        proc.wait(30)
    samples = rss.samples or [0.0]
    print(
        f"  scorer RSS over {time.monotonic() - rss.started:.0f} s: start {samples[0]:.0f} MiB, max {max(samples):.0f} MiB, end {samples[-1]:.0f} MiB"
    )
    per_minute = ", ".join(f"{mib:.0f}" for mib in samples[::60])
    print(f"  scorer RSS once a minute (MiB): {per_minute}")
    full, without = asyncio.run(memory(redis_url, args.memory_candidates))
    print(f"  Redis bytes per candidate over {args.memory_candidates:,} candidates (2 events each): "
          f"{full:,.0f} B with dedupe sets, {without:,.0f} B without (target <= 1,500 B)")  # fmt: skip
    jobs, plain = asyncio.run(job_memory(redis_url, args.memory_candidates // 5))
    print(f"  Redis bytes per candidate with 5 job profiles ({args.memory_candidates // 5:,} candidates, 5 "
          f"events each, each naming another job): {jobs:,.0f} B, beside {plain:,.0f} B with the same "
          f"events naming none: {(jobs - plain) / 5:,.0f} B per job profile")  # fmt: skip


if __name__ == "__main__":
    main()
