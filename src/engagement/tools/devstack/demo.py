"""Demo traffic: candidate journeys sent through the public HTTP API (``/v1/batch``) at a rate."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from engagement.tools.devstack.journeys import Journey, new_journey

TICK_SECONDS = 0.25
LEAD_SHARE = 0.25


@dataclass
class DemoStats:
    """What the generator did so far (read by the live view)."""

    accepted: Counter[str] = field(default_factory=Counter)  # by channel
    rejected: int = 0
    failed_requests: int = 0
    journeys_started: int = 0
    last_error: str = ""

    @property
    def accepted_total(self) -> int:
        return sum(self.accepted.values())


def stamp(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Return the event with a fresh messageId and the client's timestamp."""
    return {**event, "messageId": str(uuid.uuid4()), "timestamp": now.isoformat()}


def channel_of(event: dict[str, Any]) -> str:
    """Return the channel an event is attributed to (identify calls count as web)."""
    return str(event.get("properties", {}).get("channel", "web"))


@dataclass
class DemoTraffic:
    """Sends ``rate`` events per second, drawn from a pool of concurrent journeys."""

    base_url: str
    write_key: str
    rate: float
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    seed: int | None = None
    stats: DemoStats = field(default_factory=DemoStats)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._pool: list[Journey] = []
        self._pending: list[dict[str, Any]] = []  # stamped, not yet acknowledged: resent as is
        self._budget = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Send traffic until ``stop`` is set; failed requests are retried with the same ids."""
        auth = httpx.BasicAuth(self.write_key, "")
        async with httpx.AsyncClient(base_url=self.base_url, auth=auth, timeout=10.0) as client:
            while not stop.is_set():
                self._budget = min(self._budget + self.rate * TICK_SECONDS, self.rate * 5)
                if not self._pending and self._budget >= 1:
                    self._pending = self._draw(int(self._budget))
                    self._budget -= len(self._pending)
                if self._pending:
                    await self._send(client)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), TICK_SECONDS)

    def _draw(self, count: int) -> list[dict[str, Any]]:
        pool_size = max(6, int(self.rate * 1.5))
        while len(self._pool) < pool_size:
            self._pool.append(self._new_journey())
        now = datetime.now(UTC)
        events = []
        for _ in range(count):
            # the oldest journey moves fastest, so complete journeys (and hot candidates) show early
            index = 0 if self._rng.random() < LEAD_SHARE else self._rng.randrange(len(self._pool))
            journey = self._pool[index]
            events.append(stamp(journey.next_step(), now))
            if journey.done:
                self._pool[index] = self._new_journey()
        return events

    def _new_journey(self) -> Journey:
        journey = new_journey(self._rng, run=self.run_id, index=self.stats.journeys_started)
        self.stats.journeys_started += 1
        return journey

    async def _send(self, client: httpx.AsyncClient) -> None:
        try:
            response = await client.post("/v1/batch", json={"batch": self._pending})
        except httpx.HTTPError as exc:
            self.stats.failed_requests += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            return
        if response.status_code != 200:
            self.stats.failed_requests += 1
            self.stats.last_error = f"HTTP {response.status_code}: {response.text[:200]}"
            return
        rejected = {r.get("index") for r in response.json().get("rejected", [])}
        for index, event in enumerate(self._pending):
            if index not in rejected:
                self.stats.accepted[channel_of(event)] += 1
        self.stats.rejected += len(rejected)
        self._pending = []


async def run_standalone(
    *, base_url: str, write_key: str, rate: float, duration: float | None
) -> int:
    """Run the generator alone (compose `demo` service): prints a line every 10 seconds."""
    traffic = DemoTraffic(base_url=base_url, write_key=write_key, rate=rate)
    stop = asyncio.Event()
    task = asyncio.create_task(traffic.run(stop))
    loop = asyncio.get_running_loop()
    deadline = None if duration is None else loop.time() + duration
    while not task.done() and (deadline is None or loop.time() < deadline):
        await asyncio.sleep(10 if deadline is None else min(10, max(0.1, deadline - loop.time())))
        s = traffic.stats
        print(
            f"demo: accepted {s.accepted_total} {dict(s.accepted)} rejected {s.rejected} "
            f"failed requests {s.failed_requests} {s.last_error}",
            flush=True,
        )
    stop.set()
    await task
    return 0
