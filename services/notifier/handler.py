"""Score-change batches → alerts: gather state, decide (pure), store it with its alerts as an
outbox, publish them (alerts topic, webhook queue), empty the outbox (``services.notifier.announce``).

A crash between storing and publishing leaves the alerts in the outbox: whoever loads the
candidate next (the batch replayed, the sweep) publishes them under their own ids.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from engagement.faust.lifecycle import StopSwitch
from engagement.faust.poison import Failed, Streak, describe, isolate, retry_outages
from engagement.kafka.bad_rows import record_row
from engagement.kafka.topics import tenant_of_key
from engagement.model.alerts import tier_level
from engagement.model.decisions import fold_changes
from engagement.model.records import Alert, CandidateAlert, ScoreChange
from engagement.model.rules import Rules
from services.notifier import job_changes
from services.notifier.announce import Decided, settle
from services.notifier.job_state import JobNotifiedStore
from services.notifier.metrics import NotifierMetrics
from services.notifier.publisher import AlertPublisher
from services.notifier.state import Loaded, NotifiedStore

log = logging.getLogger(__name__)

DeadLetter = Callable[[bytes, bytes], Awaitable[None]]
PROCESSOR = "engagement-notifier"
QUARANTINED = "processing_error"  # the DLQ failureType of a record set aside by a failure


@dataclass(frozen=True)
class ScoreRecord:
    """One consumed score record: its bytes, the broker timestamp (ms) and where it came from."""

    value: bytes
    timestamp_ms: int | None
    key: bytes | None = None
    topic: str = ""
    partition: int = 0
    offset: int = 0


@dataclass
class ChangeHandler:
    """Handles one batch of score records; ``handle`` raises nothing but ``Stopped`` (the worker
    stops: the batch is given up). Outages are retried until they end; a record failing for any
    other reason is tried again a few times, then it alone is quarantined to the scores DLQ
    (``engagement.faust.poison``); an unparseable one goes there at once."""

    rules: Rules
    state: NotifiedStore
    publisher: AlertPublisher
    metrics: NotifierMetrics
    dead_letter: DeadLetter  # acknowledged produce of a DLQ row (key, value)
    retry_max: float = 5.0
    poison_retries: int = 3
    last_ok: float = field(default_factory=time.monotonic)
    switch: StopSwitch = field(default_factory=StopSwitch)
    streak: Streak = field(default_factory=Streak)  # a failing streak logs one traceback
    # the tenant's own template (engagement.model.templates), else ``rules`` for every tenant
    rules_for: Callable[[str], Rules] | None = None
    jobs: JobNotifiedStore | None = None  # job alerts (None: none are decided)

    def stop(self) -> None:
        """Give the batch in hand up now, and take no other (the worker stops)."""
        self.switch.stop()

    async def handle(self, records: Sequence[ScoreRecord]) -> None:
        """Decide and publish the batch's crossings; returns once they are published and stored
        (or the records that failed are in the DLQ)."""
        if records:
            await self.switch.run(lambda: self._isolating(records))
        self.last_ok = time.monotonic()

    async def _isolating(self, records: Sequence[ScoreRecord]) -> None:
        await isolate(
            records,
            process=self._process,
            quarantine=self._quarantine,
            on_failure=self._note_failure,
            retries=self.poison_retries,
            retry_max=self.retry_max,
        )
        self.streak.ended()

    async def _process(self, records: Sequence[ScoreRecord]) -> None:
        parsed, bad = [], []
        for record in records:
            change = self._parse(record)
            if isinstance(change, ScoreChange):
                parsed.append((change, record.timestamp_ms))
            else:
                bad.append((record, change))
        changes = [c for c, _ in parsed]
        if changes:
            alerts = await retry_outages(
                "changes",
                lambda: self._apply(changes),
                on_outage=self._note_failure,
                retry_max=self.retry_max,
            )
            self._observe_latency(
                alerts, {(c.tenantId, c.candidateId, c.sequence): ts for c, ts in parsed}
            )
        for record, problems in bad:
            await self._dead_letter(record, "schema_violation", problems)

    async def _apply(self, changes: list[ScoreChange]) -> list[Alert]:
        """The candidates' crossings, then the jobs' of the changes that carry job entries
        (``services.notifier.job_changes``; none for a batch without them)."""
        alerts: list[Alert] = [*await self._candidates(changes)]
        if self.jobs is not None and any(c.jobs or c.cause.type == "erasure" for c in changes):
            alerts += await job_changes.apply(
                changes, state=self.jobs, publisher=self.publisher, rules_for=self._rules
            )
        return alerts

    def _rules(self, tenant: str) -> Rules:
        return self.rules if self.rules_for is None else self.rules_for(tenant)

    async def _candidates(self, changes: list[ScoreChange]) -> list[CandidateAlert]:
        """Each candidate's crossings under its tenant's template, settled through the outbox
        (``services.notifier.announce``: loaded, decided (pure), announced; decided again when
        the sweep moved the state meanwhile)."""

        def decide(loaded: Loaded) -> tuple[Decided, list[CandidateAlert]]:
            theirs = [c for c in changes if f"{c.tenantId}:{c.candidateId}" in loaded.states]
            now = datetime.now(UTC)
            alerts: list[CandidateAlert] = []
            decided: Decided = {}
            for tenant, batch in _by_tenant(theirs).items():  # each under its tenant's template
                rules = self._rules(tenant)
                found, final = fold_changes(batch, loaded.states, rules, now, loaded.stored)
                alerts += found
                decided |= {
                    key: None if s is None else (s, tier_level(rules, s.tier))
                    for key, s in final.items()
                }
            return decided, alerts

        keys = (f"{c.tenantId}:{c.candidateId}" for c in changes)
        published, _ = await settle(self.state, self.publisher, keys, decide)
        return published

    def _parse(self, record: ScoreRecord) -> ScoreChange | tuple[str, ...]:
        """The record's score change, or why it is none."""
        try:
            return ScoreChange.model_validate_json(record.value)
        except ValidationError as exc:
            return tuple(
                f"{'.'.join(str(p) for p in e['loc']) or '$'}: {e['msg']}" for e in exc.errors()
            )
        except ValueError as exc:
            return (str(exc),)

    async def _quarantine(self, record: ScoreRecord, failed: Failed) -> None:
        await self._dead_letter(record, QUARANTINED, (str(failed),))

    async def _dead_letter(
        self, record: ScoreRecord, failure_type: str, messages: Sequence[str]
    ) -> None:
        """Write the record's DLQ row (acknowledged; the last resort: retried until it is)."""
        tenant = tenant_of_key(record.key)
        row = record_row(
            failure_type=failure_type,
            messages=messages,
            processor=PROCESSOR,
            tenant=tenant,
            now=datetime.now(UTC),
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
        )
        await retry_outages(
            "dlq",
            lambda: self.dead_letter(record.key or b"", row),
            on_outage=self._note_failure,
            retry_max=self.retry_max,
            forever=True,
        )
        self.metrics.bad_records.labels(failure_type).inc()
        fields: dict[str, Any] = {
            "event": "notifier.dlq",
            "failureType": failure_type,
            "messages": list(messages),
            "tenant": tenant,
            "partition": record.partition,
            "offset": record.offset,
        }
        log.warning("dead-lettered score record %s", orjson.dumps(fields).decode(), extra=fields)

    def _note_failure(self, what: str, exc: BaseException, delay: float) -> None:
        self.metrics.retries.labels(what).inc()
        log.warning(
            "%s failed (%s); retrying in %.2fs",
            what,
            describe(exc),
            delay,
            exc_info=self.streak.traceback_of(exc),
            extra={"event": f"notifier.{what}_retry", "error": describe(exc)},
        )

    def _observe_latency(
        self, alerts: list[Alert], produced_ms: dict[tuple[str, str, int], int | None]
    ) -> None:
        now_ms = time.time() * 1000
        for alert in alerts:
            ts = produced_ms.get((alert.tenantId, alert.candidateId, alert.sequence))
            if ts is not None:
                self.metrics.alert_latency.observe(max(0.0, (now_ms - ts) / 1000))


def _by_tenant(changes: list[ScoreChange]) -> dict[str, list[ScoreChange]]:
    """The batch's changes per tenant, each in batch order."""
    groups: dict[str, list[ScoreChange]] = {}
    for change in changes:
        groups.setdefault(change.tenantId, []).append(change)
    return groups
