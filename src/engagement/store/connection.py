"""Connections to Redis: the one place every service and tool builds its Redis client.

``REDIS_URL`` names one server, a single Redis or any node of a Redis Cluster. ``connect`` asks it
(``INFO cluster``: ``cluster_enabled:1``) unless ``REDIS_CLUSTER`` says which, and returns redis-py's
cluster client for a cluster, the plain client otherwise. The store's keys are laid out for a
cluster (``engagement.store.redis_keys``: each script touches one slot), so the same code runs on
both. A process whose Redis did not answer at startup cannot ask: it takes the URL for a single
Redis, keeps asking in the background, and stops itself (SIGTERM, a warm shutdown) should the
server turn out to be a cluster node, so its supervisor starts it again in cluster mode.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any, Literal, TypeAlias

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

RedisClient: TypeAlias = aioredis.Redis | RedisCluster
ClusterMode = Literal["auto", "true", "false"]

ASK_EVERY_SECONDS = 2.0  # how often a process that could not ask at startup asks again

log = logging.getLogger("engagement.store")


def cluster_enabled(url: str, *, timeout: float = 2.0) -> bool | None:
    """Whether the server at ``url`` is a Redis Cluster node (``INFO cluster``); None when it
    does not answer."""
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        info = client.info("cluster")
    except redis.RedisError:
        return None
    finally:
        client.close()
    return bool(int(info.get("cluster_enabled", 0)))


def connect(url: str, *, cluster: ClusterMode | bool = "auto", **options: Any) -> RedisClient:
    """A client of the Redis at ``url``: redis-py's cluster client when it is a cluster node
    (``cluster``: "auto" asks the server, "true"/"false" or a bool say), else the plain one.
    ``options`` go to the client (socket_timeout, health_check_interval, ...). No command is
    sent by the client until it is used; "auto" sends one at once (``cluster_enabled``)."""
    wanted = _wanted(url, cluster)
    if wanted:
        return RedisCluster.from_url(url, **options)
    return aioredis.Redis.from_url(url, **options)


def _wanted(url: str, cluster: ClusterMode | bool) -> bool:
    if isinstance(cluster, bool):
        return cluster
    if cluster != "auto":
        return cluster == "true"
    found = cluster_enabled(url)
    if found is None:
        log.warning(
            "Redis at %s does not answer: taken for a single Redis until it does (a cluster "
            "node then stops this process, to be started again); REDIS_CLUSTER=true|false "
            "says which without asking",
            _without_password(url),
            extra={"event": "redis.mode_unknown"},
        )
        _ask_later(url)
        return False
    return found


def _ask_later(url: str) -> None:
    """Ask in a daemon thread until the server answers; stop the process if it is a cluster."""

    def ask() -> None:
        stop = threading.Event()
        while not stop.wait(ASK_EVERY_SECONDS):
            found = cluster_enabled(url)
            if found is None:
                continue
            if found:
                log.error(
                    "Redis at %s is a cluster node, taken for a single Redis at startup: "
                    "stopping, to be started again in cluster mode",
                    _without_password(url),
                    extra={"event": "redis.cluster_found_late"},
                )
                os.kill(os.getpid(), signal.SIGTERM)
            return

    threading.Thread(target=ask, name="redis-mode", daemon=True).start()


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url


def is_cluster(client: RedisClient) -> bool:
    """Whether ``client`` is redis-py's cluster client."""
    return isinstance(client, RedisCluster)


async def answers(client: RedisClient) -> bool:
    """True when Redis answers a PING (the workers' readiness probe; on a cluster, every
    master)."""
    try:
        return bool(await client.ping())
    except Exception:
        return False
