"""Erasure fences: events of an id that were on their way when it was erased are never scored.

``DELETE /v1/candidates/{id}`` wipes Redis at once, but events accepted before it may not be
scored yet. Scored after the wipe they would put the candidate back for a while and, worse, send
score records, alerts and webhooks about a person who asked to be erased. So before it wipes
anything the ``DELETE`` raises a fence for the candidate and for each id merged into it: a field
of the global hash ``Perasing`` (``KeyLayout.erasing``) whose name is a digest of tenant and id (no
id is kept) and whose value is its erasure request's ``requestedAt``.

The scorer checks the fences once per batch and withholds every event of a fenced id received at
or before the fence's ``requestedAt`` (outcome ``erasing``: counted, not scored, no record);
events received after it, sent after the ``DELETE``, are scored as usual, in whatever partition
and order they come. When the scorer reaches the id's erasure request it erases the id again
(for an event scored before the batch saw the fence) and marks the fence reached; a reached
fence is dropped ``REACHED_SECONDS`` later (so a batch replayed after a crash is still fenced), one
never reached (its ``DELETE`` failed and was not retried) after ``FENCE_SECONDS``. A later
``DELETE`` of the same id raises its fence again with its own instant.

The fences hash is one key (one cluster slot); its scripts touch only it. Every write also sets
its field ``#`` to a new random change token, so a reader (``FenceCache``) re-reads the hash when
it changed, when one of the fences it holds is past its time and every ``FULL_READ_SECONDS``, and
otherwise checks the token and the size alone: after a bulk erasure the hash holds many
thousands of fences for an hour, and reading and parsing them all for every batch would slow the
scorer down about twice.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Iterable
from datetime import datetime
from functools import cache, lru_cache

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from engagement.cloudevents import format_time
from engagement.redis_keys import KeyLayout
from engagement.store_scripts import lua_source, text

FENCE_SECONDS = 7 * 86400  # how long a fence holds without its request reaching the scorer
REACHED_SECONDS = 3600  # how long a fence holds once the scorer reached its request (replays)
FULL_READ_SECONDS = 10.0  # FenceCache reads the hash in full at least this often

TOKEN = "#"  # the field holding the hash's change token (a fence id is a hex digest)

Fences = dict[str, float]  # fence id -> requestedAt (epoch seconds): withhold what came before


@lru_cache(maxsize=16_384)  # the scorer asks for every event while fences are up
def fence_id(tenant_id: str, candidate_id: str) -> str:
    """The fence's field name: a digest of tenant and id (the fences hash names no one)."""
    raw = f"{tenant_id}\x1f{candidate_id}".encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


async def raise_fences(
    redis: aioredis.Redis,
    keys: KeyLayout,
    tenant_id: str,
    candidate_ids: Iterable[str],
    requested_at: datetime,
) -> None:
    """Withhold the ids' events received up to ``requested_at`` (the erasure request's)."""
    stamp = format_time(requested_at)
    fields = [part for cand in candidate_ids for part in (fence_id(tenant_id, cand), stamp)]
    if fields:
        await redis.hset(keys.erasing, items=[*fields, TOKEN, new_token()])


async def live_fences(redis: aioredis.Redis, keys: KeyLayout, now: float) -> Fences:
    """The fences up at ``now``; the ones past their time are dropped (and removed)."""
    return (await _read(redis, keys, now))[0]


class FenceCache:
    """The fences up at each instant asked, as ``live_fences`` gives them, with the hash read in
    full only when needed; else one round trip for its change token and size.

    It is read in full when the token or the number of fields moved (a DELETE raised a fence, the
    scorer reached one, one was dropped), when a fence read last time is past its time by now, and
    at least every ``FULL_READ_SECONDS`` (a writer that does not set the token, one of a release
    before it during a rolling upgrade, is seen by then: it adds a field, seen at once, or raises
    an existing fence again with a later instant). A hash without a token is read in full each
    time."""

    def __init__(self) -> None:
        self._token: str | None = None  # None: read in full next time (no hash, or no token)
        self._fields = 0  # how many fields the hash had, the token's included
        self._fences: Fences = {}
        self._until = -math.inf  # the instant the first of them is past its time
        self._read_at = -math.inf

    async def live(self, redis: aioredis.Redis, keys: KeyLayout, now: float) -> Fences:
        """The fences up at ``now`` (the same dict while nothing changed: do not modify it)."""
        token = self._token
        fresh = now <= self._until and now - self._read_at < FULL_READ_SECONDS
        if token is not None and fresh:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.hget(keys.erasing, TOKEN)
                pipe.hlen(keys.erasing)
                current, fields = await pipe.execute()
            if current is not None and text(current) == token and fields == self._fields:
                return self._fences
        self._fences, self._token, self._fields, self._until = await _read(redis, keys, now)
        self._read_at = now
        return self._fences


async def _read(
    redis: aioredis.Redis, keys: KeyLayout, now: float
) -> tuple[Fences, str | None, int, float]:
    """(the fences up at ``now``, the change token read with them, the hash's number of fields,
    the instant the first of them is past its time); the ones past their time already are dropped
    (and removed)."""
    stored = {text(k): text(v) for k, v in (await redis.hgetall(keys.erasing)).items()}
    fields = len(stored)
    token = stored.pop(TOKEN, None)
    live: Fences = {}
    until = math.inf
    dropped: list[str] = []
    for fid, stamp in stored.items():
        requested, reached = _instants(stamp)
        if now - reached > REACHED_SECONDS or now - requested > FENCE_SECONDS:
            dropped += [fid, stamp]
        else:
            live[fid] = requested
            until = min(until, reached + REACHED_SECONDS, requested + FENCE_SECONDS)
    if dropped:  # unless a DELETE raised one again meanwhile; the token moves: read again next
        await _script(redis, "fence_drop")(keys=[keys.erasing], args=[new_token(), *dropped])
    return live, token, fields, until


def new_token() -> str:
    """A new change token of the fences hash (random: a hash deleted and written again never
    repeats one)."""
    return secrets.token_hex(8)


async def reach_fence(
    redis: aioredis.Redis,
    keys: KeyLayout,
    tenant_id: str,
    candidate_id: str,
    requested_at: datetime,
    now: datetime,
) -> None:
    """Mark the id's fence of ``requested_at`` reached at ``now`` (kept if raised again)."""
    fid, stamp = fence_id(tenant_id, candidate_id), format_time(requested_at)
    await _script(redis, "fence_reach")(
        keys=[keys.erasing], args=[fid, stamp, f"{stamp} {format_time(now)}", new_token()]
    )


def _instants(stamp: str) -> tuple[float, float]:
    """(requestedAt, reachedAt) of a fence value (``inf`` reached: not yet; unreadable: long ago)."""
    try:
        requested, _, reached = stamp.partition(" ")
        at = datetime.fromisoformat(requested).timestamp()
        return at, datetime.fromisoformat(reached).timestamp() if reached else float("inf")
    except ValueError:  # not written by this module: dropped
        return float("-inf"), float("-inf")


def _script(redis: aioredis.Redis, name: str) -> AsyncScript:
    return redis.register_script(_source(name))


@cache
def _source(name: str) -> str:
    return lua_source(name)
