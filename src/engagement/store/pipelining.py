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

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from itertools import islice
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis._parsers.hiredis import NOT_ENOUGH_DATA, _AsyncHiredisParser
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection, Connection
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ConnectionError,
    MovedError,
    NoScriptError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

from engagement.store.connection import RedisClient

Command = tuple[Any, ...]
OnReply = Callable[[int, Any], None]
CHUNK = 64  # commands packed per socket write: Redis starts on the first while the rest are packed
MOVING = (MovedError, AskError, TryAgainError, ClusterDownError)  # sent again on their own
_MISSING = object()


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
        return await _on_cluster(redis, commands, sources, on_reply, meanwhile)
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
    return _checked(replies)


def _checked(replies: list[Any]) -> list[Any]:
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
    return replies


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
        loads = await _loads(conn, sources)
        if loads:
            await _write(conn, loads, first=True)
        pending = iter(commands)
        while chunk := list(islice(pending, CHUNK)):
            sent.extend(chunk)
            await _write(conn, chunk, first=not loads and len(sent) == len(chunk))
        if meanwhile is not None:
            meanwhile()
        if not sent and not loads:
            return []
        return _after_loads(
            await _read_all(conn, len(loads) + len(sent), _shifted(on_reply, len(loads))),
            len(loads),
        )
    except BaseException:
        await conn.disconnect()  # replies may be left unread: never reuse the socket
        raise
    finally:
        await pool.release(conn)


async def _loads(conn: AbstractConnection, sources: dict[str, str]) -> list[Command]:
    """``SCRIPT LOAD`` of each script the connection has not loaded since it connected (all of
    them on a new socket: a Redis restarted, or a replica promoted, may have none), to write
    before the round's commands. Invariant: the commands of a round run in the order given, so
    an EVALSHA must never fail with NOSCRIPT and run again after the commands behind it (an
    event would be applied before the identify that redirects it). The fallback that sends a
    NOSCRIPT command again stays for a server whose scripts were flushed under a live socket."""
    if not sources:
        return []
    await conn.connect()  # type: ignore[no-untyped-call]
    writer = getattr(conn, "_writer", None)
    held = getattr(conn, "_engagement_scripts", None)
    loaded: set[str] = held[1] if held is not None and held[0] is writer else set()
    missing = [sha for sha in sources if sha not in loaded]
    conn._engagement_scripts = (writer, loaded | set(missing))  # type: ignore[attr-defined]
    return [("SCRIPT", "LOAD", sources[sha]) for sha in missing]


def _shifted(on_reply: OnReply | None, skip: int) -> OnReply | None:
    """``on_reply`` for replies that follow ``skip`` script loads."""
    if on_reply is None or not skip:
        return on_reply
    target = on_reply
    return lambda k, reply: None if k < skip else target(k - skip, reply)


def _after_loads(replies: list[Any], loads: int) -> list[Any]:
    """The round's replies without the script loads' (which must have succeeded)."""
    for reply in replies[:loads]:
        if isinstance(reply, ResponseError):
            raise reply
    return replies[loads:]


async def _write(conn: AbstractConnection, chunk: list[Command], *, first: bool) -> None:
    pack = hiredis.pack_command
    await conn.send_packed_command(b"".join([pack(c) for c in chunk]), check_health=first)


async def _read_all(
    conn: AbstractConnection, n: int, on_reply: OnReply | None, *, errors_too: bool = False
) -> list[Any]:
    """``n`` replies read in bulk by the connection's hiredis reader (error replies as
    ``ResponseError`` values, passed to ``on_reply`` only when ``errors_too``) instead of one
    ``read_response`` per reply."""
    parser = conn._parser
    if not isinstance(parser, _AsyncHiredisParser):  # the default wherever hiredis is installed
        raise TypeError("the score store needs redis-py's hiredis parser (package hiredis)")
    reader: Any = parser._reader  # a hiredis.Reader once connected
    read_more: Callable[[], Awaitable[Any]] = parser.read_from_socket
    replies: list[Any] = []
    append = replies.append
    async with asyncio.timeout(conn.socket_timeout):
        while True:
            reply = reader.gets()
            while reply is not NOT_ENOUGH_DATA:
                if isinstance(reply, ConnectionError):
                    raise reply
                if on_reply is not None and (errors_too or not isinstance(reply, ResponseError)):
                    on_reply(len(replies), reply)
                append(reply)
                if len(replies) == n:
                    return replies
                reply = reader.gets()
            await read_more()


# --- Redis Cluster -------------------------------------------------------------------------


class _Lane:
    """The commands of one master: their places in the batch, and the connection they go on."""

    def __init__(self, node: ClusterNode, sources: dict[str, str]) -> None:
        self.node = node
        self.sources = sources
        self.conn: Connection | None = None
        self.loads = 0  # script loads written before the commands (``_loads``)
        self.places: list[int] = []
        self.unsent: list[Command] = []

    async def flush(self) -> None:
        if not self.unsent:
            return
        first = self.conn is None
        if self.conn is None:
            self.conn = self.node.acquire_connection()
            loads = await _loads(self.conn, self.sources)
            if loads:
                await _write(self.conn, loads, first=True)
                first, self.loads = False, len(loads)
        chunk, self.unsent = self.unsent, []
        await _write(self.conn, chunk, first=first)

    async def read(self, arrive: Callable[[int, Any], None]) -> None:
        if self.conn is None:
            return
        places, loads = self.places, self.loads

        def handed_on(j: int, reply: Any) -> None:
            if j >= loads:
                arrive(places[j - loads], reply)

        await _read_all(self.conn, loads + len(places), handed_on, errors_too=True)

    async def close(self, failed: BaseException | None) -> None:
        if self.conn is None:
            return
        if failed is not None:
            await self.conn.disconnect()  # replies may be left unread: never reuse the socket
        self.node.release(self.conn)


class _InOrder:
    """Hands replies on in batch order as they arrive from the masters (error replies are
    held back: a redirected command's reply comes when it is sent again)."""

    def __init__(self, on_reply: OnReply | None) -> None:
        self.on_reply = on_reply
        self.replies: list[Any] = []
        self.next = 0

    def arrive(self, k: int, reply: Any) -> None:
        self.replies[k] = reply
        replies, on_reply = self.replies, self.on_reply
        while self.next < len(replies) and replies[self.next] is not _MISSING:
            held = replies[self.next]
            if on_reply is not None and not isinstance(held, ResponseError):
                on_reply(self.next, held)
            self.next += 1


async def _on_cluster(
    cluster: RedisCluster,
    commands: Iterable[Command],
    sources: dict[str, str],
    on_reply: OnReply | None,
    meanwhile: Callable[[], None] | None,
) -> list[Any]:
    """``run_pipelined`` on a cluster: one lane per master, read concurrently."""
    await cluster.initialize()  # at once unless a refresh of the slots' map is due
    sent: list[Command] = []
    lanes: dict[str, _Lane] = {}
    order = _InOrder(None)
    try:
        await _send(cluster, commands, sent, lanes, sources)
        if meanwhile is not None:
            meanwhile()
        order = _InOrder(on_reply)
        order.replies = [_MISSING] * len(sent)
        await _read_lanes(cluster, lanes.values(), order.arrive)
    finally:
        for lane in lanes.values():
            await lane.close(None)
    replies = order.replies
    await _again(cluster, sent, replies, sources, on_reply)
    return _checked(replies)


async def _send(
    cluster: RedisCluster,
    commands: Iterable[Command],
    sent: list[Command],
    lanes: dict[str, _Lane],
    sources: dict[str, str],
) -> None:
    pending = iter(commands)
    try:
        while chunk := list(islice(pending, CHUNK)):
            for command in chunk:
                node = cluster.nodes_manager.get_node_from_slot(cluster.keyslot(_key(command)))
                lane = lanes.get(node.name)
                if lane is None:
                    lane = lanes[node.name] = _Lane(node, sources)
                lane.places.append(len(sent))
                lane.unsent.append(command)
                sent.append(command)
            for lane in lanes.values():
                await lane.flush()
    except BaseException as exc:
        await _failed(cluster, lanes.values(), exc)
        raise


async def _read_lanes(
    cluster: RedisCluster, lanes: Iterable[_Lane], arrive: Callable[[int, Any], None]
) -> None:
    """Read every lane to its end (concurrently); raise the first failure once all settled."""
    lanes = list(lanes)
    results = await asyncio.gather(*(lane.read(arrive) for lane in lanes), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        broken = [lane for lane, r in zip(lanes, results, strict=True) if r is not None]
        await _failed(cluster, broken, failures[0])
        raise failures[0]


async def _failed(cluster: RedisCluster, lanes: Iterable[_Lane], exc: BaseException) -> None:
    """Drop the sockets of lanes left mid-reply; a master that did not answer has the client
    refresh its map of the slots before its next command (a failover may have moved them)."""
    for lane in lanes:
        if lane.conn is not None:
            await lane.conn.disconnect()
    if isinstance(exc, ConnectionError | RedisTimeoutError | OSError | TimeoutError):
        names = [lane.node.name for lane in lanes]
        cluster._request_refresh(last_failed_node_name=names[0] if names else None)


async def _again(
    cluster: RedisCluster,
    sent: list[Command],
    replies: list[Any],
    sources: dict[str, str],
    on_reply: OnReply | None,
) -> None:
    """Send again, one by one through the cluster client, the commands refused for a slot
    moving or a script missing (a new master lacks the scripts its old one had loaded)."""
    again = [k for k, r in enumerate(replies) if isinstance(r, (*MOVING, NoScriptError))]
    for sha in {sent[k][1] for k in again if isinstance(replies[k], NoScriptError)}:
        await cluster.script_load(sources[sha])  # on every master
    for k in again:
        try:
            replies[k] = await cluster.execute_command(*sent[k])
        except NoScriptError:  # this master was not a master when the scripts were loaded
            await cluster.script_load(sources[sent[k][1]])
            replies[k] = await cluster.execute_command(*sent[k])
        except ResponseError as exc:
            replies[k] = exc
            continue
        if on_reply is not None:
            on_reply(k, replies[k])


def _key(command: Command) -> Any:
    """The key that places a command: the first key of EVAL/EVALSHA, else the first argument."""
    if str(command[0]).upper() in ("EVALSHA", "EVAL"):
        return command[3]
    return command[1]
