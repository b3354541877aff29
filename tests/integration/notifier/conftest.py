"""The notifier as a subprocess against the session broker and Redis, and a real webhook receiver."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from engagement.kafka.admin import ensure_topics
from engagement.kafka.topics import Topics
from engagement.model.records import Cause, ScoreChange
from engagement.tools.localstack import free_port
from tests.support.server import serve

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ENGAGEMENT = str(Path(sys.executable).with_name("engagement"))

RULES_TOML = """
version = "test-{half_life}"
half_life_days = {half_life}
score_scale = 50.0
alert_tier = "hot"
[[tiers]]
name = "cold"
enter = 1
exit = 1
[[tiers]]
name = "warm"
enter = 40
exit = 35
[[tiers]]
name = "hot"
enter = 70
exit = 65
"""


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """An ATS stand-in: answers each path with a scripted list of statuses (the last repeats)."""

    scripts: dict[str, list[int]] = field(default_factory=dict)
    retry_after: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base: str = ""

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        with self.lock:
            if path != "/healthz":
                self.received.append(Received(path, headers, body, time.time()))
            n = len([r for r in self.received if r.path == path])
            script = self.scripts.get(path, [200])
            status = script[min(n, len(script)) - 1] if path != "/healthz" else 200
        headers_out = [(b"content-type", b"text/plain")]
        if status >= 400 and path in self.retry_after:
            headers_out.append((b"retry-after", self.retry_after[path].encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers_out})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    app = Receiver()
    with serve(app) as base:
        app.base = base
        yield app


def webhooks_toml(receiver: Receiver, endpoints: dict[str, dict[str, object]]) -> str:
    """Endpoints at the receiver; loopback is allowed per endpoint (``allow_private``) only."""
    lines = ["require_https = false"]
    for name, options in endpoints.items():
        options = {"allow_private": True, **options}
        lines += [
            "[[endpoints]]",
            f'id = "{name}"',
            f'url = "{receiver.base}/hooks/{name}"',
            f'secret = "{SECRET}"',
        ]
        lines += [f"{k} = {orjson.dumps(v).decode()}" for k, v in options.items()]
    return "\n".join(lines) + "\n"


@dataclass
class Notifier:
    """One notifier subprocess; start/stop/kill it, read its log."""

    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return int(self.env["NOTIFIER_WEB_PORT"])

    def start(self, timeout: float = 60.0) -> Notifier:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [ENGAGEMENT, "notifier"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"notifier exited {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200:
                    return self
            time.sleep(0.2)
        raise AssertionError(f"notifier not ready after {timeout}s:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="module")
def make_notifier(kafka_bootstrap, redis_url) -> Iterator[Callable[..., Notifier]]:
    """Build notifiers: ``make_notifier(prefix=, redis_prefix=, webhooks=, half_life_days=, **env)``."""
    started: list[Notifier] = []

    def make(
        *, prefix: str, redis_prefix: str, webhooks: str, half_life_days: float = 30.0, **env: str
    ) -> Notifier:
        workdir = Path(tempfile.mkdtemp(prefix="notifier-it-"))  # outlives pytest tmp rotation
        (workdir / "rules.toml").write_text(RULES_TOML.format(half_life=half_life_days))
        (workdir / "webhooks.toml").write_text(webhooks)
        full = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "KAFKA_TOPIC_PREFIX": prefix,
            "KAFKA_TOPIC_PARTITIONS": "2",
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": redis_prefix,
            "RULES_FILE": str(workdir / "rules.toml"),
            "WEBHOOKS_FILE": str(workdir / "webhooks.toml"),
            "NOTIFIER_WEB_PORT": str(free_port()),
            "NOTIFIER_DATA_DIR": str(workdir / "data"),
            "NOTIFIER_SESSION_TIMEOUT": "6",
            "NOTIFIER_HEARTBEAT_INTERVAL": "1",
            "NOTIFIER_REBALANCE_TIMEOUT": "6",
            "NOTIFIER_REQUEST_TIMEOUT": "10",
            "NOTIFIER_SWEEP_INTERVAL": "1",
            "WEBHOOK_TIMEOUT": "2",
            "WEBHOOK_MAX_ATTEMPTS": "3",
            "WEBHOOK_RETRY_BASE": "0.3",
            "WEBHOOK_RETRY_FACTOR": "2",
            "WEBHOOK_RETRY_JITTER": "0.1",
            "WEBHOOK_POLL_INTERVAL": "0.1",
            **env,
        }
        notifier = Notifier(full, workdir / "notifier.log")
        started.append(notifier)
        return notifier

    yield make
    for notifier in started:
        notifier.stop()


@dataclass
class ScoreFeed:
    """Produces ScoreChange records to the changes topic, as the scorer would."""

    producer: AIOKafkaProducer
    topics: Topics

    async def send(self, change: ScoreChange) -> None:
        key = f"{change.tenantId}:{change.candidateId}".encode()
        await self.producer.send_and_wait(
            self.topics.scores_changed, key=key, value=change.model_dump_json().encode()
        )


@pytest.fixture
async def feed_for(kafka_bootstrap) -> AsyncIterator[Callable[[Topics], ScoreFeed]]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()

    def make(topics: Topics) -> ScoreFeed:
        return ScoreFeed(producer, topics)

    try:
        yield make
    finally:
        await producer.stop()


async def create_topics(bootstrap: str, topics: Topics) -> None:
    await ensure_topics(bootstrap, topics, partitions=2, replication_factor=1)


def score_change(
    tenant: str,
    candidate: str,
    seq: int,
    *,
    score: int,
    tier: str,
    previous: str | None,
    raw: float | None = None,
    as_of: datetime | None = None,
    cause: str = "event",
) -> ScoreChange:
    import math

    return ScoreChange(
        tenantId=tenant,
        candidateId=candidate,
        score=score,
        previousScore=None,
        tier=tier,
        previousTier=previous,
        raw=raw if raw is not None else 50.0 * math.log(100 / (100.5 - score)),
        pillars={},
        channels={},
        sequence=seq,
        asOf=as_of or datetime.now(UTC),
        rulesVersion="test",
        cause=Cause(messageId=f"m-{candidate}-{seq}", event="Application Submitted", type=cause),
    )
