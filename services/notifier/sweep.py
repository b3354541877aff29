"""The decay sweep: range queries on the tier sets find who fell below an exit since the last sweep.

For tier k (above the floor) and every tier set j >= k, the members whose rank key lies in
``[bound(exit_k, t_last), bound(exit_k, t_now))`` were at or above ``exit_k`` at ``t_last`` and are
below it at ``t_now`` (engagement.store.redis_keys). ``t_last`` is a per-tenant watermark in Redis, moved
only after the tenant's alerts are published, so a crash repeats a range (harmless: the announced
tier's compare-and-set) and never skips one. No full scans: each query returns crossings only —
except a tenant's very first sweep (no watermark yet), which starts from -inf so that a crossing
that happened before any notifier swept is still found; the announced tiers dedupe it. A range is
read in keyset-paged slices (``ranked_members``): the scorer moving members in and out of it
meanwhile never shifts a member that stays out of the sweep. Crossings are decided and published
a page at a time (``crossings``), so a sweep's memory is bounded by a page, whatever the tenant's
size.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from engagement.model.alerts import Decision, Notified, tier_level
from engagement.model.decisions import Stored, decide_stored, decide_swept
from engagement.model.records import Alert, CandidateAlert
from engagement.model.rules import Rules
from engagement.model.scoring import rank_bound
from engagement.store import quiet, tier_history
from engagement.store.connection import RedisClient
from engagement.store.redis_keys import KeyLayout
from engagement.store.store_scripts import text
from services.notifier.announce import Decided, settle
from services.notifier.publisher import AlertPublisher
from services.notifier.state import Loaded, NotifiedStore

log = logging.getLogger(__name__)

PAGE = 500  # members per ZRANGE: bounds Redis' time per command and the reply size
QUIET_PAGES = 20  # pages of moved-without-a-record candidates a sweep decides per tenant

# a decision from a candidate's stored and announced states (engagement.model.decisions)
FromStored = Callable[[str, str, Stored | None, Notified | None, Rules, datetime], Decision]


@dataclass(frozen=True)
class Hit:
    """A tier-set member found in a crossing range."""

    candidate_id: str
    set_level: int
    rank: float
    exit_level: int


class TenantSweep(Protocol):
    """Another sweep run for each tenant after its candidates' (under the same lock)."""

    async def tenant(self, tenant: str, now: float, rules: Rules) -> Sequence[Alert]: ...


@dataclass
class DecaySweep:
    """One sweep over every tenant; run by the leader's timer under a Redis lock."""

    redis: RedisClient
    layout: KeyLayout
    rules: Rules
    state: NotifiedStore
    publisher: AlertPublisher
    interval: float
    # the tenant's own template (engagement.model.templates), else ``rules`` for every tenant
    rules_for: Callable[[str], Rules] | None = None
    # the keys of the tenant's generation (engagement.store.templated_store.tenant_layouts),
    # else ``layout`` for every tenant
    layout_for: Callable[[str], KeyLayout] | None = None
    jobs: TenantSweep | None = None  # the job alerts' (services.notifier.job_sweep)

    def _rules(self, tenant: str) -> Rules:
        return self.rules if self.rules_for is None else self.rules_for(tenant)

    def _layout(self, tenant: str) -> KeyLayout:
        return self.layout if self.layout_for is None else self.layout_for(tenant)

    async def run(self, now: float | None = None) -> list[Alert] | None:
        """Sweep up to ``now`` unless another worker holds the lock; return the alerts published."""
        token = uuid.uuid4().hex
        if not await self.state.acquire_sweep(token, ttl_ms=max(1000, int(self.interval * 900))):
            return None
        try:
            now = time.time() if now is None else now
            alerts: list[Alert] = []
            for tenant in sorted(text(m) for m in await self.redis.smembers(self.layout.tenants)):
                alerts.extend(await self._tenant(tenant, now))
                if self.jobs is not None:
                    alerts.extend(await self.jobs.tenant(tenant, now, self._rules(tenant)))
            return alerts
        finally:
            await self.state.release_sweep(token)

    async def _tenant(self, tenant: str, now: float) -> list[CandidateAlert]:
        since = await self.state.watermark(tenant)
        if since is None:  # first sweep of this tenant: every member below an exit is a candidate
            since = -math.inf
        if since >= now:
            return []
        alerts: list[CandidateAlert] = []
        async for hits in crossings(
            self.redis, self._layout(tenant), self._rules(tenant), tenant, since, now
        ):
            alerts += await self._decide_and_publish(tenant, hits, now)
        alerts += await self._quiet(tenant, now)
        await self.state.set_watermark(tenant, now)
        # the dashboard's 30-day chart: the first sweep of each UTC day keeps the day's counts
        await tier_history.sample(
            self.redis, self._layout(tenant), self._rules(tenant), tenant, now
        )
        return alerts

    async def _quiet(self, tenant: str, now: float) -> list[CandidateAlert]:
        """Decide the candidates the scorer moved on without a score record
        (``engagement.store.quiet``) from their stored state, a page at a time, at most
        ``QUIET_PAGES`` pages a sweep (the rest wait for the next one). An entry whose decision
        found the announced state changed meanwhile (the handler wrote it) stays for the next."""
        alerts: list[CandidateAlert] = []
        for _ in range(QUIET_PAGES):
            entries = await quiet.page(self.redis, self.layout, tenant, PAGE)
            if not entries:
                break
            published, refused = await self._decide_stored(
                tenant, [cand for cand, _ in entries], now
            )
            alerts += published
            await quiet.drop(
                self.redis, self.layout, tenant, [e for e in entries if e[0] not in refused]
            )
            if len(entries) < PAGE or refused:
                break
        return alerts

    async def _decide_stored(
        self, tenant: str, candidates: list[str], now: float
    ) -> tuple[list[CandidateAlert], set[str]]:
        """The alerts published, and the candidates whose announced state kept moving under the
        decision (decided again next sweep)."""
        return await self._settle(tenant, candidates, now, decide_stored)

    async def _decide_and_publish(
        self, tenant: str, hits: dict[str, Hit], now: float
    ) -> list[CandidateAlert]:
        """Decide each candidate found in a crossing range from its stored state, read with its
        announced one: the range's rank may be older than both (the scorer moved it since), and
        a sequence read apart from the rank could pass a decision from that rank as newer."""
        published, _ = await self._settle(tenant, sorted(hits), now, decide_swept)
        return published

    async def _settle(
        self, tenant: str, candidates: list[str], now: float, rule: FromStored
    ) -> tuple[list[CandidateAlert], set[str]]:
        """Decide each candidate by ``rule`` from its stored and announced states, through the
        outbox (``services.notifier.announce.settle``); the alerts published and the candidates
        still moving."""
        moment, rules = datetime.fromtimestamp(now, UTC), self._rules(tenant)

        def decide(loaded: Loaded) -> tuple[Decided, list[CandidateAlert]]:
            decided: Decided = {}
            alerts: list[CandidateAlert] = []
            for key, known in loaded.states.items():
                cand = key.split(":", 1)[1]
                decision = rule(tenant, cand, loaded.stored.get(key), known, rules, moment)
                if decision.state is not None:
                    decided[key] = (decision.state, tier_level(rules, decision.state.tier))
                    alerts.extend(decision.alerts)
            return decided, alerts

        keys = [f"{tenant}:{cand}" for cand in candidates]
        published, moving = await settle(self.state, self.publisher, keys, decide)
        return published, {key.split(":", 1)[1] for key in moving}


async def crossings(
    redis: RedisClient,
    layout: KeyLayout,
    rules: Rules,
    tenant: str,
    since: float,
    now: float,
    *,
    page: int = PAGE,
    sets: Callable[[str], str] | None = None,
) -> AsyncIterator[dict[str, Hit]]:
    """Yield, a page at a time, each candidate of ``tenant`` that crossed an exit in (since, now],
    with the lowest exit it crossed and its tier set. Memory is bounded by a page, not by the
    tenant (a first sweep finds every warm and hot candidate below an exit).

    A member's rank x crossed exit k when ``bound(exit_k, since) <= x < bound(exit_k, now)``;
    both bounds grow with k, so the exits it crossed are consecutive and the lowest is the one
    whose range holds x while the range of the exit below does not: a member is taken from that
    range only, once. ``sets``: the tier set of each tier name (default: the tenant's).
    """
    h, scale = rules.half_life_seconds, rules.score_scale
    tiers = rules.tiers
    ranges = [
        (rank_bound(tier.exit, since, scale, h), rank_bound(tier.exit, now, scale, h))
        for tier in tiers
    ]
    hits: dict[str, Hit] = {}
    for k in range(1, len(tiers)):
        low, high = ranges[k]
        below_low, below_high = ranges[k - 1] if k > 1 else (math.inf, math.inf)
        for j in range(k, len(tiers)):
            key = layout.tier_set(tenant, tiers[j].name) if sets is None else sets(tiers[j].name)
            async for member, rank in ranked_members(redis, key, low, high, page=page):
                if below_low <= rank < below_high:
                    continue  # it crossed exit k - 1 too: taken from that range
                hits[member] = Hit(member, j, rank, k)
                if len(hits) >= page:
                    yield hits
                    hits = {}
    if hits:
        yield hits


async def ranked_members(
    redis: RedisClient, key: str, low: float, high: float, *, page: int = PAGE
) -> AsyncIterator[tuple[str, float]]:
    """Yield ``(member, rank)`` with ``low <= rank < high`` in rank order, one page per round trip.

    Keyset-paged: each page starts after the last ``(rank, member)`` yielded (Redis orders equal
    ranks by member bytes), so members that leave or join the range between pages (the scorer
    moves them meanwhile) never make one that stays with its rank unchanged be skipped or come
    twice. A member whose rank moves ahead of the cursor meanwhile comes again with its new rank;
    one moved behind it is left to its score record.
    """
    if page < 2:
        raise ValueError("page must be >= 2")
    last: tuple[float, bytes] | None = None
    skip = 0  # members at rank last[0] that sort at or before last, less one: an offset guess
    while True:
        start = _bound(low) if last is None else _bound(last[0])
        reply: list[Any] = await redis.zrange(
            key, start, f"({_bound(high)}", byscore=True, offset=skip, num=page, withscores=True
        )
        rows = [(float(rank), member) for member, rank in reply]
        if skip and (not rows or last is None or rows[0] > last):
            skip = 0  # members before the cursor left: the guessed offset may jump past one
            continue
        fresh = [row for row in rows if last is None or row > last]
        for rank, member in fresh:
            yield member.decode(), rank
        if len(rows) < page:
            return
        skip, last = _cursor(rows, fresh, last, skip)


def _cursor(
    rows: list[tuple[float, bytes]],
    fresh: list[tuple[float, bytes]],
    last: tuple[float, bytes] | None,
    skip: int,
) -> tuple[int, tuple[float, bytes]]:
    """The next page's offset guess and cursor after a full page ``rows`` (``fresh`` its new tail).

    The guess points at the cursor itself (one row of overlap), so the next page can prove it
    missed nothing: its first row must sort at or before the cursor.
    """
    cursor = fresh[-1] if fresh else last
    assert cursor is not None  # a full page with nothing fresh follows a cursor
    ties = sum(1 for rank, _ in rows if rank == cursor[0])
    before = skip if last is not None and last[0] == cursor[0] else 0
    return before + ties - 1, cursor


def _bound(value: float) -> str:
    if value == math.inf:
        return "+inf"
    if value == -math.inf:
        return "-inf"
    return repr(value)
