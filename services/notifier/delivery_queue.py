"""Webhook deliveries held in Redis: one hash per delivery, indexed by due time and per endpoint.

Keys (one hash slot, ``{webhooks}``): ``…:d:<id>`` (hash: endpoint, msg_id, key, body, attempt,
status, token, created_ms, last_status, last_error), ``…:due`` (zset id → due epoch ms: every
pending delivery), ``…:lane:<endpoint>`` (zset id → due epoch ms: that endpoint's pending
deliveries, what its lane claims from), ``…:age:<endpoint>`` (zset id → created epoch ms: the age
of its oldest pending delivery), ``…:disabled`` (hash endpoint → reason). Every script
(``services.notifier.delivery_scripts``) keeps the three indexes in step. Claiming moves a
delivery's due time one lease ahead and stamps a token atomically, so two workers never send the
same attempt at once, and a worker that dies mid-attempt only delays the delivery by the lease: a
restart loses nothing.

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
from services.notifier import delivery_scripts

ENQUEUE_CHUNK = 200  # deliveries per enqueue script call: a large publish never blocks Redis long


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
        self._enqueue = redis.register_script(delivery_scripts.ENQUEUE)
        self._claim = redis.register_script(delivery_scripts.CLAIM)
        self._complete = redis.register_script(delivery_scripts.COMPLETE)
        self._adopt = redis.register_script(delivery_scripts.ADOPT)
        self._backlog = redis.register_script(delivery_scripts.BACKLOG)

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
