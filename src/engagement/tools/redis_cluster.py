"""A local Redis Cluster for tests and benchmarks: three masters with a replica each, from the
``redis-server`` and ``redis-cli`` that ``engagement.tools.localstack`` finds."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from engagement.tools.localstack import (
    LocalProcess,
    LocalServiceError,
    redis_server,
    redis_server_binary,
)

CLUSTER_BUS_OFFSET = 10000  # Redis 6.2: a node's cluster bus listens on its port + 10000


def redis_cli_binary() -> str:
    """The redis-cli next to ``redis_server_binary()`` (it creates clusters)."""
    cli = Path(redis_server_binary()).with_name("redis-cli")
    if not cli.exists():
        raise LocalServiceError(f"no redis-cli beside {redis_server_binary()}")
    return str(cli)


def cluster_port() -> int:
    """A port that binds now, whose cluster bus port (+10000) binds too, both below the range
    the kernel hands out to outgoing connections (ports from 32768 on, on Linux)."""
    import random

    for _ in range(500):
        port = random.randrange(12000, 22700)
        if _bindable(port) and _bindable(port + CLUSTER_BUS_OFFSET):
            return port
    raise LocalServiceError("no free port pair for a Redis Cluster node")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class LocalRedisCluster:
    """A Redis Cluster of throw-away nodes on 127.0.0.1 (masters first, then their replicas)."""

    nodes: list[LocalProcess]
    workdir: Path

    @property
    def url(self) -> str:
        """The URL of the first node: any node is enough for a client."""
        return self.nodes[0].address

    def ports(self) -> list[int]:
        """Every node's port, in start order."""
        return [int(urlparse(node.address).port or 0) for node in self.nodes]

    def stop(self) -> None:
        """Stop every node and remove their files."""
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_redis_cluster(
    masters: int = 3, replicas: int = 1, *, node_timeout_ms: int = 1000, timeout: float = 60.0
) -> LocalRedisCluster:
    """Start a Redis Cluster of ``masters`` masters with ``replicas`` replicas each (no
    persistence) from ``redis_server_binary()``; return once every slot is served
    (``cluster_state:ok`` on every node). ``node_timeout_ms``: how long a master may not answer
    before its replica takes over."""
    workdir = Path(tempfile.mkdtemp(prefix="engagement-redis-cluster-"))
    nodes: list[LocalProcess] = []
    cluster = LocalRedisCluster(nodes, workdir)
    try:
        for k in range(masters * (1 + replicas)):
            nodes.append(_cluster_node(cluster_port(), workdir / f"n{k}", node_timeout_ms, timeout))
        create = [redis_cli_binary(), "--cluster", "create"]
        create += [f"127.0.0.1:{port}" for port in cluster.ports()]
        create += ["--cluster-replicas", str(replicas), "--cluster-yes"]
        done = subprocess.run(create, capture_output=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise LocalServiceError(f"redis-cli --cluster create failed: {done.stdout[-2000:]!r}")
        wait_cluster_ok([node.address for node in nodes], timeout=timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _cluster_node(port: int, workdir: Path, node_timeout_ms: int, timeout: float) -> LocalProcess:
    workdir.mkdir(parents=True)
    cluster = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
    cluster += ["--cluster-node-timeout", str(node_timeout_ms)]
    return redis_server(port, workdir, *cluster, timeout=timeout)


def wait_cluster_ok(urls: list[str], *, timeout: float) -> None:
    """Wait until every node at ``urls`` says ``cluster_state:ok``."""
    import redis

    deadline = time.monotonic() + timeout
    for url in urls:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            while _cluster_state(client) != "ok":
                if time.monotonic() > deadline:
                    raise LocalServiceError(f"Redis Cluster not ok at {url} after {timeout:.0f}s")
                time.sleep(0.1)
        finally:
            client.close()


def _cluster_state(client: Any) -> str:
    """``cluster_state`` of ``CLUSTER INFO`` (``ok`` once every slot is served)."""
    return str(client.execute_command("CLUSTER INFO").get("cluster_state"))
