"""Webhook deliveries held in Redis: one hash per delivery, indexed by due time and per endpoint.

Keys (one hash slot, ``{webhooks}``): ``…:d:<id>`` (hash: endpoint, msg_id, key, body, attempt,
status, token, created_ms, last_status, last_error), ``…:due`` (zset id → due epoch ms: every
pending delivery), ``…:lane:<endpoint>`` (zset id → due epoch ms: that endpoint's pending
deliveries, what its lane claims from), ``…:age:<endpoint>`` (zset id → created epoch ms: the age
of its oldest pending delivery), ``…:disabled`` (hash endpoint → reason). Every script keeps the
three indexes in step. Claiming moves a delivery's due time one lease ahead and stamps a token
atomically, so two workers never send the same attempt at once, and a worker that dies
mid-attempt only delays the delivery by the lease: a restart loses nothing.

Round trips: a publish queues all its deliveries in one script call (``enqueue_many``), and the
script that records an attempt's outcome also claims the lane's next due delivery, so a busy lane
makes one round trip per attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engagement.store.connection import RedisClient
from engagement.store.redis_keys import KeyLayout
from engagement.store.store_scripts import text

ENQUEUE_CHUNK = 200  # deliveries per enqueue script call: a large publish never blocks Redis long

# KEYS: due, then hash, lane and age of each delivery; ARGV: now, then id, endpoint, msg_id, key
# and body of each. A delivery id seen before (pending or finished) is skipped.
_ENQUEUE = """
local queued = 0
for i = 0, (#KEYS - 1) / 3 - 1 do
  local k, a = 2 + 3 * i, 2 + 5 * i
  if redis.call('EXISTS', KEYS[k]) == 0 then
    redis.call('HSET', KEYS[k], 'endpoint', ARGV[a + 1], 'msg_id', ARGV[a + 2],
      'key', ARGV[a + 3], 'body', ARGV[a + 4], 'attempt', 0, 'status', 'pending',
      'created_ms', ARGV[1])
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[a])
    redis.call('ZADD', KEYS[k + 1], ARGV[1], ARGV[a])
    redis.call('ZADD', KEYS[k + 2], ARGV[1], ARGV[a])
    queued = queued + 1
  end
end
return queued
"""

# claim(lane, due, age, disabled key, now, lease, limit, hash prefix, token, endpoint). A delivery
# already finished (by a notifier of before the lanes, which kept only the due set) or gone
# leaves the indexes instead of being sent again.
_CLAIM_FUNCTION = """
local function claim(lane, due, age, disabled, now, lease, limit, prefix, token, endpoint)
  local ids = redis.call('ZRANGEBYSCORE', lane, '-inf', now, 'LIMIT', 0, limit)
  local out = {}
  for _, id in ipairs(ids) do
    local h = prefix .. id
    local status = redis.call('HGET', h, 'status')
    if status ~= 'pending' and status ~= 'inflight' then
      redis.call('ZREM', lane, id)
      redis.call('ZREM', due, id)
      redis.call('ZREM', age, id)
    else
      local attempt = redis.call('HINCRBY', h, 'attempt', 1)
      redis.call('HSET', h, 'token', token, 'status', 'inflight')
      local until_ms = tonumber(now) + tonumber(lease)
      redis.call('ZADD', lane, until_ms, id)
      redis.call('ZADD', due, until_ms, id)
      local f = redis.call('HMGET', h, 'endpoint', 'msg_id', 'key', 'body', 'created_ms')
      table.insert(out, {id, attempt, f[1], f[2], f[3], f[4], f[5]})
    end
  end
  local head = redis.call('ZRANGE', lane, 0, 0, 'WITHSCORES')
  local reason = redis.call('HGET', disabled, endpoint)
  return {out, head[2] or '', reason or false}
end
"""

# KEYS: lane, due, age, disabled
_CLAIM = (
    _CLAIM_FUNCTION
    + "return claim(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], "
    "ARGV[5], ARGV[6])\n"
)

# KEYS: delivery hash, lane, due, age, disabled. Finishes the attempt the token owns (a token
# that no longer owns it, its lease run out and the delivery claimed again, changes nothing),
# then claims up to ARGV[10] due deliveries of the same lane: the slot's next attempts, in the
# same round trip. Returns {1 or 0, claimed, lane head, disabled reason}.
_COMPLETE = (
    _CLAIM_FUNCTION
    + """
local h, lane, due, age = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local done = 0
if redis.call('HGET', h, 'token') == ARGV[1] then
  redis.call('HSET', h, 'status', ARGV[2], 'last_status', ARGV[5], 'last_error', ARGV[6],
    'updated_ms', ARGV[7], 'token', '')
  if ARGV[2] == 'pending' then
    redis.call('ZADD', lane, ARGV[3], ARGV[8])
    redis.call('ZADD', due, ARGV[3], ARGV[8])
  else
    redis.call('ZREM', lane, ARGV[8])
    redis.call('ZREM', due, ARGV[8])
    redis.call('ZREM', age, ARGV[8])
    redis.call('EXPIRE', h, ARGV[4])
  end
  done = 1
end
local c = claim(lane, due, age, KEYS[5], ARGV[7], ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13])
return {done, c[1], c[2], c[3]}
"""
)

# KEYS: due. Puts due deliveries that no lane holds into their endpoint's lane (deliveries queued
# before the lanes, or by a notifier of that version while one of this version runs), one page
# of the due set a call; drops ids whose hash is gone. Returns {adopted, next start, endpoints}.
_ADOPT = """
local rows = redis.call('ZRANGE', KEYS[1], ARGV[4], tonumber(ARGV[4]) + tonumber(ARGV[5]) - 1,
  'WITHSCORES')
local adopted, dropped, seen, endpoints = 0, 0, {}, {}
for i = 1, #rows, 2 do
  local id, due = rows[i], rows[i + 1]
  local f = redis.call('HMGET', ARGV[1] .. id, 'endpoint', 'created_ms')
  if not f[1] then
    redis.call('ZREM', KEYS[1], id)
    dropped = dropped + 1
  else
    if redis.call('ZSCORE', ARGV[2] .. f[1], id) == false then
      redis.call('ZADD', ARGV[2] .. f[1], due, id)
      redis.call('ZADD', ARGV[3] .. f[1], f[2] or due, id)
      adopted = adopted + 1
    end
    if not seen[f[1]] then
      seen[f[1]] = true
      table.insert(endpoints, f[1])
    end
  end
end
local nxt = tonumber(ARGV[4]) + #rows / 2 - dropped
if #rows / 2 < tonumber(ARGV[5]) then nxt = -1 end
return {adopted, nxt, endpoints}
"""

# KEYS: due, then lane and age of each endpoint. Returns {pending in all, oldest due in all,
# then per endpoint: pending, oldest created, oldest due}; '' where a set is empty.
_BACKLOG = """
local function head(key)
  return redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2] or ''
end
local out = {redis.call('ZCARD', KEYS[1]), head(KEYS[1])}
for i = 2, #KEYS, 2 do
  table.insert(out, redis.call('ZCARD', KEYS[i]))
  table.insert(out, head(KEYS[i + 1]))
  table.insert(out, head(KEYS[i]))
end
return out
"""


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery to queue: an alert's body for one endpoint."""

    delivery_id: str
    endpoint_id: str
    msg_id: str
    record_key: str
    body: bytes


@dataclass(frozen=True)
class Finish:
    """How an attempt ends: ``pending`` again at ``next_due_ms`` (a retry), or a final status."""

    status: str
    now_ms: int
    next_due_ms: int = 0
    last_status: int | None = None
    last_error: str = ""


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


@dataclass(frozen=True)
class Claim:
    """What one claim on an endpoint's lane returned."""

    claimed: list[Claimed]
    next_due_ms: int | None  # the lane's earliest due time after the claim (None: lane empty)
    disabled: str | None  # why the endpoint is disabled (it answered 410), None when it is not


@dataclass(frozen=True)
class EndpointBacklog:
    """An endpoint's pending deliveries: how many, and when the oldest was queued."""

    pending: int
    oldest_created_ms: int | None
    oldest_due_ms: int | None


@dataclass(frozen=True)
class Backlog:
    """Every pending delivery (the due set) and each asked endpoint's share of them."""

    pending: int
    oldest_due_ms: int | None
    endpoints: dict[str, EndpointBacklog]


class DeliveryQueue:
    """Durable, claim-based webhook delivery queue in Redis, one lane per endpoint."""

    def __init__(self, redis: RedisClient, *, prefix: str, retention_s: int) -> None:
        self._redis = redis
        self._base = KeyLayout(prefix).webhooks
        self._retention = retention_s
        self._enqueue = redis.register_script(_ENQUEUE)
        self._claim = redis.register_script(_CLAIM)
        self._complete = redis.register_script(_COMPLETE)
        self._adopt = redis.register_script(_ADOPT)
        self._backlog = redis.register_script(_BACKLOG)

    @property
    def due_key(self) -> str:
        return self._base + "due"

    def lane_key(self, endpoint_id: str) -> str:
        return f"{self._base}lane:{endpoint_id}"

    def age_key(self, endpoint_id: str) -> str:
        return f"{self._base}age:{endpoint_id}"

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
        delivery = Delivery(delivery_id, endpoint_id, msg_id, record_key, body)
        return await self.enqueue_many([delivery], now_ms=now_ms) == 1

    async def enqueue_many(self, deliveries: Sequence[Delivery], *, now_ms: int) -> int:
        """Schedule deliveries now, ``ENQUEUE_CHUNK`` in one round trip; return how many were
        new. Idempotent per delivery id: one seen before (pending or finished) is ignored."""
        queued = 0
        for start in range(0, len(deliveries), ENQUEUE_CHUNK):
            keys: list[str] = [self.due_key]
            args: list[str | bytes | int] = [now_ms]
            for d in deliveries[start : start + ENQUEUE_CHUNK]:
                key = self.delivery_key(d.delivery_id)
                keys += [key, self.lane_key(d.endpoint_id), self.age_key(d.endpoint_id)]
                args += [d.delivery_id, d.endpoint_id, d.msg_id, d.record_key, d.body]
            queued += int(await self._enqueue(keys=keys, args=args))
        return queued

    async def claim(
        self, *, endpoint_id: str, now_ms: int, lease_ms: int, limit: int, token: str
    ) -> Claim:
        """Atomically claim up to ``limit`` due deliveries of one endpoint, one attempt each."""
        keys = self._lane_keys(endpoint_id)
        args: list[str | int] = [now_ms, lease_ms, limit, self._base + "d:", token, endpoint_id]
        return _claim(await self._claim(keys=keys, args=args), token)

    async def complete(
        self,
        claimed: Claimed,
        finish: Finish,
        *,
        claim: int = 0,
        lease_ms: int = 0,
        token: str = "",
    ) -> tuple[bool, Claim]:
        """Finish an attempt (``pending`` reschedules at ``next_due_ms``; anything else is final)
        if ``claimed.token`` still owns it, then claim up to ``claim`` due deliveries of its
        endpoint under ``token``, in one round trip; return whether it was finished, and the
        claim."""
        keys = [self.delivery_key(claimed.delivery_id), *self._lane_keys(claimed.endpoint_id)]
        args: list[str | int] = [
            claimed.token,
            finish.status,
            finish.next_due_ms,
            self._retention,
            "" if finish.last_status is None else finish.last_status,
            finish.last_error[:500],
            finish.now_ms,
            claimed.delivery_id,
            lease_ms,
            claim,
            self._base + "d:",
            token,
            claimed.endpoint_id,
        ]
        done, *reply = await self._complete(keys=keys, args=args)
        return bool(done), _claim(reply, token)

    def _lane_keys(self, endpoint_id: str) -> list[str]:
        """An endpoint's lane, the due set, its age index and the disabled hash."""
        return [
            self.lane_key(endpoint_id),
            self.due_key,
            self.age_key(endpoint_id),
            self._base + "disabled",
        ]

    async def adopt(self, *, page: int = 1000) -> tuple[int, set[str]]:
        """Put every pending delivery no lane holds into its endpoint's lane; return how many
        were adopted and every endpoint with a pending delivery. Idempotent."""
        adopted, endpoints, start = 0, set[str](), 0
        while start >= 0:
            base = self._base
            args: list[str | int] = [base + "d:", base + "lane:", base + "age:", start, page]
            count, start, names = await self._adopt(keys=[self.due_key], args=args)
            adopted += int(count)
            endpoints.update(text(name) for name in names)
            start = int(start)
        return adopted, endpoints

    async def backlog(self, endpoint_ids: list[str]) -> Backlog:
        """Return the pending deliveries in all and per endpoint, read atomically."""
        keys = [self.due_key]
        for endpoint_id in endpoint_ids:
            keys += [self.lane_key(endpoint_id), self.age_key(endpoint_id)]
        reply = await self._backlog(keys=keys, args=[])
        per_endpoint = {
            endpoint_id: EndpointBacklog(
                int(reply[2 + 3 * n]), _ms(reply[3 + 3 * n]), _ms(reply[4 + 3 * n])
            )
            for n, endpoint_id in enumerate(endpoint_ids)
        }
        return Backlog(int(reply[0]), _ms(reply[1]), per_endpoint)

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


def _claim(reply: list[Any], token: str) -> Claim:
    """A claim script's reply {rows, lane head, disabled reason} as a ``Claim``."""
    rows, head, reason = reply
    claimed = [
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
    return Claim(claimed, _ms(head), text(reason) if reason else None)


def _ms(value: bytes | str | int | float | None) -> int | None:
    """An epoch-ms score as Redis returned it ('' or nothing: none)."""
    if value is None or value in (b"", ""):
        return None
    return int(float(text(value) if isinstance(value, bytes) else value))
