"""Redis state of the notifier: the tier announced per candidate, and the decay sweep's lock and watermark.

Keys: ``{prefix}{tenant:candidate}:notified`` (hash: tier, level, seq, and ``pending``: the alerts
that state announced, until they are published: an outbox) per candidate, and
``{prefix}{notifier}:sweep:lock`` / ``{prefix}{notifier}:sweep:watermark`` (hash tenant → epoch s).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from engagement.model.alerts import Notified
from engagement.model.decisions import Stored
from engagement.store.connection import RedisClient
from engagement.store.redis_keys import KeyLayout
from engagement.store.store_scripts import Command, run_pipelined

# A state is written only over the very state it was decided from (ARGV[5], ARGV[6]: its
# sequence and tier as loaded; '' for none), so each alert's previous tier is the tier announced
# before it, and a state whose outbox is not yet published is never replaced (whoever loads it
# publishes its outbox first: ``services.notifier.announce``); and never with an older sequence.
# The state is written with the alerts it announces (``pending``: the outbox, cleared once they
# are published). Returns 1 when written, -1 when the stored state is no longer the one decided
# from (decide again), 0 when the write is refused as it stands (an older sequence).
_CAS = """
local cur = redis.call('HMGET', KEYS[1], 'seq', 'tier')
if (cur[1] or '') ~= ARGV[5] or (cur[2] or '') ~= ARGV[6] then return -1 end
if cur[1] and tonumber(ARGV[1]) < tonumber(cur[1]) then return 0 end
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'tier', ARGV[2], 'level', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'pending', ARGV[4]) end
return 1
"""

# Clear the outbox once its alerts are published (unless another write replaced it meanwhile).
_CLEAR = """
if redis.call('HGET', KEYS[1], 'pending') == ARGV[1] then redis.call('HDEL', KEYS[1], 'pending') end
return 0
"""

K = TypeVar("K")  # a candidate (``tenant:candidate``) or a (candidate, job)

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Writes(Generic[K]):
    """What a compare-and-set write of states did: the keys written, and those whose stored
    state was no longer the one their decision was made from (to decide again)."""

    written: set[K]
    moved: set[K]


@dataclass(frozen=True)
class Loaded:
    """What the notifier stored of some candidates: the tier it announced, and its outbox."""

    states: dict[str, Notified | None]
    pending: dict[str, bytes]  # candidate key -> alerts stored but perhaps not published (JSON)
    stored: dict[str, Stored]  # candidate key -> its state in the scorer's store (not merged)


class NotifiedStore:
    """Per-candidate announced tier with sequence compare-and-set; safe under replay and rebalance."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        prefix: str,
        tiers: Sequence[str] = (),
        tiers_of: Callable[[str], Sequence[str]] | None = None,
        layout_for: Callable[[str], KeyLayout] | None = None,
    ) -> None:
        self._redis = redis
        self._keys = KeyLayout(prefix)
        self._tiers = list(tiers)  # the template's tier names, lowest first (the store's ``g``)
        self._tiers_of = tiers_of  # a tenant's own template's tier names, when tenants have one
        self._layout_for = layout_for  # the keys of a tenant's generation (the scorer's profiles)
        self._cas = redis.register_script(_CAS)
        self._clear = redis.register_script(_CLEAR)
        self._release = redis.register_script(_RELEASE)
        # pipelined through the store's run_pipelined: it loads a script a (new) master lacks
        self._sources = {str(s.sha): str(s.script) for s in (self._cas, self._clear)}

    def key(self, candidate_key: str) -> str:
        """Return the state key of ``tenant:candidate``."""
        return self._keys.notified(candidate_key)

    async def load(self, candidate_keys: Iterable[str]) -> Loaded:
        """The stored state of each ``tenant:candidate``, and the alerts a notifier stored with
        it but may not have published (it stopped in between): one pipelined round trip."""
        keys = list(dict.fromkeys(candidate_keys))
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(self.key(key), "tier", "seq", "pending")
                pipe.hmget(self.profile(key), "s", "r", "t", "m", "g")  # the same slot
            rows = await pipe.execute()
        ours, theirs = rows[0::2], rows[1::2]
        states = {
            key: Notified(row[0].decode(), int(row[1])) if row[0] is not None else None
            for key, row in zip(keys, ours, strict=True)
        }
        pending = {key: bytes(row[2]) for key, row in zip(keys, ours, strict=True) if row[2]}
        stored = {
            key: Stored(int(row[0]), float(row[1]), float(row[2]), self._tier_name(row[4], key))
            for key, row in zip(keys, theirs, strict=True)
            if row[0] is not None and row[1] is not None and row[2] is not None and row[3] is None
        }
        return Loaded(states, pending, stored)

    def _tier_name(self, number: bytes | None, candidate_key: str) -> str | None:
        """The name of the store's tier number (1-based, ``g``) under the tenant's template;
        None without rules or a number."""
        tiers = self._tiers
        if self._tiers_of is not None:
            tiers = list(self._tiers_of(candidate_key.split(":", 1)[0]))
        if number is None or not tiers:
            return None
        k = int(number) - 1
        return tiers[min(max(k, 0), len(tiers) - 1)]

    def profile(self, candidate_key: str) -> str:
        """The scorer's profile of ``tenant:candidate`` (engagement.store.redis_keys)."""
        tenant, candidate = candidate_key.split(":", 1)
        layout = self._keys if self._layout_for is None else self._layout_for(tenant)
        return layout.candidate(tenant, candidate).profile

    async def store(
        self,
        states: dict[str, tuple[Notified, int, bytes] | None],
        *,
        base: Mapping[str, Notified | None],
    ) -> Writes[str]:
        """Write (state, level, pending alerts) per candidate over the state it was decided
        from (``base``: as loaded; a candidate missing from it is taken to have none), or delete
        on ``None``; the candidates written (deleted ones included), and those whose stored
        state is no longer the one decided from (to decide again)."""
        keys = list(states)
        commands: list[Command] = []
        for key in keys:
            value = states[key]
            if value is None:
                commands.append(("DEL", self.key(key)))
                continue
            state, level, pending = value
            was = base.get(key)
            expected = ("", "") if was is None else (was.sequence, was.tier)
            args = (state.sequence, state.tier, level, pending, *expected)
            commands.append(("EVALSHA", self._cas.sha, 1, self.key(key), *args))
        results = await run_pipelined(self._redis, commands, self._sources)
        outcomes = dict(zip(keys, results, strict=True))
        return Writes(
            written={key for key in keys if states[key] is None or outcomes[key] == 1},
            moved={key for key in keys if states[key] is not None and outcomes[key] == -1},
        )

    async def clear_pending(self, pending: dict[str, bytes]) -> None:
        """Empty the outbox of each candidate, unless it holds other alerts by now."""
        if not pending:
            return
        sha = self._clear.sha
        commands = [("EVALSHA", sha, 1, self.key(key), value) for key, value in pending.items()]
        await run_pipelined(self._redis, commands, self._sources)

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
