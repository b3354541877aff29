"""Writing commands to a Redis connection and reading their replies in bulk (hiredis), and the
script loads a connection needs first: the wire under ``engagement.store.pipelining``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import hiredis
from redis._parsers.hiredis import NOT_ENOUGH_DATA, _AsyncHiredisParser
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError, ResponseError

Command = tuple[Any, ...]
OnReply = Callable[[int, Any], None]
CHUNK = 64  # commands packed per socket write: Redis starts on the first while the rest are packed


async def loads_for(conn: AbstractConnection, sources: dict[str, str]) -> list[Command]:
    """``SCRIPT LOAD`` of each script the connection has not loaded since it connected (all of
    them on a new socket: a Redis restarted, or a replica promoted, may have none), to write
    before the round's commands. Invariant: the commands of a round run in the order given, so
    an EVALSHA must never fail with NOSCRIPT and run again after the commands behind it (an
    event would be applied before the identify that redirects it). The fallback that sends a
    NOSCRIPT command again stays for a server whose scripts were flushed under a live socket."""
    if not sources:
        return []
    if not conn.is_connected:  # a round on a live socket skips the retry wrapper
        await conn.connect()  # type: ignore[no-untyped-call]
    writer = getattr(conn, "_writer", None)
    held = getattr(conn, "_engagement_scripts", None)
    loaded: set[str] = held[1] if held is not None and held[0] is writer else set()
    missing = [sha for sha in sources if sha not in loaded]
    conn._engagement_scripts = (writer, loaded | set(missing))  # type: ignore[attr-defined]
    return [("SCRIPT", "LOAD", sources[sha]) for sha in missing]


def shifted(on_reply: OnReply | None, skip: int) -> OnReply | None:
    """``on_reply`` for replies that follow ``skip`` script loads."""
    if on_reply is None or not skip:
        return on_reply
    target = on_reply
    return lambda k, reply: None if k < skip else target(k - skip, reply)


def after_loads(replies: list[Any], loads: int) -> list[Any]:
    """The round's replies without the script loads' (which must have succeeded)."""
    for reply in replies[:loads]:
        if isinstance(reply, ResponseError):
            raise reply
    return replies[loads:]


async def write(conn: AbstractConnection, chunk: list[Command], *, first: bool) -> None:
    pack = hiredis.pack_command
    await conn.send_packed_command(b"".join([pack(c) for c in chunk]), check_health=first)


async def read_all(
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


def checked(replies: list[Any]) -> list[Any]:
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
    return replies
