"""Erasure: a person asks to be forgotten (``DELETE /v1/candidates/{id}``, docs/api.md).

One use case, run by the read API when the DELETE comes (``on_request``) and by the scorer when
it reaches the erasure request that DELETE put behind the person's events (``behind_events``).
Its invariants, each checked by the test named after it
(``tests/integration/engagement/test_erasure.py``):

1. **Nothing is scored after the DELETE** (``test_nothing_is_scored_after_the_delete``). Each id
   is fenced before any of its keys is deleted: the scorer withholds every event of a fenced id
   received up to the DELETE and still on its way (no score record, alert or webhook about the
   person). The fences: ``engagement.store.erasure_fence``.
2. **Every id goes** (``test_every_id_goes``): the candidate, each id merged into it directly or
   not, and each id identified through it lose every key and rank entry; an id merged in while
   the erasure runs is found by the wipe and erased too (``engagement.store.pending_erasure``).
3. **A retry completes it** (``test_a_retry_completes_it``). The ids and the last sequence are
   recorded before anything is deleted, and kept until Kafka acknowledged every record, so a
   retry after a failure at any step publishes the same records.
4. **Consumers see the erasure last** (``test_consumers_see_the_erasure_last``): its
   ``cause{type: erasure}`` record has a sequence past every score record of the candidate, and
   each id gets a tombstone on the latest topic (``engagement.kafka.erasure_records``).
5. **What slipped through is erased again** (``test_what_slipped_through_is_erased_again``). An
   erasure request per id goes on the interactions topic behind that id's events; the scorer,
   on reaching it, erases the id again (what an event scored before its batch saw the fence put
   back), publishes the records again behind that event's, and only then marks the fence
   reached. An expiry's request (``idleBefore``) erases only a candidate still idle.

Every step is idempotent. The callers choose how a step that fails is run again (``Step``): the
scorer retries outages where they happen, the read API answers 503 and the client repeats.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from engagement.kafka.erasure_records import INGEST_SOURCE, erasure_records, erasure_requests
from engagement.kafka.score_records import SOURCE as SCORER_SOURCE
from engagement.kafka.score_records import OutRecord
from engagement.model.records import ErasureRequest
from engagement.model.rules import Rules
from engagement.model.score_views import Erasure
from engagement.model.scoring import epoch
from engagement.store.erasure_fence import Fences, fence_id
from engagement.store.redis_store import ScoreStore
from engagement.store.templated_store import TemplatedStore

T = TypeVar("T")
Step = Callable[[str, Callable[[], Awaitable[T]]], Awaitable[T]]  # ("redis" | "kafka", call)
Publish = Callable[[Sequence[OutRecord]], Awaitable[Any]]  # returns once Kafka acknowledged


class ErasureTopics(NamedTuple):
    changes: str  # the erasure record
    latest: str  # the tombstones
    interactions: str  # the erasure requests, behind each id's events


@dataclass(frozen=True)
class Erased:
    """What the scorer's erasure did: the store's ``erasure``, and the fences the rest of its
    batch keeps to (the ids merged into the candidate by the events before the request)."""

    erasure: Erasure
    fences: Fences


async def _at_once(_what: str, call: Callable[[], Awaitable[T]]) -> T:
    return await call()


async def on_request(
    store: ScoreStore,
    tenant: str,
    candidate: str,
    *,
    now: datetime,
    publish: Publish,
    topics: ErasureTopics,
) -> Erasure:
    """The DELETE: fence the candidate (1) and, inside ``erase``, each id merged into it before
    its keys go; record them and the last sequence (3), wipe every id (2); publish the erasure
    record and tombstones (4) and a request per id behind its events (5); then forget the
    record of what was erased (3). Raises what a step raises; repeating the call completes it."""
    await store.raise_fences(tenant, [candidate], now)
    erasure = await store.erase(tenant, candidate, fence_at=now)
    sequence = erasure.last_sequence + 1
    records = erasure_records(
        erasure,
        rules_of(store, tenant),
        changes_topic=topics.changes,
        latest_topic=topics.latest,
        sequence=sequence,
        now=now,
    )
    records += erasure_requests(
        erasure,
        interactions_topic=topics.interactions,
        sequence=sequence,
        now=now,
        source=INGEST_SOURCE,
    )
    await publish(records)
    await store.erasure_published(erasure)
    return erasure


async def behind_events(
    store: ScoreStore,
    request: ErasureRequest,
    *,
    now: datetime,
    publish: Publish | None,
    topics: ErasureTopics,
    step: Step[Any] = _at_once,
) -> Erased | None:
    """The scorer at an erasure request in the id's partition (5): erase the id again, fencing
    the ids the events before the request merged into it (1, 2); publish its records again
    behind those events' (4) with requests for those ids (5); forget the record of what was
    erased (3); mark its fence reached. None: an expiry whose candidate came back (kept).

    ``publish`` None: a rebuild, which replays partitions out of step with each other and sends
    nothing. The candidate's fence, raised by the DELETE on the store it replaces, is raised
    again on the one it builds, as of the DELETE, so that events of the candidate before the
    DELETE still to come from other partitions (a merge folding it in) are withheld; the ids it
    merged are fenced as of then too (their requests are on the topic, ingest's)."""
    tenant, candidate, asked = request.tenantId, request.candidateId, request.requestedAt
    if request.idleBefore is not None:
        before = epoch(request.idleBefore)
        if not await step("redis", lambda: store.still_idle(tenant, candidate, before=before)):
            return None
    fence_at, fences = now, {}
    if publish is None:
        fence_at, fences = asked, {fence_id(tenant, candidate): asked.timestamp()}
        await step("redis", lambda: store.raise_fences(tenant, [candidate], asked))
    erasure: Erasure = await step(
        "redis", lambda: store.erase(tenant, candidate, fence_at=fence_at)
    )
    fences |= {fence_id(tenant, m): fence_at.timestamp() for m in erasure.merged_ids}
    if publish is not None:
        records = _again(store, request, erasure, now, topics)
        await step("kafka", lambda: publish(records))
    await step("redis", lambda: store.erasure_published(erasure))
    await step("redis", lambda: store.reach_fence(tenant, candidate, asked, now))
    return Erased(erasure, fences)


def rules_of(store: ScoreStore, tenant: str) -> Rules:
    """The template the tenant is scored with: its erasure record names that template's floor
    tier and version (a ``TemplatedStore`` knows each tenant's, a plain store has one)."""
    return store.rules_for(tenant) if isinstance(store, TemplatedStore) else store.rules


def _again(
    store: ScoreStore,
    request: ErasureRequest,
    erasure: Erasure,
    now: datetime,
    topics: ErasureTopics,
) -> list[OutRecord]:
    """The erasure's records once more, past any sequence the events before it reached, and a
    request for each id those events merged into the candidate (the others have ingest's)."""
    return erasure_records(
        erasure,
        rules_of(store, request.tenantId),
        changes_topic=topics.changes,
        latest_topic=topics.latest,
        sequence=max(request.sequence, erasure.last_sequence + 1),
        now=now,
    ) + erasure_requests(
        erasure,
        interactions_topic=topics.interactions,
        sequence=1,
        now=now,
        source=SCORER_SOURCE,
        merged_only=True,
    )
