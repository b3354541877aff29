"""Apache Kafka as a cluster, for the failover and chaos tests: JVMs that are each broker and
controller, forming one KRaft quorum, each on fixed ports and a data directory of its own so that
it can be killed and started again with its data (one broker: ``engagement.tools.local_kafka``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engagement.tools import local_kafka
from engagement.tools.kafka_jars import fetch, java_binary
from engagement.tools.localstack import (
    LocalServiceError,
    die_with_parent,
    free_port,
    wait_for_port,
)


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
        argv = [java_binary(), *local_kafka.jvm_options(), "-cp", self.classpath, "kafka.Kafka"]
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
        local_kafka.wait_started(self.proc, self.log_path, self._log_offset, timeout)
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
    cluster_id, nodes = local_kafka.new_cluster_id(), []
    for node_id, port, controller_port in ports:
        home = workdir / f"node-{node_id}"
        home.mkdir()
        config = local_kafka.write_config(
            home,
            port=port,
            controller_port=controller_port,
            overrides={**_cluster_config(size), "node.id": str(node_id)},
            voters=voters,
        )
        local_kafka.format_storage(classpath, config, [], cluster_id=cluster_id)
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
