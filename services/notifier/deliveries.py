"""Webhook deliveries held in Redis: a sorted set of due deliveries and one hash per delivery.

Keys (one hash slot, ``{webhooks}``): ``…:due`` (zset id → due epoch ms), ``…:d:<id>`` (hash:
endpoint, msg_id, key, body, attempt, status, token, last_status, last_error), ``…:disabled``
(hash endpoint → reason). Claiming moves a delivery's due time one lease ahead and stamps a
token atomically, so two workers never send the same attempt at once, and a worker that dies
mid-attempt only delays the delivery by the lease: a restart loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from engagement.store.connection import RedisClient
from engagement.store.redis_keys import KeyLayout
from engagement.store.store_scripts import text

_ENQUEUE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'endpoint', ARGV[2], 'msg_id', ARGV[3], 'key', ARGV[4],
  'body', ARGV[5], 'attempt', 0, 'status', 'pending', 'created_ms', ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
return 1
"""

_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local out = {}
for _, id in ipairs(ids) do
  local h = ARGV[4] .. id
  if redis.call('EXISTS', h) == 0 then
    redis.call('ZREM', KEYS[1], id)
  else
    local attempt = redis.call('HINCRBY', h, 'attempt', 1)
    redis.call('HSET', h, 'token', ARGV[5], 'status', 'inflight')
    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), id)
    local f = redis.call('HMGET', h, 'endpoint', 'msg_id', 'key', 'body', 'created_ms')
    table.insert(out, {id, attempt, f[1], f[2], f[3], f[4], f[5]})
  end
end
return out
"""

_COMPLETE = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'last_status', ARGV[5], 'last_error', ARGV[6],
  'updated_ms', ARGV[7], 'token', '')
if ARGV[2] == 'pending' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[8])
else
  redis.call('ZREM', KEYS[2], ARGV[8])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
return 1
"""


@dataclass(frozen=True)
class Claimed:
    """One claimed attempt: what to send and the token that owns it."""

    delivery_id: str
    attempt: int
    endpoint_id: str
    msg_id: str
    record_key: str
    body: bytes
    created_ms: int
    token: str


class DeliveryQueue:
    """Durable, claim-based webhook delivery queue in Redis."""

    def __init__(self, redis: RedisClient, *, prefix: str, retention_s: int) -> None:
        self._redis = redis
        self._base = KeyLayout(prefix).webhooks
        self._retention = retention_s
        self._enqueue = redis.register_script(_ENQUEUE)
        self._claim = redis.register_script(_CLAIM)
        self._complete = redis.register_script(_COMPLETE)

    @property
    def due_key(self) -> str:
        return self._base + "due"

    def delivery_key(self, delivery_id: str) -> str:
        return f"{self._base}d:{delivery_id}"

    async def enqueue(
        self,
        *,
        delivery_id: str,
        endpoint_id: str,
        msg_id: str,
        record_key: str,
        body: bytes,
        now_ms: int,
    ) -> bool:
        """Schedule a delivery now; a delivery id seen before (pending or finished) is ignored."""
        args: list[str | bytes | int] = [delivery_id, endpoint_id, msg_id, record_key, body, now_ms]
        keys = [self.delivery_key(delivery_id), self.due_key]
        return bool(await self._enqueue(keys=keys, args=args))

    async def claim(self, *, now_ms: int, lease_ms: int, limit: int, token: str) -> list[Claimed]:
        """Atomically claim up to ``limit`` due deliveries for one attempt each."""
        rows = await self._claim(
            keys=[self.due_key], args=[now_ms, lease_ms, limit, self._base + "d:", token]
        )
        return [
            Claimed(
                delivery_id=r[0].decode(),
                attempt=int(r[1]),
                endpoint_id=r[2].decode(),
                msg_id=r[3].decode(),
                record_key=r[4].decode(),
                body=bytes(r[5]),
                created_ms=int(r[6]),
                token=token,
            )
            for r in rows
        ]

    async def complete(
        self,
        claimed: Claimed,
        *,
        status: str,
        now_ms: int,
        next_due_ms: int = 0,
        last_status: int | None = None,
        last_error: str = "",
    ) -> bool:
        """Finish an attempt: ``pending`` reschedules at ``next_due_ms``; anything else is final."""
        keys = [self.delivery_key(claimed.delivery_id), self.due_key]
        args: list[str | int] = [
            claimed.token,
            status,
            next_due_ms,
            self._retention,
            "" if last_status is None else last_status,
            last_error[:500],
            now_ms,
            claimed.delivery_id,
        ]
        return bool(await self._complete(keys=keys, args=args))

    async def status(self, delivery_id: str) -> dict[str, str]:
        """Return a delivery's state fields (without the body)."""
        raw = await self._redis.hgetall(self.delivery_key(delivery_id))
        return {text(k): text(v) for k, v in raw.items() if k != b"body"}

    async def pending(self) -> int:
        """Return how many deliveries are waiting (due now or later, or in flight)."""
        return int(await self._redis.zcard(self.due_key))

    async def disable(self, endpoint_id: str, reason: str) -> None:
        """Mark an endpoint disabled (it answered 410 Gone)."""
        await self._redis.hset(self._base + "disabled", endpoint_id, reason)

    async def disabled(self) -> dict[str, str]:
        """Return the disabled endpoints and why."""
        raw = await self._redis.hgetall(self._base + "disabled")
        return {text(k): text(v) for k, v in raw.items()}
