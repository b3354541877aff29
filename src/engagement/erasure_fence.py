"""Erasure fences: while an id is being erased, its events already on Kafka are not scored.

``DELETE /v1/candidates/{id}`` wipes Redis at once, but events accepted before it may not be
scored yet. Scored after the wipe they would put the candidate back for a while and, worse, send
score records, alerts and webhooks about a person who asked to be erased. So before it wipes
anything the ``DELETE`` raises a fence for the candidate (and then for each id merged into it):
a field of the global hash ``Perasing`` (``KeyLayout.erasing``) whose name is a digest of tenant
and id (no id is kept) and whose value is its erasure request's ``requestedAt``.

The scorer reads the fences once per batch and withholds the events of a fenced id (outcome
``erasing``: counted, not scored, no record). Its erasure request lies behind those events in the
id's partition; once the scorer has erased the id again there and published the erasure's records,
it lowers the fence (only if no later ``DELETE`` raised it again), so the id's events after the
request, sent after the ``DELETE``, are scored as usual. A fence older than ``FENCE_SECONDS`` is
ignored and removed (its request never reached the scorer: the ``DELETE`` failed and was not
retried); the erasure request itself still erases what was scored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from functools import cache

import redis.asyncio as aioredis

from engagement.cloudevents import format_time
from engagement.redis_keys import KeyLayout
from engagement.store_scripts import lua_source, text

FENCE_SECONDS = 7 * 86400  # how long a fence holds without its request reaching the scorer


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
    """Fence the ids until the scorer reaches their erasure requests of ``requested_at``."""
    stamp = format_time(requested_at)
    fields = [part for cand in candidate_ids for part in (fence_id(tenant_id, cand), stamp)]
    if fields:
        await redis.hset(keys.erasing, items=fields)


async def live_fences(redis: aioredis.Redis, keys: KeyLayout, now: float) -> frozenset[str]:
    """The fence ids up now; fences older than ``FENCE_SECONDS`` are dropped (and removed)."""
    fences = await redis.hgetall(keys.erasing)
    if not fences:
        return frozenset()
    live: set[str] = set()
    for field, value in fences.items():
        fid, stamp = text(field), text(value)
        if _age(stamp, now) <= FENCE_SECONDS:
            live.add(fid)
        else:
            await lower_fence_id(redis, keys, fid, stamp)
    return frozenset(live)


async def lower_fence(
    redis: aioredis.Redis,
    keys: KeyLayout,
    tenant_id: str,
    candidate_id: str,
    requested_at: datetime,
) -> None:
    """Lower the id's fence raised for the request of ``requested_at`` (kept if raised again)."""
    await lower_fence_id(redis, keys, fence_id(tenant_id, candidate_id), format_time(requested_at))


async def lower_fence_id(redis: aioredis.Redis, keys: KeyLayout, fid: str, stamp: str) -> None:
    await redis.register_script(_source())(keys=[keys.erasing], args=[fid, stamp])


def _age(stamp: str, now: float) -> float:
    try:
        return now - datetime.fromisoformat(stamp).timestamp()
    except ValueError:  # not written by raise_fences: treated as expired
        return float("inf")


@cache
def _source() -> str:
    return lua_source("fence_lower")
