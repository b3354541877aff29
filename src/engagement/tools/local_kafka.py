"""Apache Kafka for tests and the dev stack: the broker from ``engagement.tools.kafka_jars``'s
cache, run as one JVM.

``start_kafka`` runs it in KRaft combined mode (broker and controller in one process) on free
ports, its logs in a temporary directory; the launch steps here (configuration, storage format,
waiting for the started line) serve the nodes of ``engagement.tools.kafka_cluster`` too.

``python -m engagement.tools.local_kafka`` fills the cache (``make kafka``; ``make test`` runs it).
"""

from __future__ import annotations

import base64
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from engagement.tools.kafka_jars import DEPLOY_DIR, fetch, java_binary, kafka_version
from engagement.tools.localstack import (
    LocalProcess,
    LocalServiceError,
    free_port,
    port_open,
    wait_for_port,
)

STARTED_LINE = b"Kafka Server started"

# A broker for one machine that also runs the tests: small heap, a collector without threads of
# its own, groups that form at once, and every internal topic on the one replica there is.
JVM_OPTIONS = (
    "-Xms512m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xss512k",
    "-Djava.awt.headless=true",
)
BROKER_CONFIG = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "num.partitions": "3",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "3",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "3",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "1000",
    "num.network.threads": "2",
    "num.io.threads": "2",
    "background.threads": "2",
    "num.recovery.threads.per.data.dir": "1",
    "log.flush.interval.messages": "9223372036854775807",
    "log.segment.bytes": str(64 * 1024 * 1024),
    "log.retention.check.interval.ms": "3600000",
    "auto.create.topics.enable": "false",
}


def start_kafka(
    port: int | None = None, *, log_dir: Path | None = None, timeout: float = 60.0
) -> LocalProcess:
    """Start Apache Kafka (KRaft, one node) on 127.0.0.1 and return once it serves clients.

    Its data lives in a temporary directory that ``stop()`` removes; the jars are fetched first
    when the cache lacks them."""
    port = port or free_port()
    if port_open("127.0.0.1", port):
        raise LocalServiceError(f"port {port} is already taken; choose another Kafka port")
    classpath = str(fetch() / "lib" / "*")
    workdir = Path(tempfile.mkdtemp(prefix="engagement-kafka-"))
    config = write_config(workdir, port=port, controller_port=free_port())
    format_storage(classpath, config, ["--standalone"])
    log_path = (log_dir or workdir) / "kafka.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [java_binary(), *jvm_options(), "-cp", classpath, "kafka.Kafka", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    local = LocalProcess(proc, log_path, f"127.0.0.1:{port}", workdir)
    try:
        wait_for_port("127.0.0.1", port, timeout=timeout, proc=proc)
        wait_started(local.proc, local.log_path, 0, timeout)
    except LocalServiceError as exc:
        local.stop()
        raise LocalServiceError(f"Apache Kafka did not start: {exc}\n{local.log_tail()}") from exc
    return local


def jvm_options() -> list[str]:
    """The broker's JVM options, its logging configured from ``deploy/kafka/log4j2.properties``."""
    logging = f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.properties'}"
    return [*JVM_OPTIONS, logging]


def write_config(
    workdir: Path,
    *,
    port: int,
    controller_port: int,
    overrides: dict[str, str] | None = None,
    voters: str | None = None,
) -> Path:
    """Write a node's ``server.properties`` into ``workdir``; return its path."""
    quorum = (
        {"controller.quorum.voters": voters}
        if voters
        else {"controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}"}
    )
    config = {
        **BROKER_CONFIG,
        **(overrides or {}),
        **quorum,
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "log.dirs": str(workdir / "data"),
    }
    path = workdir / "server.properties"
    path.write_text("".join(f"{key}={value}\n" for key, value in config.items()))
    return path


def format_storage(
    classpath: str, config: Path, quorum: list[str], *, cluster_id: str | None = None
) -> None:
    """Format a node's data directory (``kafka-storage format``) before its first start."""
    args = [java_binary(), *jvm_options(), "-cp", classpath, "kafka.tools.StorageTool"]
    args += ["format", "--config", str(config), "--cluster-id", cluster_id or new_cluster_id()]
    done = subprocess.run([*args, *quorum], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LocalServiceError(f"kafka-storage format failed:\n{done.stdout}{done.stderr}")


def new_cluster_id() -> str:
    """A random cluster id as Kafka writes them (an id starting with '-' reads as an option)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def wait_started(
    proc: subprocess.Popen[bytes], log_path: Path, offset: int, timeout: float
) -> None:
    """Wait for the started line in ``log_path`` past ``offset`` (a restart appends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log_path, "rb") as log:
            log.seek(offset)
            if STARTED_LINE in log.read():
                return
        if proc.poll() is not None:
            raise LocalServiceError(f"broker exited with {proc.returncode}")
        time.sleep(0.05)
    raise LocalServiceError(f"no '{STARTED_LINE.decode()}' in its log after {timeout:.0f}s")


if __name__ == "__main__":
    print(f"Apache Kafka {kafka_version()} in {fetch()}", file=sys.stderr)
