"""Tier counts per UTC day: one sample per tenant and day, for the dashboard's 30-day chart.

The tier sets hold each candidate's latest state only, so past counts cannot be computed from
them (a candidate's rank key valued at an earlier instant is its current state decayed
backwards: higher than it was, and erased candidates are gone). They are sampled instead: the
notifier's decay sweep calls ``sample`` for every tenant it sweeps (every
``NOTIFIER_SWEEP_INTERVAL``), and so does each read of ``GET /dashboard/history``. The first
sample of a UTC day is kept (``HSETNX``; the later ones only cost an ``HEXISTS``), so a day's
value is its counts at the first sweep after 00:00 UTC, whichever process took it.

Key ``P dashboard:{T}:tier-days`` (the tenant's slot; ``P`` the base prefix whatever the tenant's
generation, so the history outlives ``engagement rebuild --tenant``, while the counts are read
from the generation's tier sets): hash, field = UTC date (``2026-12-03``),
value = JSON ``[sampled at (epoch seconds), {tier: count}]``; a bare ``{tier: count}`` (written
before the sweep sampled) is read with an unknown instant. Fields older than ``KEEP_DAYS`` go.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from engagement.model.rules import Rules
from engagement.store import rank_reads
from engagement.store.connection import RedisClient
from engagement.store.redis_keys import KeyLayout
from engagement.store.store_scripts import text

KEEP_DAYS = 90


@dataclass(frozen=True)
class DaySample:
    """A tenant's tier counts sampled on ``day`` at ``at`` (None: not known), or no sample."""

    day: str
    at: float | None
    counts: dict[str, int] | None


@dataclass
class _Reader:
    """What ``rank_reads.tier_counts`` needs: the client, the layout and the tenant's rules."""

    redis: RedisClient
    keys: KeyLayout
    rules: Rules


def history_key(layout: KeyLayout, tenant_id: str) -> str:
    """The tenant's hash of daily tier counts."""
    return f"{layout.prefix}dashboard:{{{tenant_id}}}:tier-days"


def utc_day(at: float) -> date:
    """The UTC date of the instant ``at``."""
    return datetime.fromtimestamp(at, tz=UTC).date()


async def sample(
    redis: RedisClient, layout: KeyLayout, rules: Rules, tenant_id: str, now: float
) -> bool:
    """Record the tenant's tier counts at ``now`` unless its UTC day has a sample already; True
    when this call recorded it. Idempotent per day: concurrent samplers keep the first."""
    key, today = history_key(layout, tenant_id), utc_day(now)
    if await redis.hexists(key, today.isoformat()):
        return False
    counts = await rank_reads.tier_counts(_Reader(redis, layout, rules), tenant_id, now)
    recorded = bool(await record(redis, key, today, now, counts))
    if recorded:
        await _forget_old(redis, key, today)
    return recorded


async def record(
    redis: RedisClient, key: str, day: date, at: float, counts: dict[str, int]
) -> bool:
    """Store ``counts`` sampled at ``at`` as ``day``'s, unless the day has a sample already."""
    return bool(await redis.hsetnx(key, day.isoformat(), orjson.dumps([at, counts])))


async def days(
    redis: RedisClient, layout: KeyLayout, tenant_id: str, last: date, count: int
) -> list[DaySample]:
    """The samples of the ``count`` days ending with ``last``, oldest first."""
    wanted = [(last - timedelta(days=n)).isoformat() for n in range(count - 1, -1, -1)]
    stored = await redis.hmget(history_key(layout, tenant_id), wanted)
    return [_parsed(day, raw) for day, raw in zip(wanted, stored, strict=True)]


def _parsed(day: str, raw: Any) -> DaySample:
    if raw is None:
        return DaySample(day, None, None)
    value = orjson.loads(raw)
    if isinstance(value, list):
        return DaySample(day, float(value[0]), {str(k): int(n) for k, n in value[1].items()})
    return DaySample(day, None, {str(k): int(n) for k, n in value.items()})


async def _forget_old(redis: RedisClient, key: str, today: date) -> None:
    oldest = (today - timedelta(days=KEEP_DAYS)).isoformat()
    old = [f for f in (text(f) for f in await redis.hkeys(key)) if f < oldest]
    if old:
        await redis.hdel(key, *old)
