"""Rate limits for secret (read and admin) keys: a fixed window counted in Redis.

Counted in Redis so every ingest replica shares one budget per key. Only a hash of the key is
stored. Browser write keys are public and never limited here (docs/design.md §2).
"""

from __future__ import annotations

import hashlib
import math

import redis.asyncio as aioredis

_COUNT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""


def window_of(now: float, window_seconds: float) -> tuple[int, float]:
    """Return the window number of ``now`` and the seconds left until it ends."""
    index = math.floor(now / window_seconds)
    return index, (index + 1) * window_seconds - now


def key_id(secret: str) -> str:
    """Return a short, non-reversible id of a secret key (what Redis stores)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


async def retry_after(
    redis: aioredis.Redis,
    *,
    prefix: str,
    secret: str,
    limit: int,
    window_seconds: float,
    now: float,
) -> int | None:
    """Count one request; return whole seconds to wait when over the limit, else None."""
    if limit <= 0:
        return None
    index, left = window_of(now, window_seconds)
    counter = f"{prefix}ratelimit:{key_id(secret)}:{index}"
    count = int(await redis.eval(_COUNT, 1, counter, int(window_seconds * 1000) + 1000))
    return max(1, math.ceil(left)) if count > limit else None
