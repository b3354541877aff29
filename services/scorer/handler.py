"""The batch handler: parse and apply in Redis (retried) → publish score records → DLQ the bad;
an erasure request splits the batch there and erases its candidate again, and the events of ids
behind an erasure fence (``engagement.store.erasure_fence``) are withheld. A rebuild (``publish``
False) does the same in Redis and sends nothing to Kafka (docs/operations.md §3).

Nothing here raises for bad data or an outage (only ``Stopped``, when the worker stops: the batch
in hand is then given up unacked): the Faust agent acks a batch only when this returns, so a
batch is acknowledged only after Redis holds its result (at-least-once; every
step is idempotent, so a replay after a crash or rebalance changes nothing). An outage
(``engagement.faust.outages``) is retried where it happens until it ends. Any other failure is the
batch's: the batch is tried again a few times (``poison_retries``), then narrowed down by halves
to the record that fails, which alone is quarantined to the DLQ (``processing_error``); the
other records are scored as usual. Replaying every step is what makes trying a record again safe.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from engagement import erasure
from engagement.erasure import ErasureTopics
from engagement.faust.lifecycle import StopSwitch
from engagement.faust.poison import Failed, Streak, describe, isolate, retry_outages
from engagement.kafka.rules_topic import RebuildMarker
from engagement.kafka.score_records import OutRecord
from engagement.kafka.topics import tenant_of_key
from engagement.model.log_privacy import hashed_id
from engagement.model.records import ErasureRequest
from engagement.model.score_views import ApplyOutcome
from engagement.store.erasure_fence import Fences
from engagement.store.redis_store import ScoreStore
from engagement.store.store_jobs import OnOutcome
from services.scorer.metrics import ScorerMetrics, count_outcomes
from services.scorer.parsing import (
    BadRow,
    ParsedBatch,
    RawRecord,
    Segment,
    bad_row_value,
    with_fences,
)
from services.scorer.score_changes import (
    MISSING,
    Encoded,
    encoded_change,
    score_records,
)

log = logging.getLogger("engagement.scorer")

SendAll = Callable[[Sequence[OutRecord]], Awaitable[Any]]
QUARANTINED = "processing_error"  # the DLQ failureType of a record set aside by a failure


@dataclass
class BatchHandler:
    """Scores one batch of raw records; keeps the state /healthz and the lag gauge read."""

    store: ScoreStore
    send_all: SendAll  # buffered produce (flushed by Faust before the offsets are committed)
    send_acked: SendAll  # acknowledged produce of records in order (DLQ rows, an erasure's)
    metrics: ScorerMetrics
    dlq_topic: str
    changes_topic: str
    latest_topic: str
    interactions_topic: str  # where erasure requests go (the topic it consumes)
    retry_max: float = 5.0
    poison_retries: int = 3  # tries of a failing batch (and then record) after its first
    publish: bool = True  # False: a rebuild (SCORER_REBUILD): Redis only, nothing goes to Kafka
    # at a tenant's rebuild marker: returns once the tenant's records after it may be scored
    handover: Callable[[RebuildMarker], Awaitable[None]] | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    positions: dict[int, int] = field(default_factory=dict)
    last_success: float = field(default_factory=time.monotonic)
    failing_since: float | None = None
    streak: Streak = field(default_factory=Streak)  # a failing streak logs one traceback
    switch: StopSwitch = field(default_factory=StopSwitch)
    # the key of the hash log lines name candidates by (LOG_HASH_KEY; random when not given)
    log_hash_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    def stop(self) -> None:
        """Give the batch in hand up now, and take no other (the worker stops)."""
        self.switch.stop()

    async def handle(self, records: Sequence[RawRecord]) -> None:
        """Process a batch; returns only once Redis has every valid record's result and every
        record that failed for a reason other than an outage is in the DLQ."""
        if records:
            await self.switch.run(lambda: self._isolating(records))
        self.metrics.batch_events.observe(len(records))
        positions = self.positions
        for partition, offset in {r.partition: r.offset for r in records}.items():  # the last
            positions[partition] = max(positions.get(partition, 0), offset + 1)

    async def _isolating(self, records: Sequence[RawRecord]) -> None:
        await isolate(
            records,
            process=self._process,
            quarantine=self._quarantine,
            on_failure=self._note_failure,
            retries=self.poison_retries,
            retry_max=self.retry_max,
        )
        self._recovered()

    async def _process(self, records: Sequence[RawRecord]) -> None:
        """Score ``records`` (erasing where a request is); raises ``Failed`` for any failure
        that is no outage."""
        parsed = ParsedBatch(records)  # parsed as the store takes them
        # ids being erased (usually none): their events from before are withheld; a failure
        # reading them is no record's, so it is retried like an outage
        now = self.clock().timestamp()
        parsed.fences = await self._retrying(
            "redis", lambda: self.store.fences(now, drop=self.publish), forever=True
        )
        segment = parsed.segment()
        await self._score(segment, len(records))
        while segment.request is not None:  # an erasure: the events after it go on after it
            if isinstance(segment.request, RebuildMarker):  # a tenant's rebuild: its cut
                if self.handover is not None:
                    await self.handover(segment.request)
            else:
                merged = await self._erase(segment.request)
                parsed.fences = with_fences(parsed.fences, merged)  # the store's own stays
            segment = parsed.segment()
            await self._score(segment, len(records))
        for tenant, count in Counter(i.tenantId for i in parsed.withheld).items():
            self.metrics.events.labels(tenant, "erasing").inc(count)
        for row in parsed.bad:
            await self._dead_letter(row)

    async def _score(self, segment: Segment, most: int) -> None:
        """Apply a segment's interactions (``most``: at most that many) and publish their records."""
        if not self.publish:
            await self._apply(segment, None, None)
            return
        # score records are built while Redis works: each record value as soon as Redis answers
        # for its event, and the batch's records, handed to the producer, while Redis updates the
        # ranks (an attempt retried after that publishes them again: consumers dedupe by sequence)
        encoded: list[Encoded] = [MISSING] * most
        publishing: list[asyncio.Future[None]] = []

        def build(outcomes: list[ApplyOutcome]) -> None:
            out = self._score_records(outcomes, encoded)
            publishing.append(asyncio.ensure_future(self._publish(out)))

        try:
            await self._apply(segment, lambda k, o: _encode(encoded, k, o), build)
            for published in publishing:
                await published  # retries outages until the producer has them
        finally:  # failed or cancelled (the worker stops): the batch will be tried again
            for published in publishing:
                published.cancel()

    async def _erase(self, request: ErasureRequest) -> Fences:
        """Erase the candidate again where its erasure request is in its partition
        (``engagement.erasure.behind_events``); the fences the rest of the batch keeps to."""
        tenant = request.tenantId
        erased = await erasure.behind_events(
            self.store,
            request,
            now=self.clock(),
            publish=self.send_acked if self.publish else None,
            topics=ErasureTopics(self.changes_topic, self.latest_topic, self.interactions_topic),
            step=self._retrying,
        )
        if erased is None:
            self.metrics.events.labels(tenant, "kept").inc()  # it came back: no expiry
            return {}
        self.metrics.events.labels(tenant, "erased").inc()
        fields: dict[str, Any] = {
            "event": "scorer.erased",
            "tenant": tenant,
            "candidate": hashed_id(request.candidateId, key=self.log_hash_key),  # erased
            "removedKeys": erased.erasure.removed_keys,
            "mergedIds": len(erased.erasure.merged_ids),
        }
        log.info("erased again behind its events: %s", orjson.dumps(fields).decode(), extra=fields)
        return erased.fences

    async def _quarantine(self, record: RawRecord, failed: Failed) -> None:
        """Set aside a record that kept failing for a reason that is no outage: to the DLQ with
        the failing step and its error (docs/operations.md §4 tells how to replay it)."""
        tenant = tenant_of_key(record.key)
        await self._dead_letter(BadRow(record, QUARANTINED, (str(failed),), tenant))
        self.metrics.quarantined.labels(tenant or "", QUARANTINED).inc()

    async def _dead_letter(self, row: BadRow) -> None:
        record = row.record
        fields = {
            "event": "scorer.dlq",
            "failureType": row.failure_type,
            "messages": list(row.messages),
            "tenant": row.tenant_id,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
        }
        log.warning("dead-lettered record %s", orjson.dumps(fields).decode(), extra=fields)
        if self.publish:  # a rebuild's bad rows are on the DLQ already, from the live scorer
            out = OutRecord(self.dlq_topic, record.key, bad_row_value(row, now=self.clock()), [])
            # the last resort: any failure of it is retried until it ends
            await self._retrying("dlq", lambda: self.send_acked([out]), forever=True)
        self.metrics.events.labels(row.tenant_id or "", "dlq").inc()

    async def _apply(
        self,
        parsed: Segment,
        on_outcome: OnOutcome | None,
        while_ranking: Callable[[list[ApplyOutcome]], None] | None,
    ) -> list[ApplyOutcome]:
        started = time.perf_counter()
        outcomes: list[ApplyOutcome] = await self._retrying(
            "redis",
            lambda: self.store.apply_batch(
                parsed, on_outcome=on_outcome, while_ranking=while_ranking
            ),
        )
        self.metrics.redis_seconds.observe(time.perf_counter() - started)
        now = self.clock().timestamp()
        # a rebuild's events were received long ago: no latency of its own
        count_outcomes(self.metrics, parsed.interactions, outcomes, now=now, latency=self.publish)
        return outcomes

    def _score_records(
        self, outcomes: list[ApplyOutcome], encoded: list[Encoded]
    ) -> list[OutRecord]:
        return list(
            score_records(
                outcomes,
                changes_topic=self.changes_topic,
                latest_topic=self.latest_topic,
                floor_of=self._floor,
                encoded=encoded,
            )
        )

    def _floor(self, tenant: str) -> str:
        """The floor tier of the template the tenant is scored with (a merge source's tier)."""
        return erasure.rules_of(self.store, tenant).tiers[0].name

    async def _publish(self, records: list[OutRecord]) -> None:
        if not records:
            return
        # send_all only enqueues into the producer's buffer; Faust flushes the producer before
        # it commits the batch's offsets, so no per-record wait is needed (at-least-once); a retry
        # after a partial enqueue republishes records, which consumers dedupe by sequence
        await self._retrying("kafka", lambda: self.send_all(records))

    async def _retrying(
        self, what: str, call: Callable[[], Awaitable[Any]], *, forever: bool = False
    ) -> Any:
        """``call()`` retried through outages; any other failure raised as ``Failed``
        (``forever``: retried as well)."""
        return await retry_outages(
            what, call, on_outage=self._note_failure, retry_max=self.retry_max, forever=forever
        )

    def _recovered(self) -> None:
        self.failing_since = None
        self.streak.ended()
        self.last_success = time.monotonic()

    def _note_failure(self, what: str, exc: BaseException, delay: float) -> None:
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        if what == "redis":
            self.metrics.redis_errors.inc()
        log.warning(
            "%s call failed (%s); retrying in %.2fs",
            what,
            describe(exc),
            delay,
            exc_info=self.streak.traceback_of(exc),
            extra={"event": f"scorer.{what}_retry", "error": describe(exc)},
        )

    def stuck_for(self) -> float:
        """Seconds the current batch has been failing (0 when healthy)."""
        return 0.0 if self.failing_since is None else time.monotonic() - self.failing_since


def _encode(encoded: list[Encoded], k: int, outcome: ApplyOutcome) -> None:
    """Encode one outcome's record value in advance; a failure leaves it to ``_publish``, which
    logs it (a bug must not fail the Redis call, which would be retried forever)."""
    try:
        encoded[k] = encoded_change(outcome)
    except Exception:
        encoded[k] = MISSING
