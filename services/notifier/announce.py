"""Announcing tier crossings exactly once: the notifier's state and its alerts through an outbox.

Invariant: per candidate, the alerts on the alerts topic (and sent as webhooks) are the ones its
stored state announced, in order, whatever crashes: a decision is durable before anyone sees it,
and a decision stored is always published. Deciding again after a crash could differ (a later
``now``, the batch cut elsewhere): so the first decision wins.

``settle`` is the one way a candidate's state changes (the score-record handler and the decay
sweep, which run side by side in a notifier):

1. load the states, and publish first what their outboxes hold (a notifier stopped between
   storing and publishing them): alerts under their own ids (consumers dedupe by id; deliveries
   by id);
2. decide (pure);
3. write each decided state with its alerts as its outbox, only over the very state it was
   decided from (compare-and-set on its sequence and tier), then publish the alerts of the states
   written to Kafka and to the webhook queue, then empty their outboxes;
4. decide again, from what is stored now, each candidate whose state another writer moved
   between 1 and 3.

Step 3's compare-and-set keeps two things: each alert's ``previousTier`` is the tier announced
before it, and an outbox is never replaced before its alerts are published (whoever replaces it
loaded it first, so published it in step 1).

Job alerts (``engagement.model.job_alerts``) go the same way, per (candidate, job), through
``services.notifier.job_state``: ``settle_jobs``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel

from engagement.model.alerts import Notified
from engagement.model.job_alerts import JobKey
from engagement.model.records import CandidateAlert, JobAlert
from services.notifier.job_state import JobNotifiedStore, LoadedJobs
from services.notifier.publisher import AlertPublisher
from services.notifier.state import Loaded, NotifiedStore, Writes

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)  # a candidate (``tenant:candidate``) or a (candidate, job)
A = TypeVar("A", CandidateAlert, JobAlert)
L = TypeVar("L", Loaded, LoadedJobs)  # what a load of states returned
D = TypeVar("D", bound=Mapping[Any, Any])  # the decided states (``Decided``, ``DecidedJobs``)
Write = Callable[[dict[K, tuple[Notified, int, bytes] | None]], Awaitable[Writes[K]]]
Decided = dict[str, tuple[Notified, int] | None]  # a candidate's new state and its level, or erase
Decide = Callable[[Loaded], tuple[Decided, list[CandidateAlert]]]
DecidedJobs = dict[JobKey, tuple[Notified, int]]
DecideJobs = Callable[[LoadedJobs], tuple[DecidedJobs, list[JobAlert]]]

ROUNDS = 10  # decisions of one candidate a settle makes while other writers keep moving it


async def recover(
    state: NotifiedStore, publisher: AlertPublisher, pending: dict[str, bytes]
) -> None:
    """Publish the alerts stored as pending, then empty their outboxes."""
    await _recover(CandidateAlert, publisher, pending, state.clear_pending)


async def recover_jobs(
    state: JobNotifiedStore, publisher: AlertPublisher, pending: dict[JobKey, bytes]
) -> None:
    """Publish the job alerts stored as pending, then empty their outboxes."""
    await _recover(JobAlert, publisher, pending, state.clear_pending)


async def settle(
    state: NotifiedStore,
    publisher: AlertPublisher,
    keys: Iterable[str],
    decide: Decide,
) -> tuple[list[CandidateAlert], set[str]]:
    """Load, decide and announce the candidates (``tenant:candidate``), deciding again those
    whose state moved between the load and the write; the alerts published, and the candidates
    still moving after ``ROUNDS`` decisions (left as they are stored: their writer announced)."""

    async def write(
        decided: Decided, alerts: list[CandidateAlert], loaded: Loaded
    ) -> tuple[list[CandidateAlert], set[str]]:
        return await announce(state, publisher, decided, alerts, base=loaded.states)

    async def publish(loaded: Loaded) -> None:
        await recover(state, publisher, loaded.pending)

    return await _settle(keys, state.load, publish, decide, write)


async def settle_jobs(
    state: JobNotifiedStore,
    publisher: AlertPublisher,
    keys: Iterable[JobKey],
    decide: DecideJobs,
) -> tuple[list[JobAlert], set[JobKey]]:
    """``settle`` for (candidate, job) states."""

    async def write(
        decided: DecidedJobs, alerts: list[JobAlert], loaded: LoadedJobs
    ) -> tuple[list[JobAlert], set[JobKey]]:
        return await announce_jobs(state, publisher, decided, alerts, base=loaded.states)

    async def publish(loaded: LoadedJobs) -> None:
        await recover_jobs(state, publisher, loaded.pending)

    return await _settle(keys, state.load, publish, decide, write)


async def _settle(
    keys: Iterable[K],
    load: Callable[[list[K]], Awaitable[L]],
    publish: Callable[[L], Awaitable[None]],
    decide: Callable[[L], tuple[D, list[A]]],
    write: Callable[[D, list[A], L], Awaitable[tuple[list[A], set[K]]]],
) -> tuple[list[A], set[K]]:
    """The rounds of a settle: load, publish what the outboxes hold, decide, write (announce)
    over the keys, then over those whose stored state moved between the load and the write (a
    write refused as it stands, e.g. an older sequence, is not decided again), at most
    ``ROUNDS`` times; the alerts published and the keys still moving."""
    published: list[A] = []
    todo = list(dict.fromkeys(keys))
    for _ in range(ROUNDS):
        loaded = await load(todo)
        await publish(loaded)
        decided, alerts = decide(loaded)
        out, moved = await write(decided, alerts, loaded)
        published += out
        todo = [key for key in decided if key in moved]
        if not todo:
            return published, set()
    log.warning("%d notifier states kept moving under their decisions; left as stored", len(todo))
    return published, set(todo)


async def announce(
    state: NotifiedStore,
    publisher: AlertPublisher,
    decided: Decided,
    alerts: list[CandidateAlert],
    *,
    base: Mapping[str, Notified | None],
) -> tuple[list[CandidateAlert], set[str]]:
    """Store each candidate's decided state (``None``: erase it) with its alerts over the state
    it was decided from (``base``), then publish the alerts of the states written; the alerts
    published, and the candidates whose stored state had moved (not written)."""

    async def write(writes: dict[str, tuple[Notified, int, bytes] | None]) -> Writes[str]:
        return await state.store(writes, base=base)

    return await _through_outbox(
        write, state.clear_pending, publisher, decided, alerts, _candidate_key
    )


async def announce_jobs(
    state: JobNotifiedStore,
    publisher: AlertPublisher,
    decided: Mapping[JobKey, tuple[Notified, int]],
    alerts: list[JobAlert],
    *,
    base: Mapping[JobKey, Notified | None],
) -> tuple[list[JobAlert], set[JobKey]]:
    """Store each (candidate, job)'s decided state with its alerts over the state it was
    decided from (``base``), then publish the alerts of the states written; the alerts
    published, and the pairs whose stored state had moved (not written)."""

    async def write(writes: dict[JobKey, tuple[Notified, int, bytes] | None]) -> Writes[JobKey]:
        kept = {key: value for key, value in writes.items() if value is not None}
        return await state.store(kept, base=base)

    return await _through_outbox(
        write, state.clear_pending, publisher, dict(decided), alerts, _job_key
    )


def _candidate_key(alert: CandidateAlert) -> str:
    return f"{alert.tenantId}:{alert.candidateId}"


def _job_key(alert: JobAlert) -> JobKey:
    return (f"{alert.tenantId}:{alert.candidateId}", alert.jobId)


async def _recover(
    model: type[A],
    publisher: AlertPublisher,
    pending: Mapping[K, bytes],
    clear: Callable[[dict[K, bytes]], Awaitable[None]],
) -> None:
    alerts = [model.model_validate(a) for v in pending.values() for a in orjson.loads(v)]
    if alerts:
        await publisher.publish(alerts)
    await clear(dict(pending))


async def _through_outbox(
    write: Write[K],
    clear: Callable[[dict[K, bytes]], Awaitable[None]],
    publisher: AlertPublisher,
    decided: Mapping[K, tuple[Notified, int] | None],
    alerts: Sequence[A],
    key_of: Callable[[A], K],
) -> tuple[list[A], set[K]]:
    """The steps both kinds of alerts go through: each key's state stored with its alerts as
    its outbox (compare-and-set), the alerts of the states written published, the outboxes
    emptied; the alerts published and the keys whose stored state had moved."""
    by_key: dict[K, list[A]] = defaultdict(list)
    for alert in alerts:
        by_key[key_of(alert)].append(alert)
    outbox = {key: _outbox(by_key[key]) if key in by_key else b"" for key in decided}
    writes: dict[K, tuple[Notified, int, bytes] | None] = {}
    for key, value in decided.items():
        writes[key] = None if value is None else (value[0], value[1], outbox[key])
    done = await write(writes) if writes else Writes[K](set(), set())
    written = done.written
    published = [a for key in decided if key in written for a in by_key.get(key, [])]
    if published:
        await publisher.publish(published)
        publisher.count(published)
    await clear({k: outbox[k] for k in written if outbox.get(k)})
    return published, done.moved


def _outbox(alerts: Sequence[BaseModel]) -> bytes:
    return orjson.dumps([a.model_dump(mode="json") for a in alerts])
