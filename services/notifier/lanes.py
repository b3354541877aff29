"""Delivery lanes: each webhook endpoint's deliveries are claimed and sent by a lane of its own.

A lane keeps up to ``WEBHOOK_CONCURRENCY`` attempts in flight and claims the next due delivery as
soon as one finishes (in the script that records the finished one), so an endpoint that answers
slowly, or not at all, fills only its own slots: a healthy endpoint's deliveries never wait
behind it, and no attempt waits for the slowest of a batch. A claim moves only as many
deliveries as the lane has free slots, so nothing sits claimed in memory while its lease runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from engagement.faust.poison import Streak, describe
from services.notifier.attempts import Deliverer
from services.notifier.delivery_queue import Claim, Claimed

log = logging.getLogger(__name__)


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


@dataclass
class Lane:
    """Claims and sends one endpoint's due deliveries, at most ``concurrency`` at once."""

    endpoint_id: str
    deliverer: Deliverer
    poll: float  # longest idle wait: deliveries another worker queued are seen this soon
    retry_max: float  # longest backoff while claims fail (Redis away)
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # set: deliveries were queued
    _freed: asyncio.Event = field(default_factory=asyncio.Event)
    _inflight: set[asyncio.Task[None]] = field(default_factory=set)

    async def run(self) -> None:
        """Forever: fill the free slots with due deliveries, then wait for a slot, a wake or
        the next due time. A failing claim is retried with backoff; attempts in flight when the
        lane is cancelled are cancelled too (claimed again once their lease ends)."""
        delay, streak = self.poll, Streak()
        try:
            while True:
                try:
                    pause = await self._fill()
                except Exception as exc:
                    self.deliverer.metrics.retries.labels("deliveries").inc()
                    log.warning(
                        "claiming webhook deliveries of %s failed (%s); retrying in %.2fs",
                        self.endpoint_id,
                        describe(exc),
                        delay,
                        exc_info=streak.traceback_of(exc),
                        extra={"event": "notifier.deliveries_retry", "error": describe(exc)},
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.retry_max)
                    continue
                delay = self.poll
                streak.ended()
                if pause is not None:
                    await _wait(*pause)
        finally:
            for task in self._inflight:
                task.cancel()
            await asyncio.gather(*self._inflight, return_exceptions=True)

    async def _fill(self) -> tuple[asyncio.Event, float] | None:
        """Claim as many due deliveries as there are free slots and start them; return what to
        wait for (and how long at most) before the next claim, None to claim again at once."""
        free = self.deliverer.concurrency - len(self._inflight)
        if free <= 0:
            self._freed.clear()
            return self._freed, self.poll
        self.wake.clear()  # before the claim: a delivery queued meanwhile wakes the next wait
        claim = await self.deliverer.queue.claim(
            endpoint_id=self.endpoint_id,
            now_ms=int(time.time() * 1000),
            lease_ms=int(self.deliverer.lease_s * 1000),
            limit=free,
            token=self.deliverer.token(),
        )
        for claimed in claim.claimed:
            task = asyncio.create_task(self._slot(claimed, claim.disabled))
            self._inflight.add(task)
            task.add_done_callback(self._finished)
        if len(claim.claimed) == free:  # there may be more due: claim again once a slot frees
            return None
        timeout = self.poll
        if claim.next_due_ms is not None:
            timeout = min(self.poll, max(0.01, claim.next_due_ms / 1000 - time.time()))
        return self.wake, timeout

    async def _slot(self, claimed: Claimed, disabled: str | None) -> None:
        """Make an attempt, then the one its recording claimed for this slot, and so on until
        none is due: a busy lane makes one Redis round trip per attempt."""
        nxt: Claim | None = Claim([claimed], None, disabled)
        while nxt is not None and nxt.claimed:
            nxt = await self.deliverer.send(nxt.claimed[0], nxt.disabled, then=1)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._freed.set()
        if not task.cancelled() and task.exception() is not None:  # send() raises none it can
            log.error("webhook attempt of %s failed", self.endpoint_id, exc_info=task.exception())


@dataclass
class Lanes:
    """One lane per configured endpoint, and one per endpoint that has pending deliveries but no
    lane yet (removed from the configuration: its lane sends them to the DLQ as ``disabled``)."""

    deliverer: Deliverer
    poll: float
    retry_max: float
    reconcile_every: float = 30.0
    lanes: dict[str, Lane] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def run(self, wake: asyncio.Event) -> None:
        """Run the lanes forever; ``wake`` (set when this worker queues deliveries) wakes them
        all. Every ``reconcile_every`` s, deliveries no lane holds (queued by a notifier of before
        the lanes) are put into their endpoint's lane."""
        for endpoint in self.deliverer.config.endpoints:
            self._start(endpoint.id)
        try:
            while True:
                await self._reconcile()
                await _wait(wake, self.reconcile_every)
                wake.clear()
                for lane in self.lanes.values():
                    lane.wake.set()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _start(self, endpoint_id: str) -> None:
        lane = Lane(endpoint_id, self.deliverer, poll=self.poll, retry_max=self.retry_max)
        self.lanes[endpoint_id] = lane
        self._tasks.append(asyncio.create_task(lane.run(), name=f"webhook-lane-{endpoint_id}"))

    async def _reconcile(self) -> None:
        """Adopt deliveries no lane holds, when the due set counts more than the lanes do."""
        queue = self.deliverer.queue
        try:
            backlog = await queue.backlog(sorted(self.lanes))
            if backlog.pending <= sum(b.pending for b in backlog.endpoints.values()):
                return
            adopted, endpoints = await queue.adopt()
        except Exception as exc:  # the next round tries again; the lanes go on meanwhile
            log.warning("reconciling webhook lanes failed (%s)", describe(exc))
            return
        for endpoint_id in sorted(endpoints - set(self.lanes)):
            self._start(endpoint_id)
        if adopted:
            log.info("%d webhook deliveries put into their endpoint's lane", adopted)
