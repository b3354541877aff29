"""The load: N track events for M candidates through ``POST /v1/batch``, paced over a duration.

Event times are spread over the last 60 days in random order (late and out of order, as imports
and offline clients send them); 3% of batches are sent a second time later on; a request that got
no answer (ingest killed, connection refused or reset, timeout) or a 5xx/429 is sent again until
it is acknowledged. Only events of acknowledged requests count in the expected scores.
"""

from __future__ import annotations

import queue
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.e2e.test_scoring_pipeline import CHANNELS, EVENTS
from tests.integration.scorer.expected import Sent
from tests.integration.scorer.pipeline import at, track

SPREAD_SECONDS = 60 * 86400.0
DUPLICATE_SHARE = 0.03
RETRY_PAUSE = 0.3


@dataclass(frozen=True)
class Batch:
    """One request: its events and whether it is the second sending of an earlier one."""

    index: int
    events: tuple[Sent, ...]
    again: bool = False


@dataclass
class LoadResult:
    """What the load generator did and what ingest acknowledged."""

    acknowledged: dict[str, Sent] = field(default_factory=dict)  # messageId -> event
    requests: int = 0
    unanswered: int = 0  # requests that got no answer or a 5xx/429 and were sent again
    refused: list[tuple[float, float, int | None]] = field(default_factory=list)  # sent, answered
    # at (epoch s) and status (None: no answer) of each of those
    duplicates_sent: int = 0
    failures: list[str] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def make_events(n: int, candidates: int, *, seed: int, now: float) -> list[Sent]:
    """N events for M candidates (every candidate gets at least one), times in the last 60 days."""
    rng = random.Random(seed)
    names = [f"cand-{i:05d}" for i in range(candidates)]
    owners = names + [rng.choice(names) for _ in range(n - candidates)]
    rng.shuffle(owners)
    return [
        Sent(
            uuid.UUID(int=rng.getrandbits(128)).hex,
            owner,
            rng.choice(EVENTS),
            rng.choice(CHANNELS),
            at(now - rng.uniform(60.0, SPREAD_SECONDS)),
        )
        for owner in owners
    ]


def plan(events: list[Sent], *, per_request: int, seed: int) -> list[Batch]:
    """Requests in sending order; 3% of them come again, later, as a second sending."""
    rng = random.Random(seed + 1)
    batches = [
        Batch(k, tuple(events[i : i + per_request]))
        for k, i in enumerate(range(0, len(events), per_request))
    ]
    order = list(batches)
    for batch in rng.sample(batches, max(1, round(len(batches) * DUPLICATE_SHARE))):
        later = rng.randint(batch.index + 1, len(order))
        order.insert(later, Batch(batch.index, batch.events, again=True))
    return order


def run_load(
    base: str,
    write_key: str,
    batches: list[Batch],
    *,
    start: float,
    seconds: float,
    clients: int = 4,
    give_up_after: float = 120.0,
) -> LoadResult:
    """Send every batch, paced evenly over ``seconds`` from ``start``, from ``clients`` threads."""
    result = LoadResult(started=start)
    todo: queue.Queue[tuple[float, Batch]] = queue.Queue()
    step = seconds / max(1, len(batches))
    for k, batch in enumerate(batches):
        todo.put((result.started + k * step, batch))
    threads = [
        threading.Thread(
            target=_client, args=(base, write_key, todo, result, give_up_after), daemon=True
        )
        for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.ended = time.time()
    return result


def _client(
    base: str,
    write_key: str,
    todo: queue.Queue[tuple[float, Batch]],
    result: LoadResult,
    give_up_after: float,
) -> None:
    with httpx.Client(base_url=base, auth=(write_key, ""), timeout=10.0) as client:
        while True:
            try:
                due, batch = todo.get_nowait()
            except queue.Empty:
                return
            time.sleep(max(0.0, due - time.time()))
            _send(client, batch, result, give_up_after)


def _send(client: httpx.Client, batch: Batch, result: LoadResult, give_up_after: float) -> None:
    """POST the batch until ingest answers it; record the events it acknowledged."""
    body: dict[str, Any] = {"batch": [track(e, user_id=e.candidate) for e in batch.events]}
    deadline = time.monotonic() + give_up_after
    while True:
        with result.lock:
            result.requests += 1
        sent = time.time()
        try:
            response = client.post("/v1/batch", json=body)
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code < 500 and response.status_code != 429:
            break
        with result.lock:
            result.unanswered += 1
            status = None if response is None else response.status_code
            result.refused.append((sent, time.time(), status))
        if time.monotonic() > deadline:
            with result.lock:
                result.failures.append(f"batch {batch.index}: no answer in {give_up_after:.0f}s")
            return
        time.sleep(RETRY_PAUSE)
    answer = response.json() if response.status_code == 200 else {}
    with result.lock:
        if answer.get("accepted") != len(batch.events):
            result.failures.append(f"batch {batch.index}: {response.status_code} {response.text}")
            return
        result.duplicates_sent += batch.again
        for event in batch.events:
            result.acknowledged[event.message_id] = event
