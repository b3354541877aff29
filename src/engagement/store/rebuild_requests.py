"""A tenant's rebuild requested through the admin API (``POST /v1/rules/rebuild``) and run by one
scorer (``services.scorer.rebuild_runner``): the request's state in Redis, and the lock its
runner holds.

Keys (``P`` the live prefix, generation 0 whatever the tenant's generation, ``{T}`` its slot):

- ``P{T}:rebuild`` (hash): the tenant's latest request: ``id``, ``state`` (``requested`` →
  ``running`` → ``activated`` or ``aborted``), the ``version`` it makes active, the
  ``generation`` its current attempt rescores into, times, the ``error`` of an aborted one, and
  ``activated_at``: the time the attempt's activation carries, recorded before its handover key
  is set, so whoever publishes that activation again publishes the same record (invariant 6 of
  ``services.scorer.tenant_rebuild``; not in the API's view: the version's ``activatedAt`` is).
- ``P{T}:rebuild:lock`` (string, ``SET NX PX``, renewed): the scorer process running it.
- ``P rebuilds`` (set): the tenants with a request not finished; scorers poll it.

A new request is refused while one is ``requested`` or ``running`` (the API answers that one),
so a tenant has at most one rebuild at a time.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any, Literal

from engagement.store.connection import RedisClient
from engagement.store.redis_keys import KeyLayout

State = Literal["requested", "running", "activated", "aborted"]
STATES: tuple[State, ...] = ("requested", "running", "activated", "aborted")
IN_PROGRESS = ("requested", "running")
LOCK_MS = 30_000  # a runner renews its lock every third of this; a dead one's lock lapses

# Create the request unless one is in progress; answers the request stored (a flat HGETALL)
# and 1 when it is the new one.
REQUEST = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'requested' or state == 'running' then
  return {redis.call('HGETALL', KEYS[1]), 0}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV))
return {redis.call('HGETALL', KEYS[1]), 1}
"""
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class RebuildRequest:
    """One rebuild of one tenant, as stored and as the API answers it."""

    id: str
    tenant_id: str
    state: State
    version: str
    requested_at: str
    generation: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    activated_at: str | None = None

    def summary(self) -> dict[str, Any]:
        """The API's view (camelCase, no empty fields)."""
        names = {"tenant_id": "tenantId", "requested_at": "requestedAt"}
        names |= {"started_at": "startedAt", "finished_at": "finishedAt"}
        fields = asdict(self)
        del fields["activated_at"]  # the attempt's, kept for its activation's record
        return {names.get(k, k): v for k, v in fields.items() if v is not None}


@dataclass(frozen=True)
class RebuildRequests:
    """The tenants' rebuild requests and their runners' locks in Redis."""

    redis: RedisClient
    keys: KeyLayout

    def state_key(self, tenant_id: str) -> str:
        return f"{self.keys.prefix}{{{tenant_id}}}:rebuild"

    def lock_key(self, tenant_id: str) -> str:
        return f"{self.state_key(tenant_id)}:lock"

    @property
    def queue_key(self) -> str:
        return f"{self.keys.prefix}rebuilds"

    async def request(self, tenant_id: str, version: str, now: str) -> tuple[RebuildRequest, bool]:
        """The request now in progress and True when this call made it; the one already in
        progress and False otherwise. Either way it is queued for the scorers (idempotent)."""
        fields = {"id": uuid.uuid4().hex, "tenant_id": tenant_id, "state": "requested"}
        fields |= {"version": version, "requested_at": now}
        argv = [x for pair in fields.items() for x in pair]
        flat, new = await self.redis.eval(REQUEST, 1, self.state_key(tenant_id), *argv)
        await self.redis.sadd(self.queue_key, tenant_id)
        found = _parsed(flat)
        assert found is not None
        return found, bool(new)

    async def latest(self, tenant_id: str) -> RebuildRequest | None:
        """The tenant's latest request, None before its first."""
        return _parsed(await self.redis.hgetall(self.state_key(tenant_id)))

    async def queued(self) -> list[str]:
        """The tenants whose request is not finished (or whose runner stopped)."""
        return sorted(_text(t) for t in await self.redis.smembers(self.queue_key))

    async def update(self, tenant_id: str, **fields: str | int) -> None:
        """Record a step of the request (its runner holds the lock)."""
        await self.redis.hset(self.state_key(tenant_id), mapping={k: v for k, v in fields.items()})

    async def finish(self, tenant_id: str, state: State, now: str, error: str = "") -> None:
        """Record the outcome and unqueue the tenant."""
        fields: dict[str, str | int] = {"state": state, "finished_at": now}
        await self.update(tenant_id, **(fields | ({"error": error} if error else {})))
        await self.unqueue(tenant_id)

    async def unqueue(self, tenant_id: str) -> None:
        """Take the tenant off the scorers' queue."""
        await self.redis.srem(self.queue_key, tenant_id)

    async def lock(self, tenant_id: str, token: str) -> bool:
        """Take the tenant's runner lock (``SET NX PX``): True when taken."""
        taken = await self.redis.set(self.lock_key(tenant_id), token, nx=True, px=LOCK_MS)
        return bool(taken)

    async def renew(self, tenant_id: str, token: str) -> bool:
        """Extend the lock if ``token`` still holds it: False when it lapsed (another took it)."""
        renewed = await self.redis.eval(RENEW, 1, self.lock_key(tenant_id), token, LOCK_MS)
        return bool(renewed)

    async def unlock(self, tenant_id: str, token: str) -> None:
        """Release the lock if ``token`` holds it."""
        await self.redis.eval(RELEASE, 1, self.lock_key(tenant_id), token)


def _parsed(flat: Any) -> RebuildRequest | None:
    if isinstance(flat, dict):
        stored = {_text(k): _text(v) for k, v in flat.items()}
    else:
        stored = {_text(flat[k]): _text(flat[k + 1]) for k in range(0, len(flat), 2)}
    if "id" not in stored:
        return None
    generation = stored.get("generation")
    return RebuildRequest(
        id=stored["id"],
        tenant_id=stored["tenant_id"],
        state=_state(stored["state"]),
        version=stored["version"],
        requested_at=stored["requested_at"],
        generation=int(generation) if generation else None,
        started_at=stored.get("started_at"),
        finished_at=stored.get("finished_at"),
        error=stored.get("error"),
        activated_at=stored.get("activated_at"),
    )


def _state(value: str) -> State:
    for state in STATES:
        if value == state:
            return state
    raise ValueError(f"unknown rebuild state {value!r}")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
