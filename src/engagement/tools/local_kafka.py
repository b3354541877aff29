"""Apache Kafka for tests and the dev stack: fetched once from Maven Central, run as one JVM.

``deploy/kafka/pom.xml`` names the broker (``org.apache.kafka:kafka_2.13``); ``fetch`` copies its
jars with their dependencies into a cache directory (``ENGAGEMENT_KAFKA_CACHE``, default
``~/.cache/engagement/kafka-<version>``) and ``start_kafka`` runs it in KRaft combined mode
(broker and controller in one process) on free ports, its logs in a temporary directory.

``python -m engagement.tools.local_kafka`` fills the cache (``make kafka``; ``make test`` runs it).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from engagement.tools.localstack import (
    LocalProcess,
    LocalServiceError,
    die_with_parent,
    free_port,
    port_open,
    wait_for_port,
)

DEPLOY_DIR = Path(__file__).resolve().parents[3] / "deploy" / "kafka"
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


def kafka_version() -> str:
    """Return the Kafka version ``deploy/kafka/pom.xml`` names."""
    found = re.search(r"<kafka.version>([^<]+)</kafka.version>", _pom().read_text())
    if found is None:
        raise LocalServiceError(f"{_pom()} names no <kafka.version>")
    return found.group(1).strip()


def cache_dir() -> Path:
    """Where the broker's jars are kept: ``ENGAGEMENT_KAFKA_CACHE``, else the user's cache."""
    configured = os.environ.get("ENGAGEMENT_KAFKA_CACHE")
    if configured:
        return Path(configured).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "engagement" / f"kafka-{kafka_version()}"


def fetched(cache: Path | None = None) -> bool:
    """Whether the cache holds a complete copy of the broker's jars."""
    return ((cache or cache_dir()) / "lib" / "COMPLETE").exists()


def fetch(cache: Path | None = None) -> Path:
    """Copy the broker's jars from Maven Central into the cache once; return the cache.

    Safe to race: each fetch fills a directory of its own and the first to finish renames it
    into place."""
    cache = cache or cache_dir()
    if fetched(cache):
        return cache
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalServiceError("Apache Kafka is fetched with Maven: install maven (and Java 17+)")
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="lib-", dir=cache))
    try:
        _copy_dependencies(mvn, staging)
        (staging / "COMPLETE").write_text(kafka_version() + "\n")
        try:
            staging.rename(cache / "lib")
        except OSError:  # another fetch finished first
            if not fetched(cache):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return cache


def _copy_dependencies(mvn: str, into: Path) -> None:
    args = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(_pom()),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={into}",
        "-DincludeScope=runtime",
    ]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LocalServiceError(f"fetching Apache Kafka failed:\n{done.stdout}{done.stderr}")


def _pom() -> Path:
    pom = DEPLOY_DIR / "pom.xml"
    if not pom.exists():
        raise LocalServiceError(f"no {pom}: Apache Kafka runs from a checkout of the project")
    return pom


def java_binary() -> str:
    """Return the ``java`` to run the broker with (``JAVA_HOME`` first, then PATH)."""
    home = os.environ.get("JAVA_HOME")
    candidate = Path(home) / "bin" / "java" if home else None
    if candidate is not None and candidate.exists():
        return str(candidate)
    on_path = shutil.which("java")
    if on_path is None:
        raise LocalServiceError("Apache Kafka needs Java 17+: install a JDK (openjdk-17)")
    return on_path


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
    config = _write_config(workdir, port=port, controller_port=free_port())
    _format_storage(classpath, config, ["--standalone"])
    log_path = (log_dir or workdir) / "kafka.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [java_binary(), *_jvm_options(), "-cp", classpath, "kafka.Kafka", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    local = LocalProcess(proc, log_path, f"127.0.0.1:{port}", workdir)
    try:
        wait_for_port("127.0.0.1", port, timeout=timeout, proc=proc)
        _wait_started(local.proc, local.log_path, 0, timeout)
    except LocalServiceError as exc:
        local.stop()
        raise LocalServiceError(f"Apache Kafka did not start: {exc}\n{local.log_tail()}") from exc
    return local


@dataclass
class KafkaNode:
    """One node of a ``KafkaCluster``: a JVM that is broker and controller, on fixed ports and a
    data directory of its own, so that it can be killed and started again with its data."""

    node_id: int
    port: int
    controller_port: int
    config: Path
    classpath: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _log_offset: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def launch(self) -> None:
        """Start the JVM (on this thread: it dies with the thread that started it)."""
        if self.alive:
            raise LocalServiceError(f"Kafka node {self.node_id} is running already")
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        argv = [java_binary(), *_jvm_options(), "-cp", self.classpath, "kafka.Kafka"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*argv, str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        self.starts += 1

    def wait_started(self, timeout: float = 90.0) -> None:
        """Return once this start of the node logged that it serves clients."""
        assert self.proc is not None
        _wait_started(self.proc, self.log_path, self._log_offset, timeout)
        wait_for_port("127.0.0.1", self.port, timeout=timeout, proc=self.proc)

    def start(self, timeout: float = 90.0) -> None:
        """Start the node again with the data it had; return once it serves clients."""
        self.launch()
        self.wait_started(timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill: no controlled shutdown, the log recovered at the
        next start."""
        self._signal(signal.SIGKILL)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (a controlled shutdown: leadership moves first), SIGKILL after ``timeout``."""
        self._signal(signal.SIGTERM, timeout)

    def _signal(self, sig: int, timeout: float = 10.0) -> None:
        if not self.alive:
            return
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


@dataclass
class KafkaCluster:
    """Apache Kafka nodes, each broker and controller, forming one KRaft quorum."""

    nodes: list[KafkaNode]
    workdir: Path

    @property
    def bootstrap(self) -> str:
        """Every node's address, comma separated (what clients are given)."""
        return ",".join(n.address for n in self.nodes)

    def node(self, node_id: int) -> KafkaNode:
        return next(n for n in self.nodes if n.node_id == node_id)

    def stop(self) -> None:
        """Stop every node and remove their data."""
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_kafka_cluster(size: int = 3, *, timeout: float = 120.0) -> KafkaCluster:
    """Start ``size`` Apache Kafka nodes on 127.0.0.1 (each broker and controller, a static
    quorum of them all) and return once every one serves clients.

    Internal topics and topics created without a factor get ``min(size, 3)`` replicas and
    ``min.insync.replicas`` one less (at least 1), as the services create theirs; ``KafkaCluster.stop``
    removes the data."""
    classpath = str(fetch() / "lib" / "*")
    workdir = Path(tempfile.mkdtemp(prefix="engagement-kafka-cluster-"))
    ports = [(node_id, free_port(), free_port()) for node_id in range(1, size + 1)]
    voters = ",".join(f"{i}@127.0.0.1:{c}" for i, _, c in ports)
    cluster_id, nodes = _cluster_id(), []
    for node_id, port, controller_port in ports:
        home = workdir / f"node-{node_id}"
        home.mkdir()
        config = _write_config(
            home,
            port=port,
            controller_port=controller_port,
            overrides={**_cluster_config(size), "node.id": str(node_id)},
            voters=voters,
        )
        _format_storage(classpath, config, [], cluster_id=cluster_id)
        nodes.append(
            KafkaNode(node_id, port, controller_port, config, classpath, home / "kafka.log")
        )
    cluster = KafkaCluster(nodes, workdir)
    try:
        for node in nodes:  # all at once: a node waits for a quorum of the others
            node.launch()
        for node in nodes:
            node.wait_started(timeout)
    except LocalServiceError as exc:
        tails = "\n".join(f"node {n.node_id}:\n{n.log_tail()}" for n in nodes)
        cluster.stop()
        raise LocalServiceError(f"Apache Kafka cluster did not start: {exc}\n{tails}") from exc
    return cluster


def _cluster_config(size: int) -> dict[str, str]:
    replicas = str(min(size, 3))
    min_isr = str(max(1, min(size, 3) - 1))
    return {
        "default.replication.factor": replicas,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replicas,
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": min_isr,
        # leadership goes back to a restarted node's preferred replicas within seconds, not 5 min
        "leader.imbalance.check.interval.seconds": "5",
    }


def _jvm_options() -> list[str]:
    logging = f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.properties'}"
    return [*JVM_OPTIONS, logging]


def _write_config(
    workdir: Path,
    *,
    port: int,
    controller_port: int,
    overrides: dict[str, str] | None = None,
    voters: str | None = None,
) -> Path:
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


def _format_storage(
    classpath: str, config: Path, quorum: list[str], *, cluster_id: str | None = None
) -> None:
    args = [java_binary(), *_jvm_options(), "-cp", classpath, "kafka.tools.StorageTool"]
    args += ["format", "--config", str(config), "--cluster-id", cluster_id or _cluster_id()]
    done = subprocess.run([*args, *quorum], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LocalServiceError(f"kafka-storage format failed:\n{done.stdout}{done.stderr}")


def _cluster_id() -> str:
    """A random cluster id as Kafka writes them (an id starting with '-' reads as an option)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _wait_started(
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
