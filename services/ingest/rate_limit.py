"""Rate limits: a fixed window counted in Redis, so every ingest replica shares one budget.

Secret (read and admin) keys: requests per key (only a hash of the key is stored). Write keys are
public (they sit in every careers page), so their limit is per source: requests, and distinct
identities written (what a client minting candidates runs up), per window (docs/api.md).
"""

from __future__ import annotations

import hashlib
import math

from engagement.store.connection import RedisClient

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
    redis: RedisClient,
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


# One call per write request: count it, and add the identities it writes to the window's
# HyperLogLog; 1: over the request limit, 2: over the identity limit, 0: within both.
_SOURCE = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if tonumber(ARGV[2]) > 0 and n > tonumber(ARGV[2]) then return 1 end
local most = tonumber(ARGV[3])
if most > 0 and #ARGV > 3 then
  if redis.call('PFADD', KEYS[2], unpack(ARGV, 4)) == 1 and redis.call('PTTL', KEYS[2]) < 0 then
    redis.call('PEXPIRE', KEYS[2], ARGV[1])
  end
  if redis.call('PFCOUNT', KEYS[2]) > most then return 2 end
end
return 0
"""
SOURCE_LIMITS = ("requests", "identities")  # what a 429 of a write key names


async def source_over_limit(
    redis: RedisClient,
    *,
    prefix: str,
    tenant: str,
    source: str,
    identities: list[str],
    request_limit: int,
    identity_limit: int,
    window_seconds: float,
    now: float,
) -> tuple[str, int] | None:
    """Count one write request of a source and the identities it writes, shared by every ingest
    replica; (the limit it is over, whole seconds until the window ends), else None. The
    identities are counted distinct per window (HyperLogLog, about 1% off): a site's returning
    visitors count as well as new ones, so the limit must be above its busiest window."""
    if request_limit <= 0 and identity_limit <= 0:
        return None
    index, left = window_of(now, window_seconds)
    base = f"{prefix}{{srclimit:{tenant}:{source}}}:{index}"
    args: list[str | int] = [int(window_seconds * 1000) + 1000, request_limit, identity_limit]
    args += identities
    over = int(await redis.eval(_SOURCE, 2, f"{base}:n", f"{base}:ids", *args))
    if over == 0:
        return None
    return SOURCE_LIMITS[over - 1], max(1, math.ceil(left))
