"""Score records for Kafka from store outcomes (pure): change records and coalesced snapshots.

Values are the JSON of ``engagement.model.records.ScoreChange`` (same fields, same order), built as
plain dicts and encoded once per state: this runs for every scored event. The same record built
from a ``ScoreChange`` (ingest's erasure record) is ``engagement.kafka.score_records.record``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from engagement.kafka.cloudevents import ce_type
from engagement.kafka.score_records import SOURCE, OutRecord
from engagement.kafka.topics import candidate_key
from engagement.model.jobs import JobState
from engagement.model.score_views import ApplyOutcome, Previous, Snapshot

_SPEC = ("ce_specversion", b"1.0")
_SOURCE = ("ce_source", SOURCE.encode())
_CHANGED = ("ce_type", ce_type("score.changed").encode())
_LATEST = ("ce_type", ce_type("score.latest").encode())
_JSON = ("content-type", b"application/json")


class EncodedChange(NamedTuple):
    """One candidate state as a score record value and headers, encoded once for both topics."""

    key: str
    sequence: int
    value: bytes
    encoded_key: bytes
    ce_id: bytes  # ``key:sequence``
    tail: tuple[tuple[str, bytes], ...]  # the headers after ``ce_type``, the same on both topics


class Missing(enum.Enum):
    """Marks an outcome whose record value was not computed in advance."""

    MISSING = enum.auto()


MISSING = Missing.MISSING
_FOLDED = ("merged", "duplicate")  # the outcomes of a merge that folded its source (or had)
_NOTHING = {"entrance": 0.0, "activity": 0.0, "interaction": 0.0}
Encoded = EncodedChange | Missing | None  # an outcome's record value: done, to do, or none


def score_records(
    outcomes: Sequence[ApplyOutcome],
    *,
    changes_topic: str,
    latest_topic: str,
    floor_of: Callable[[str], str],
    encoded: Sequence[Encoded] | None = None,
) -> Iterator[OutRecord]:
    """Yield the change records, then one snapshot per touched candidate, then tombstones.

    A change record per integer-score change, and per change that moved (candidate, job)
    profiles (with its ``jobs`` field: ``with_jobs``); for a candidate with duplicates in the batch
    (a replay: the original records may never have reached Kafka, whatever came after them in
    this batch) and either no integer-score change or job states found by its duplicates, one
    change record of its newest state in the batch, with its sequence and no previous values
    (consumers dedupe by sequence), carrying the current state of each job its duplicates named
    (the notifier's compare-and-set per (candidate, job) drops what it announced already).
    Snapshots are coalesced per candidate (the highest sequence of the batch wins); an anonymous
    profile folded into a known candidate gets a tombstone on the latest topic. A merge's source
    gets the change record of its state after the merge (``merged_away``), on the merge and on
    every replay of it (the same record: consumers dedupe by sequence). ``floor_of``: the floor
    tier's name of a tenant's template. ``encoded``: ``encoded_change`` of each outcome computed
    in advance (``MISSING``: compute it here).
    """
    tally = _Tally()
    for k, outcome in enumerate(outcomes):
        if outcome.merged_from is not None and outcome.outcome in _FOLDED:
            left = merged_away(outcome, floor_of(outcome.tenant_id))
            if left is not None:
                yield _record(changes_topic, left, changed=True)
        change = MISSING if encoded is None else encoded[k]
        if change is MISSING:
            change = encoded_change(outcome)
        if change is None:
            continue
        tally.add(outcome, change)
        if outcome.jobs:  # (candidate, job) profiles moved: the notifier's job alerts need them
            if outcome.outcome != "duplicate":  # a duplicate's go on the replay's record
                yield _record(changes_topic, with_jobs(change, outcome.jobs), changed=True)
        elif outcome.score_changed:
            yield _record(changes_topic, change, changed=True)
    yield from tally.closing(changes_topic, latest_topic)


@dataclass
class _Tally:
    """What a batch leaves per candidate (keyed ``tenant:candidate``) for its closing records."""

    latest: dict[str, EncodedChange] = field(default_factory=dict)
    newest: dict[str, ApplyOutcome] = field(default_factory=dict)  # the outcome of ``latest``
    changed: set[str] = field(default_factory=set)
    replayed: dict[str, None] = field(default_factory=dict)  # had a duplicate, in order
    replayed_jobs: dict[str, dict[tuple[str, str], JobState]] = field(default_factory=dict)
    folded: set[str] = field(default_factory=set)

    def add(self, outcome: ApplyOutcome, change: EncodedChange) -> None:
        if outcome.outcome == "duplicate":
            self.replayed[change.key] = None
            if outcome.jobs:  # the newest state per (candidate, job), for the replay's record
                found = self.replayed_jobs.setdefault(change.key, {})
                for state in outcome.jobs:
                    known = found.get((state.candidate_id, state.job_id))
                    if known is None or state.sequence >= known.sequence:
                        found[(state.candidate_id, state.job_id)] = state
        elif outcome.score_changed or outcome.jobs:  # a change record of a newer state goes out
            self.changed.add(change.key)
        seen = self.latest.get(change.key)
        if seen is None or change.sequence >= seen.sequence:
            self.latest[change.key] = change
            self.newest[change.key] = outcome
        if outcome.outcome in _FOLDED and outcome.merged_from:  # also again on a replay
            self.folded.add(candidate_key(outcome.tenant_id, outcome.merged_from))

    def closing(self, changes_topic: str, latest_topic: str) -> Iterator[OutRecord]:
        """A replay's newest state (with the job states its duplicates found), the snapshots,
        the tombstones of profiles folded away."""
        for key in self.replayed:
            jobs = self.replayed_jobs.get(key)
            if jobs:
                replay = with_jobs(_replay(self.newest[key]), tuple(jobs.values()))
                yield _record(changes_topic, replay, changed=True)
            elif key not in self.changed:
                yield _record(changes_topic, _replay(self.newest[key]), changed=True)
        folded = self.folded
        for change in self.latest.values():
            if change.key not in folded:  # a source's events before its merge in the batch
                yield _record(latest_topic, change, changed=False)
        for key in sorted(folded):
            yield OutRecord(latest_topic, key.encode(), None, [])


def encoded_change(outcome: ApplyOutcome, *, replay: bool = False) -> EncodedChange | None:
    """The encoded ``ScoreChange`` of an outcome with a state (None for unscored / conflicts)."""
    after = outcome.after
    if after is None or after.sequence == 0 or after.as_of is None:
        return None
    # asOf once as JSON text: embedded as is in the value, and its milliseconds are ce_time
    stamp = _stamp(after.as_of)  # kept for the job entries' asOf, mostly the same instant
    before = outcome.before
    # no previous values in a re-published record, nor for a new candidate (nothing stored before)
    previous = None if replay or before is None or before.sequence == 0 else before
    value = _score_change(outcome, after, previous, stamp)
    key = candidate_key(outcome.tenant_id, outcome.candidate_id)
    encoded_key = key.encode()
    sequence = str(after.sequence).encode()
    tail = (
        ("ce_time", _ce_time(stamp)),
        ("ce_subject", encoded_key),
        ("ce_sequence", sequence),
        _JSON,
    )
    encoded = orjson.dumps(value, default=dict)
    return EncodedChange(
        key, after.sequence, encoded, encoded_key, encoded_key + b":" + sequence, tail
    )


def merged_away(outcome: ApplyOutcome, floor: str) -> EncodedChange | None:
    """The encoded ``ScoreChange`` of a merge's source after the merge (None when it had no
    scored state): its sums moved into the candidate, so score 1, the ``floor`` tier and
    nothing left, at the source's sequence of the merge and the instant of the merge's record;
    cause ``merge`` naming the candidate (``mergedInto``). No previous values: a consumer that
    announced the source's tier ends it from what it announced (the record is written from the
    candidate's partition, and may overtake the source's own records before the merge)."""
    source, after = outcome.merged_source, outcome.after
    if source is None or source.sequence == 0 or source.as_of is None or not outcome.merged_from:
        return None
    as_of = source.as_of if after is None or after.as_of is None else after.as_of
    stamp = _stamp(as_of)
    value = {
        "tenantId": outcome.tenant_id,
        "candidateId": outcome.merged_from,
        "score": 1,
        "previousScore": None,
        "tier": floor,
        "previousTier": None,
        "raw": 0.0,
        "pillars": _NOTHING,
        "channels": {},
        "sequence": source.sequence,
        "asOf": orjson.Fragment(stamp),
        "rulesVersion": source.rules_version or outcome.rules_version,
        "cause": {  # a merge also when this is its replay (a duplicate)
            "messageId": outcome.message_id,
            "event": outcome.event,
            "type": "merge",
            "mergedInto": outcome.candidate_id,
        },
    }
    return _encoded(outcome.tenant_id, outcome.merged_from, source.sequence, value, stamp)


def _stamp(as_of: float) -> bytes:
    """An instant as orjson's JSON text (``"YYYY-MM-DDTHH:MM:SS[.ffffff]Z"``). The last one is
    kept: a job's profile mostly has its candidate's instant (the event's), formatted just
    before for the candidate's record."""
    global _last_stamp
    last = _last_stamp  # one tuple, replaced whole: never a value beside another's text
    if as_of == last[0]:
        return last[1]
    stamp = orjson.dumps(datetime.fromtimestamp(as_of, UTC), option=orjson.OPT_UTC_Z)
    _last_stamp = (as_of, stamp)
    return stamp


_last_stamp: tuple[float | None, bytes] = (None, b"")


def _encoded(
    tenant: str, candidate: str, sequence: int, value: dict[str, Any], stamp: bytes
) -> EncodedChange:
    """A record value and its headers (``stamp``: its ``asOf`` as JSON text), as
    ``encoded_change`` builds them inline (it runs for every scored event: a call less)."""
    key = candidate_key(tenant, candidate)
    encoded_key = key.encode()
    text = str(sequence).encode()
    tail = (
        ("ce_time", _ce_time(stamp)),
        ("ce_subject", encoded_key),
        ("ce_sequence", text),
        _JSON,
    )
    encoded = orjson.dumps(value, default=dict)
    return EncodedChange(key, sequence, encoded, encoded_key, encoded_key + b":" + text, tail)


def with_jobs(change: EncodedChange, jobs: Sequence[JobState]) -> EncodedChange:
    """The change record of ``change`` with its ``jobs`` field (``JobChange`` entries, in the
    order given), which the latest topic's snapshot does not carry."""
    entries = orjson.dumps([_job_change(state) for state in jobs])
    value = change.value[:-1] + b',"jobs":' + entries + b"}"
    return EncodedChange(
        change.key, change.sequence, value, change.encoded_key, change.ce_id, change.tail
    )


def _job_change(state: JobState) -> dict[str, Any]:
    """One ``JobChange`` of a job state (fields in model order)."""
    as_of = state.as_of
    return {
        "jobId": state.job_id,
        "candidateId": state.candidate_id,
        "score": state.score,
        "previousScore": None if state.removed else state.previous_score,
        "tier": state.tier,
        "previousTier": state.previous_tier,
        "raw": state.raw,
        "sequence": state.sequence,
        "asOf": None if as_of is None else orjson.Fragment(_stamp(as_of)),
    }


def _ce_time(stamp: bytes) -> bytes:
    """``format_time`` of an instant from its orjson text (``"YYYY-MM-DDTHH:MM:SS[.ffffff]Z"``)."""
    return stamp[1:24] + b"Z" if len(stamp) > 22 else stamp[1:20] + b".000Z"


def _score_change(
    outcome: ApplyOutcome, after: Snapshot, previous: Previous | None, as_of: bytes
) -> dict[str, Any]:
    return {
        "tenantId": outcome.tenant_id,
        "candidateId": outcome.candidate_id,
        "score": after.score,
        "previousScore": previous.score if previous is not None else None,
        "tier": after.tier,
        "previousTier": previous.tier if previous is not None else None,
        "raw": after.raw,
        "pillars": after.pillars,  # a dict; any other Mapping goes through default=dict
        "channels": after.channels,
        "sequence": after.sequence,
        "asOf": orjson.Fragment(as_of),
        "rulesVersion": after.rules_version or outcome.rules_version,
        "cause": _cause(outcome),
    }


def _replay(outcome: ApplyOutcome) -> EncodedChange:
    replay = encoded_change(outcome, replay=True)
    assert replay is not None  # only called for outcomes with a state
    return replay


def _record(topic: str, change: EncodedChange, *, changed: bool) -> OutRecord:
    """A score record with CloudEvents headers (``ce_sequence`` = the sequence)."""
    if changed:
        headers = [_SPEC, ("ce_id", change.ce_id), _SOURCE, _CHANGED, *change.tail]
    else:
        headers = [_SPEC, ("ce_id", b"latest:" + change.ce_id), _SOURCE, _LATEST, *change.tail]
    return OutRecord(topic, change.encoded_key, change.value, headers)


def _cause(outcome: ApplyOutcome) -> dict[str, Any]:
    kind = "merge" if outcome.outcome == "merged" else "event"
    return {"messageId": outcome.message_id, "event": outcome.event, "type": kind}
