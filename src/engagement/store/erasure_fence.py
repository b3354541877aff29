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
its field ``#`` to a new random change token, so a reader (``FenceCache``) re-reads the hash only
when another writer changed it, and at least every ``FULL_READ_SECONDS``; otherwise it checks the
token and the size alone, and applies its own writes (the fences past their time it drops, the
ones it marks reached) to what it holds. After a bulk erasure the hash holds many thousands of
fences for an hour, and reading and parsing them all for every batch would slow the scorer down
about twice (``bench/scorer_stages.py``, "fenced"). The simpler design, an ``HMGET`` of the
batch's own ids, costs 4-12 times the cache's check per batch (0.8-1.7 µs per event against
0.14-0.26, ``bench/erasure_fences.py``), and needs the ids before the batch is parsed (it is
parsed lazily, while Redis applies it) and a second round trip for the ids identifies and
aliases fold in.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Iterable
from datetime import datetime
from functools import cache, lru_cache

from redis.commands.core import AsyncScript

from engagement.model.records import format_time
from engagement.store.connection import RedisClient
from engagement.store.redis_keys import KeyLayout
from engagement.store.store_scripts import lua_source, text

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
    redis: RedisClient,
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


async def copy_fences(redis: RedisClient, source: KeyLayout, target: KeyLayout) -> int:
    """Copy the fences of ``source`` into ``target`` where it has none of the id or one of an
    earlier request (a rebuild taking over a store's fences, ``engagement.tools.rebuild``); how many
    (``fence_copy.lua``: the change token of ``target`` moved if any)."""
    held = await redis.hgetall(source.erasing)
    pairs = [part for k, v in held.items() if text(k) != TOKEN for part in (text(k), text(v))]
    if not pairs:
        return 0
    return int(
        await _script(redis, "fence_copy")(keys=[target.erasing], args=[new_token(), *pairs])
    )


Times = dict[str, tuple[str, float, float]]  # fence id -> (its value, requestedAt, reachedAt)


class FenceCache:
    """The fences up at each instant asked, as a full read of the hash gives them, with the hash
    read in full only when needed; else one round trip for its change token and size.

    It is read in full when the token or the number of fields moved (a DELETE raised a fence, a
    fence was dropped or reached by another scorer), and at least every ``FULL_READ_SECONDS`` (a
    writer that does not set the token, one of a release before it during a rolling upgrade, is
    seen by then: it adds a field, seen at once, or raises an existing fence again with a later
    instant), and when the clock went back. A hash without a token is read in full each time.
    Its own writes keep it current without a read when the token they replace is the one it
    holds and the hash has the size it holds (nobody else wrote since): the fences past their
    time are dropped from what it holds and from the hash, and a fence it marks reached is
    updated in both."""

    def __init__(self) -> None:
        self._token: str | None = None  # None: read in full next time (no hash, or no token)
        self._fields = 0  # how many fields the hash had, the token's included
        self._fences: Fences = {}  # what live() returns: the requestedAt of _times, kept built
        self._times: Times = {}
        self._until = math.inf  # the instant the first of them is past its time
        self._read_at = -math.inf

    async def live(
        self, redis: RedisClient, keys: KeyLayout, now: float, *, drop: bool = True
    ) -> Fences:
        """The fences up at ``now`` (the same dict while nothing changed: do not modify it);
        ``drop=False``: none is past its time (a rebuild: ``ScoreStore.fences``)."""
        if self._token is not None and 0 <= now - self._read_at < FULL_READ_SECONDS:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.hget(keys.erasing, TOKEN)
                pipe.hlen(keys.erasing)
                current, fields = await pipe.execute()
            if current is not None and text(current) == self._token and fields == self._fields:
                if drop:
                    await self._drop_past(redis, keys, now)
                return self._fences
        stored = {text(k): text(v) for k, v in (await redis.hgetall(keys.erasing)).items()}
        self._fields = len(stored)
        self._token = stored.pop(TOKEN, None)
        self._times = {fid: (stamp, *_instants(stamp)) for fid, stamp in stored.items()}
        self._fences = {fid: requested for fid, (_, requested, _) in self._times.items()}
        self._until = _first_end(self._times)
        self._read_at = now
        if drop:
            await self._drop_past(redis, keys, now)
        return self._fences

    async def reach(
        self,
        redis: RedisClient,
        keys: KeyLayout,
        tenant_id: str,
        candidate_id: str,
        requested_at: datetime,
        now: datetime,
    ) -> None:
        """Mark the id's fence of ``requested_at`` reached at ``now`` (kept if raised again)."""
        fid, stamp = fence_id(tenant_id, candidate_id), format_time(requested_at)
        value, token = f"{stamp} {format_time(now)}", new_token()
        done = await _script(redis, "fence_reach")(
            keys=[keys.erasing], args=[fid, stamp, value, token, self._token or ""]
        )
        if done == 1 and fid in self._times:
            self._token = token
            self._times[fid] = (value, *_instants(value))
            self._until = min(self._until, self._times[fid][2] + REACHED_SECONDS)
        elif done != -1:  # written, over someone else's write: read it all next time
            self._token = None

    async def _drop_past(self, redis: RedisClient, keys: KeyLayout, now: float) -> None:
        """Drop the fences past their time from those held and from the hash (unless raised
        again meanwhile)."""
        if now <= self._until:
            return
        past = {
            fid
            for fid, (_, requested, reached) in self._times.items()
            if now - reached > REACHED_SECONDS or now - requested > FENCE_SECONDS
        }
        pairs = [part for fid in past for part in (fid, self._times[fid][0])]
        self._fences = {fid: at for fid, at in self._fences.items() if fid not in past}
        for fid in past:
            del self._times[fid]
        self._until = _first_end(self._times)
        if not pairs:
            return
        token = new_token()
        current, left = await _script(redis, "fence_drop")(
            keys=[keys.erasing], args=[self._token or "", token, self._fields, *pairs]
        )
        if current == 1:  # nobody else wrote since: what it holds is the hash
            self._token, self._fields = (token if left else None), left
        else:
            self._token = None


def _first_end(times: Times) -> float:
    """The instant the first of these fences is past its time (inf: none)."""
    ends = (
        min(reached + REACHED_SECONDS, requested + FENCE_SECONDS)
        for _, requested, reached in times.values()
    )
    return min(ends, default=math.inf)


def new_token() -> str:
    """A new change token of the fences hash (random: a hash deleted and written again never
    repeats one)."""
    return secrets.token_hex(8)


def _instants(stamp: str) -> tuple[float, float]:
    """(requestedAt, reachedAt) of a fence value (``inf`` reached: not yet; unreadable: long ago)."""
    try:
        requested, _, reached = stamp.partition(" ")
        at = datetime.fromisoformat(requested).timestamp()
        return at, datetime.fromisoformat(reached).timestamp() if reached else float("inf")
    except ValueError:  # not written by this module: dropped
        return float("-inf"), float("-inf")


def _script(redis: RedisClient, name: str) -> AsyncScript:
    return redis.register_script(_source(name))


@cache
def _source(name: str) -> str:
    return lua_source(name)
