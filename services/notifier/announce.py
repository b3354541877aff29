"""Announcing tier crossings exactly once: the notifier's state and its alerts through an outbox.

Invariant: per candidate, the alerts on the alerts topic (and sent as webhooks) are the ones its
stored state announced, in order, whatever crashes: a decision is durable before anyone sees it,
and a decision stored is always published. Deciding again after a crash could differ (a later
``now``, the batch cut elsewhere): so the first decision wins.

1. ``recover``: alerts a notifier stored but may not have published (it stopped in between) are
   published again first, under their own ids (consumers dedupe by id; deliveries by id).
2. ``announce``: each candidate's new state is written with the alerts it announces as pending,
   by compare-and-set (a newer state, or a sweep's, wins: its alerts are then not published);
   then the alerts of the states written go to Kafka and to the webhook queue; then the outbox
   is emptied.

Job alerts (``engagement.model.job_alerts``) go the same way, per (candidate, job), through
``services.notifier.job_state``: ``recover_jobs``, then ``announce_jobs``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import orjson

from engagement.model.alerts import Notified
from engagement.model.job_alerts import JobKey
from engagement.model.records import CandidateAlert, JobAlert
from services.notifier.job_state import JobNotifiedStore
from services.notifier.publisher import AlertPublisher
from services.notifier.state import NotifiedStore


async def recover(
    state: NotifiedStore, publisher: AlertPublisher, pending: dict[str, bytes]
) -> None:
    """Publish the alerts stored as pending, then empty their outboxes."""
    alerts = [CandidateAlert.model_validate(a) for v in pending.values() for a in orjson.loads(v)]
    if alerts:
        await publisher.publish(alerts)
    await state.clear_pending(pending)


async def announce(
    state: NotifiedStore,
    publisher: AlertPublisher,
    decided: dict[str, tuple[Notified, int] | None],
    alerts: list[CandidateAlert],
    *,
    mode: str,
    expected: Mapping[str, tuple[int, int]] | None = None,
) -> list[CandidateAlert]:
    """Store each candidate's decided state (``None``: erase it) with its alerts, then publish
    the alerts of the states written; the alerts published. ``expected``: ``state.store``'s."""
    by_key: dict[str, list[CandidateAlert]] = defaultdict(list)
    for alert in alerts:
        by_key[f"{alert.tenantId}:{alert.candidateId}"].append(alert)
    outbox = {
        key: orjson.dumps([a.model_dump(mode="json") for a in by_key[key]])
        if key in by_key
        else b""
        for key in decided
    }
    writes: dict[str, tuple[Notified, int, bytes] | None] = {
        key: None if value is None else (*value, outbox[key]) for key, value in decided.items()
    }
    written = await state.store(writes, mode=mode, expected=expected) if writes else set()
    published = [a for key in decided if key in written for a in by_key.get(key, [])]
    if published:
        await publisher.publish(published)
        publisher.count(published)
    await state.clear_pending({k: outbox[k] for k in written if outbox.get(k)})
    return published


async def recover_jobs(
    state: JobNotifiedStore, publisher: AlertPublisher, pending: dict[JobKey, bytes]
) -> None:
    """Publish the job alerts stored as pending, then empty their outboxes."""
    alerts = [JobAlert.model_validate(a) for v in pending.values() for a in orjson.loads(v)]
    if alerts:
        await publisher.publish(alerts)
    await state.clear_pending(pending)


async def announce_jobs(
    state: JobNotifiedStore,
    publisher: AlertPublisher,
    decided: dict[JobKey, tuple[Notified, int]],
    alerts: list[JobAlert],
    *,
    mode: str,
) -> list[JobAlert]:
    """Store each (candidate, job)'s decided state with its alerts, then publish the alerts of
    the states written; the alerts published."""
    by_key: dict[JobKey, list[JobAlert]] = defaultdict(list)
    for alert in alerts:
        by_key[(f"{alert.tenantId}:{alert.candidateId}", alert.jobId)].append(alert)
    outbox = {
        key: orjson.dumps([a.model_dump(mode="json") for a in by_key[key]])
        if key in by_key
        else b""
        for key in decided
    }
    written = await state.store(
        {key: (*value, outbox[key]) for key, value in decided.items()}, mode=mode
    )
    published = [a for key in decided if key in written for a in by_key.get(key, [])]
    if published:
        await publisher.publish(published)
        publisher.count(published)
    await state.clear_pending({k: outbox[k] for k in written if outbox.get(k)})
    return published
