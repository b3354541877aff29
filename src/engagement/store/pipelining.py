"""Commands pipelined to Redis without waiting: on one connection to a single Redis, or on one
connection per master of a Redis Cluster (each command goes to the master of its first key's
slot, in the order given; replies come back in that order too).

The store's commands each touch one slot (``engagement.store.redis_keys``), so a batch splits by
master with nothing to coordinate between them. On a cluster, a command a master refuses because
its slot is elsewhere now (``MOVED``/``ASK`` after a failover or a resharding, ``TRYAGAIN``,
``CLUSTERDOWN`` while a failover runs) is sent again on its own through redis-py's cluster client,
which follows the redirect and refreshes its map of the slots; a master that does not answer
fails the call (an outage: the caller retries the batch, and every store command is idempotent)
and has the client refresh its map before the next.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

from engagement.store.cluster_lanes import on_cluster
from engagement.store.connection import RedisClient
from engagement.store.wire import (
    CHUNK,
    Command,
    OnReply,
    after_loads,
    checked,
    loads_for,
    read_all,
    shifted,
    write,
)

__all__ = ["Command", "OnReply", "run_pipelined"]


async def run_pipelined(
    redis: RedisClient,
    commands: Iterable[Command],
    sources: dict[str, str],
    on_reply: OnReply | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> list[Any]:
    """Replies of ``commands`` sent without waiting (packed by hiredis, written in chunks);
    ``EVALSHA`` of a script the server lacks (``sources``: sha -> text) is loaded and resent.
    Raises the first other error, after every reply is read.

    ``commands`` may be a lazy iterable: each chunk is taken from it just before it is written,
    so Redis runs the first commands while the caller still builds the next ones.
    ``on_reply(k, reply)`` sees each successful reply as soon as it arrives (on a cluster: as
    soon as it and every reply before it arrived), so the caller works on early replies while
    Redis still runs the later commands; ``meanwhile()`` runs once every command is written,
    before any reply is read.
    """
    if isinstance(redis, RedisCluster):
        return await on_cluster(redis, commands, sources, on_reply, meanwhile)
    sent: list[Command] = []
    replies = await _exchange(redis, commands, sent, on_reply, meanwhile, sources)
    missing = [k for k, r in enumerate(replies) if isinstance(r, NoScriptError)]
    if missing:
        for sha in {sent[k][1] for k in missing}:
            await redis.script_load(sources[sha])
        again = None if on_reply is None else lambda j, reply: on_reply(missing[j], reply)
        resent = await _exchange(redis, [sent[k] for k in missing], [], again, None, {})
        for k, reply in zip(missing, resent, strict=True):
            replies[k] = reply
    return checked(replies)


async def _exchange(
    redis: aioredis.Redis,
    commands: Iterable[Command],
    sent: list[Command],
    on_reply: OnReply | None,
    meanwhile: Callable[[], None] | None,
    sources: dict[str, str],
) -> list[Any]:
    """Write ``commands`` (appending each to ``sent``), then read as many replies; the scripts
    the connection's server may lack are loaded first, on the same socket (``_loads``)."""
    pool = redis.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        loads = await loads_for(conn, sources)
        if loads:
            await write(conn, loads, first=True)
        pending = iter(commands)
        while chunk := list(islice(pending, CHUNK)):
            sent.extend(chunk)
            await write(conn, chunk, first=not loads and len(sent) == len(chunk))
        if meanwhile is not None:
            meanwhile()
        if not sent and not loads:
            return []
        return after_loads(
            await read_all(conn, len(loads) + len(sent), shifted(on_reply, len(loads))),
            len(loads),
        )
    except BaseException:
        await conn.disconnect()  # replies may be left unread: never reuse the socket
        raise
    finally:
        await pool.release(conn)
