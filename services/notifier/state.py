"""Redis state of the notifier: the tier announced per candidate, and the decay sweep's lock and watermark.

Keys: ``{prefix}{tenant:candidate}:notified`` (hash: tier, level, seq) per candidate, and
``{prefix}{notifier}:sweep:lock`` / ``{prefix}{notifier}:sweep:watermark`` (hash tenant → epoch s).
"""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis

from engagement.alerts import Notified
from engagement.redis_keys import KeyLayout

# A score record's state replaces the stored one only with a newer sequence; a decay crossing
# only when its sequence is not older and it lowers the level. Returns 1 when written.
_CAS = """
local cur = redis.call('HMGET', KEYS[1], 'seq', 'level')
local seq, level = tonumber(ARGV[1]), tonumber(ARGV[3])
if cur[1] then
  local oseq, olevel = tonumber(cur[1]), tonumber(cur[2])
  if ARGV[4] == 'change' then
    if seq <= oseq then return 0 end
  elseif seq < oseq or level >= olevel then
    return 0
  end
end
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'tier', ARGV[2], 'level', ARGV[3])
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class NotifiedStore:
    """Per-candidate announced tier with sequence compare-and-set; safe under replay and rebalance."""

    def __init__(self, redis: aioredis.Redis, *, prefix: str) -> None:
        self._redis = redis
        self._keys = KeyLayout(prefix)
        self._cas = redis.register_script(_CAS)
        self._release = redis.register_script(_RELEASE)

    def key(self, candidate_key: str) -> str:
        """Return the state key of ``tenant:candidate``."""
        return self._keys.notified(candidate_key)

    async def load(self, candidate_keys: Iterable[str]) -> dict[str, Notified | None]:
        """Return the stored state of each ``tenant:candidate`` (one pipelined round trip)."""
        keys = list(dict.fromkeys(candidate_keys))
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(self.key(key), "tier", "seq")
            rows = await pipe.execute()
        return {
            key: Notified(row[0].decode(), int(row[1])) if row[0] is not None else None
            for key, row in zip(keys, rows, strict=True)
        }

    async def store(self, states: dict[str, tuple[Notified, int] | None], *, mode: str) -> None:
        """Write (state, level) per candidate with compare-and-set, or delete on ``None``."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, value in states.items():
                if value is None:
                    pipe.delete(self.key(key))
                else:
                    state, level = value
                    await self._cas(
                        keys=[self.key(key)],
                        args=[state.sequence, state.tier, level, mode],
                        client=pipe,
                    )
            await pipe.execute()

    # --- sweep coordination ---------------------------------------------------------------

    def _sweep_key(self, name: str) -> str:
        return self._keys.notifier_sweep(name)

    async def acquire_sweep(self, token: str, ttl_ms: int) -> bool:
        """Take the sweep lock (SET NX PX); False when another worker holds it."""
        return bool(await self._redis.set(self._sweep_key("lock"), token, nx=True, px=ttl_ms))

    async def release_sweep(self, token: str) -> None:
        """Release the sweep lock if this token still holds it (compare-and-delete)."""
        await self._release(keys=[self._sweep_key("lock")], args=[token])

    async def watermark(self, tenant: str) -> float | None:
        """Return the time (epoch s) up to which ``tenant`` has been swept."""
        raw = await self._redis.hget(self._sweep_key("watermark"), tenant)
        return float(raw) if raw is not None else None

    async def set_watermark(self, tenant: str, until: float) -> None:
        """Record that ``tenant`` has been swept up to ``until`` (epoch s)."""
        await self._redis.hset(self._sweep_key("watermark"), tenant, repr(until))
