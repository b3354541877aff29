"""Sources and arguments of the Lua scripts in ``engagement/store/lua`` and decoding of their replies.

Every candidate script starts with ``common.lua``. The store bakes its config (half-life seconds,
score scale, rules version, contributions kept, enter/exit per tier) into the script text
(``config_block``: one script per rules version, nothing parsed per call), so the script's own
arguments start at ARGV[1]. Without that block a script reads the config from ARGV[1]
(``config_args``) and its arguments from ARGV[2].
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from importlib import resources
from itertools import islice
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis._parsers.hiredis import NOT_ENOUGH_DATA, _AsyncHiredisParser
from redis.exceptions import ConnectionError, NoScriptError, ResponseError

from engagement.model.identity import ANONYMOUS
from engagement.model.records import Interaction
from engagement.model.rules import Rules
from engagement.model.score_views import PILLAR_FIELDS, unescape
from engagement.model.scoring import ScoredEvent

PLAIN_SCRIPTS = (
    "rank",
    "rank_after",
    "fence_reach",
    "fence_drop",
    "fence_copy",
    "carry_sequence",
    "forget_idle",
)


def lua_source(name: str, config: str = "") -> str:
    """The text of a candidate script: ``common.lua``, then ``config`` (a config_block), then it."""
    folder = resources.files("engagement.store").joinpath("lua")
    body = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    if name in PLAIN_SCRIPTS:
        return body
    common = folder.joinpath("common.lua").read_text(encoding="utf-8")
    return "\n".join(part for part in (common, config, body) if part)


def config_block(rules: Rules, contributions_kept: int) -> str:
    """Lua redefining ``read_config`` to return the config as constants (exact float literals)."""
    tiers = ", ".join(f"{tier.enter}, {tier.exit}" for tier in rules.tiers)  # flat, see common.lua
    version = "".join(f"\\{b}" for b in rules.version.encode())  # decimal escapes: any bytes
    return (
        f"local CONFIG = {{h = {rules.half_life_seconds!r}, scale = {rules.score_scale!r},"
        f' version = "{version}", keep = {int(contributions_kept)}, tiers = {{{tiers}}}}}\n'
        "local function read_config() return CONFIG, 1 end"
    )


def config_args(rules: Rules, contributions_kept: int) -> list[bytes]:
    """ARGV[1] of every candidate script (``read_config`` in common.lua), encoded once."""
    parts = [
        repr(rules.half_life_seconds),
        repr(rules.score_scale),
        rules.version,
        str(contributions_kept),
        *[str(v) for tier in rules.tiers for v in (tier.enter, tier.exit)],
    ]
    return ["\x1f".join(parts).encode()]


Command = tuple[Any, ...]


OnReply = Callable[[int, Any], None]
CHUNK = 64  # commands packed per socket write: Redis starts on the first while the rest are packed


async def run_pipelined(
    redis: aioredis.Redis,
    commands: Iterable[Command],
    sources: dict[str, str],
    on_reply: OnReply | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> list[Any]:
    """Replies of ``commands`` sent on one connection without waiting (packed by hiredis, written
    in chunks); ``EVALSHA`` of a script the server lacks (``sources``: sha -> text) is loaded and
    resent. Raises the first other error, after every reply is read.

    ``commands`` may be a lazy iterable: each chunk is taken from it just before it is written,
    so Redis runs the first commands while the caller still builds the next ones.
    ``on_reply(k, reply)`` sees each successful reply as soon as it arrives, so the caller works
    on early replies while Redis still runs the later commands; ``meanwhile()`` runs once every
    command is written, before any reply is read.
    """
    sent: list[Command] = []
    replies = await _exchange(redis, commands, sent, on_reply, meanwhile)
    missing = [k for k, r in enumerate(replies) if isinstance(r, NoScriptError)]
    if missing:
        for sha in {sent[k][1] for k in missing}:
            await redis.script_load(sources[sha])
        again = None if on_reply is None else lambda j, reply: on_reply(missing[j], reply)
        resent = await _exchange(redis, [sent[k] for k in missing], [], again, None)
        for k, reply in zip(missing, resent, strict=True):
            replies[k] = reply
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
) -> list[Any]:
    """Write ``commands`` (appending each to ``sent``), then read as many replies."""
    pool = redis.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        pack = hiredis.pack_command
        pending = iter(commands)
        while chunk := list(islice(pending, CHUNK)):
            sent.extend(chunk)
            packed = b"".join([pack(c) for c in chunk])
            await conn.send_packed_command(packed, check_health=len(sent) == len(chunk))
        if meanwhile is not None:
            meanwhile()
        if not sent:
            return []
        parser = conn._parser
        if not isinstance(parser, _AsyncHiredisParser):  # the default wherever hiredis is installed
            raise TypeError("the score store needs redis-py's hiredis parser (package hiredis)")
        return await _read_all(parser, len(sent), conn.socket_timeout, on_reply)
    except BaseException:
        await conn.disconnect()  # replies may be left unread: never reuse the socket
        raise
    finally:
        await pool.release(conn)


async def _read_all(
    parser: _AsyncHiredisParser, n: int, timeout: float | None, on_reply: OnReply | None
) -> list[Any]:
    """``n`` replies read in bulk by the connection's hiredis reader (error replies as
    ``ResponseError`` values) instead of one ``read_response`` per reply."""
    reader: Any = parser._reader  # a hiredis.Reader once connected
    read_more: Callable[[], Awaitable[Any]] = parser.read_from_socket
    replies: list[Any] = []
    append = replies.append
    async with asyncio.timeout(timeout):
        while True:
            reply = reader.gets()
            while reply is not NOT_ENOUGH_DATA:
                if isinstance(reply, ConnectionError):
                    raise reply
                _deliver(len(replies), reply, on_reply)
                append(reply)
                if len(replies) == n:
                    return replies
                reply = reader.gets()
            await read_more()


def _deliver(k: int, reply: Any, on_reply: OnReply | None) -> None:
    if on_reply is not None and not isinstance(reply, ResponseError):
        on_reply(k, reply)


def event_args(event: ScoredEvent, window: str) -> tuple[str, ...]:
    """ARGV of apply.lua (``window``: the dedupe window in seconds, as text)."""
    t = repr(event.t)
    return (
        event.message_id,
        t,
        t if event.received_at == event.t else repr(event.received_at),
        repr(event.points),
        PILLAR_FIELDS[event.pillar],
        event.channel,
        event.event,
        str(event.daily_cap or 0),
        window,
    )


def merge_source(interaction: Interaction) -> str | None:
    """The candidate an identify/alias folds into ``userId`` (alias previousId: see docs)."""
    if interaction.type == "identify":
        return f"{ANONYMOUS}{interaction.anonymousId}" if interaction.anonymousId else None
    previous = interaction.previousId
    if not previous:
        return None
    return f"{ANONYMOUS}{previous}" if previous == interaction.anonymousId else previous


def frozen_args(source: str, result: list[Any]) -> list[str]:
    """ARGV of merge_add.lua from merge_take.lua's reply on ``source``."""
    snap = text(result[1]).split("\x1f")
    channels = [unescape(x) if k % 2 == 0 else x for k, x in enumerate(snap[11:])]
    caps = [text(x) for x in result[2]]
    contributions = [text(x) for x in result[3]]
    merged = sorted(text(x) for x in result[4])
    return [
        source,
        str(len(merged)),
        *merged,
        *snap[0:5],
        snap[8],
        str(len(channels) // 2),
        *channels,
        str(len(caps) // 2),
        *caps,
        *contributions,
    ]


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
