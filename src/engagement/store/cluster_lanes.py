"""``run_pipelined`` on a Redis Cluster: one lane (connection) per master, the commands of each
master written in the batch's order and read concurrently, replies handed on in batch order
(``engagement.store.pipelining``); commands refused for a moving slot or a missing script are
sent again through redis-py's cluster client, which follows the redirect and refreshes its map
of the slots."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection
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

from engagement.store.wire import CHUNK, Command, OnReply, checked, loads_for, read_all, write

MOVING = (MovedError, AskError, TryAgainError, ClusterDownError)  # sent again on their own
_MISSING = object()


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
            loads = await loads_for(self.conn, self.sources)
            if loads:
                await write(self.conn, loads, first=True)
                first, self.loads = False, len(loads)
        chunk, self.unsent = self.unsent, []
        await write(self.conn, chunk, first=first)

    async def read(self, arrive: Callable[[int, Any], None]) -> None:
        if self.conn is None:
            return
        places, loads = self.places, self.loads

        def handed_on(j: int, reply: Any) -> None:
            if j >= loads:
                arrive(places[j - loads], reply)

        await read_all(self.conn, loads + len(places), handed_on, errors_too=True)

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


async def on_cluster(
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
    return checked(replies)


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
