"""Start and stop the local pipeline: the broker (Tansu, or Apache Kafka), Redis, the webhook
receiver, ingest, scorer, notifier."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from engagement.model.webhooks import load_webhooks
from engagement.tools.devstack.children import Child
from engagement.tools.devstack.receiver import ReceivedAlert, WebhookReceiver
from engagement.tools.devstack.settings import DevSettings
from engagement.tools.local_kafka import start_kafka
from engagement.tools.localstack import (
    LocalProcess,
    LocalServiceError,
    ensure_redis,
    free_port,
    port_open,
    start_tansu,
)

Progress = Callable[[str], None]

# Tuning for a single-node broker (docs/design.md §7): short group timeouts, quick sweeps and
# retries; producers find out themselves whether the broker takes idempotence. Environment
# variables of the same name win.
DEV_DEFAULTS = {
    "KAFKA_TOPIC_PARTITIONS": "4",
    "REDIS_KEY_PREFIX": "dev:",
    "SCORER_SESSION_TIMEOUT": "6",
    "SCORER_HEARTBEAT_INTERVAL": "1",
    "SCORER_REBALANCE_TIMEOUT": "6",
    "NOTIFIER_SESSION_TIMEOUT": "6",
    "NOTIFIER_HEARTBEAT_INTERVAL": "1",
    "NOTIFIER_REBALANCE_TIMEOUT": "6",
    "NOTIFIER_SWEEP_INTERVAL": "5",
    "WEBHOOK_TIMEOUT": "5",
    "WEBHOOK_RETRY_BASE": "1",
    "WEBHOOK_MAX_ATTEMPTS": "5",
    "PYTHONUNBUFFERED": "1",
}


@dataclass(frozen=True)
class StackOptions:
    """What `engagement dev` was asked for."""

    http_port: int
    kafka_port: int
    receiver_port: int | None
    broker: str = "tansu"  # or "kafka": Apache Kafka from engagement.tools.local_kafka's cache


@dataclass
class Stack:
    """Everything one `engagement dev` run started; ``stop`` undoes it in reverse order."""

    workdir: Path
    kafka: LocalProcess | None = None
    redis: LocalProcess | None = None
    redis_url: str = ""
    receiver: WebhookReceiver | None = None
    children: dict[str, Child] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['ingest']}"

    def web_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def dead_child(self) -> Child | None:
        """Return a child that has exited, if any."""
        return next((c for c in self.children.values() if c.exit_code() is not None), None)

    def stop(self, progress: Progress, *, keep_logs: bool = False) -> None:
        """Stop children (ingest first so no request is half-done), receiver, Redis, Kafka."""
        for name in ("ingest", "scorer", "notifier"):
            child = self.children.get(name)
            if child is not None:
                code = child.stop()
                progress(f"stopped: {name} pid={child.pid} exit={code}")
        if self.receiver is not None:
            self.receiver.stop()
        for name, local in (("redis", self.redis), ("kafka", self.kafka)):
            if local is not None:
                local.stop()
                progress(f"stopped: {name} pid={local.proc.pid}")
        if keep_logs:
            progress(f"logs kept in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_stack(
    options: StackOptions,
    *,
    settings: DevSettings,
    on_alert: Callable[[ReceivedAlert], None],
    progress: Progress,
) -> Stack:
    """Start every part; on failure stop what was started and raise LocalServiceError."""
    stack = Stack(workdir=Path(tempfile.mkdtemp(prefix="engagement-dev-")))
    try:
        _start_infrastructure(stack, options, progress)
        webhooks_file = _start_receiver(stack, options, settings, on_alert, progress)
        env = child_environment(stack, settings, webhooks_file)
        _start_services(stack, options, env, progress)
    except BaseException:
        stack.stop(progress, keep_logs=True)
        raise
    return stack


def _start_infrastructure(stack: Stack, options: StackOptions, progress: Progress) -> None:
    if port_open("127.0.0.1", options.http_port):
        raise LocalServiceError(f"port {options.http_port} is taken; pass --http-port")
    if options.broker == "kafka":
        progress(f"starting: kafka (Apache Kafka) on 127.0.0.1:{options.kafka_port}")
        stack.kafka = start_kafka(options.kafka_port, log_dir=stack.workdir)
    else:
        progress(f"starting: kafka (Tansu) on 127.0.0.1:{options.kafka_port}")
        stack.kafka = start_tansu(options.kafka_port, log_dir=stack.workdir)
    progress(f"started: kafka pid={stack.kafka.proc.pid} address={stack.kafka.address}")
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    progress(f"starting: redis ({url} if it answers, else a private redis-server)")
    stack.redis = ensure_redis(url)
    stack.redis_url = stack.redis.address if stack.redis else url
    pid = f" pid={stack.redis.proc.pid}" if stack.redis else " (already running)"
    progress(f"started: redis{pid} url={stack.redis_url}")


def _start_receiver(
    stack: Stack,
    options: StackOptions,
    settings: DevSettings,
    on_alert: Callable[[ReceivedAlert], None],
    progress: Progress,
) -> Path:
    """Start the receiver for the dev webhooks file's loopback endpoint; return the file to use."""
    config = load_webhooks(settings.config_dir / "webhooks.toml")
    loopback = [
        e for e in config.endpoints if urlsplit(e.url).hostname in {"127.0.0.1", "localhost"}
    ]
    if not loopback:
        raise LocalServiceError("webhooks.toml of the dev config has no 127.0.0.1 endpoint")
    endpoint = loopback[0]
    wanted = options.receiver_port or urlsplit(endpoint.url).port or 0
    port = wanted if wanted and not port_open("127.0.0.1", wanted) else free_port()
    secret = endpoint.secret.get_secret_value()
    stack.receiver = WebhookReceiver(
        host="127.0.0.1", port=port, secret=secret, on_alert=on_alert
    ).start()
    parts = urlsplit(endpoint.url)
    url = urlunsplit(
        (parts.scheme, f"127.0.0.1:{stack.receiver.port}", parts.path, parts.query, "")
    )
    source = (settings.config_dir / "webhooks.toml").read_text()
    target = stack.workdir / "webhooks.toml"
    target.write_text(source.replace(f'"{endpoint.url}"', f'"{url}"'))
    progress(f"started: webhook receiver {url} (verifies signatures with {endpoint.id}'s secret)")
    return target


def child_environment(stack: Stack, settings: DevSettings, webhooks_file: Path) -> dict[str, str]:
    """Return the environment every service child gets."""
    env = {**DEV_DEFAULTS, **os.environ}
    stack.ports.update(scorer=free_port(), notifier=free_port())
    assert stack.kafka is not None
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=stack.kafka.address,
        REDIS_URL=stack.redis_url,
        SOURCES_FILE=str(settings.config_dir / "sources.toml"),
        RULES_FILE=str(settings.config_dir / "rules.toml"),
        WEBHOOKS_FILE=str(webhooks_file),
        INGEST_HOST="127.0.0.1",
        SCORER_WEB_HOST="127.0.0.1",
        NOTIFIER_WEB_HOST="127.0.0.1",
        SCORER_WEB_PORT=str(stack.ports["scorer"]),
        NOTIFIER_WEB_PORT=str(stack.ports["notifier"]),
        SCORER_DATA_DIR=str(stack.workdir / "scorer-data"),
        NOTIFIER_DATA_DIR=str(stack.workdir / "notifier-data"),
    )
    return env


def _start_services(
    stack: Stack, options: StackOptions, env: dict[str, str], progress: Progress
) -> None:
    stack.ports["ingest"] = options.http_port
    commands = {
        "ingest": ["ingest", "--host", "127.0.0.1", "--port", str(options.http_port)],
        "scorer": ["scorer"],
        "notifier": ["notifier"],
    }
    for name, args in commands.items():
        env_one = {**env, "INGEST_PORT": str(options.http_port)}
        child = Child(name, args, env_one, stack.workdir / f"{name}.log").start()
        stack.children[name] = child
        progress(f"started: {name} pid={child.pid} log={child.log_path}")
        if name != "ingest":
            progress(f"{name} metrics: http://127.0.0.1:{stack.ports[name]}/metrics")


def stop_quietly(stack: Stack | None, progress: Progress, *, keep_logs: bool = False) -> None:
    """Stop a stack, never raising (used on the way out)."""
    if stack is not None:
        with suppress(Exception):
            stack.stop(progress, keep_logs=keep_logs)
