"""Score records for Kafka from store outcomes (pure): change records and coalesced snapshots."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from engagement.cloudevents import binary_headers, ce_type
from engagement.records import Cause, ScoreChange
from engagement.score_views import ApplyOutcome, Snapshot
from engagement.topics import candidate_key

SOURCE = "/engagement/scorer"


@dataclass(frozen=True)
class OutRecord:
    """One record to produce; ``value=None`` is a tombstone."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def score_records(
    outcomes: Sequence[ApplyOutcome],
    *,
    changes_topic: str,
    latest_topic: str,
) -> Iterator[OutRecord]:
    """Yield one change record per integer-score change, then one snapshot per touched candidate.

    Snapshots are coalesced per candidate (the highest sequence of the batch wins); an anonymous
    profile folded into a known candidate gets a tombstone on the latest topic.
    """
    latest: dict[str, ScoreChange] = {}
    folded: set[str] = set()
    for outcome in outcomes:
        change = score_change(outcome)
        if change is None:
            continue
        if outcome.score_changed:
            yield record(changes_topic, change, "score.changed")
        key = candidate_key(change.tenantId, change.candidateId)
        seen = latest.get(key)
        if seen is None or change.sequence >= seen.sequence:
            latest[key] = change
        if outcome.outcome == "merged" and outcome.merged_from:
            folded.add(candidate_key(outcome.tenant_id, outcome.merged_from))
    for change in latest.values():
        yield record(latest_topic, change, "score.latest")
    for key in sorted(folded - latest.keys()):
        yield OutRecord(latest_topic, key.encode(), None, [])


def score_change(outcome: ApplyOutcome) -> ScoreChange | None:
    """The ``ScoreChange`` value of an outcome with a state (None for unscored / conflicts)."""
    before, after = outcome.before, outcome.after
    if after is None or after.sequence == 0 or after.as_of is None:
        return None
    return ScoreChange(
        tenantId=outcome.tenant_id,
        candidateId=outcome.candidate_id,
        score=after.score,
        previousScore=before.score if before is not None else None,
        tier=after.tier,
        previousTier=before.tier if before is not None else None,
        raw=after.raw,
        pillars=dict(after.pillars),
        channels=dict(after.channels),
        sequence=after.sequence,
        asOf=_time(after),
        rulesVersion=after.rules_version or outcome.rules_version,
        cause=_cause(outcome),
    )


def record(topic: str, change: ScoreChange, kind: str) -> OutRecord:
    """A score record with its key and CloudEvents headers (``ce_sequence`` = the sequence)."""
    key = candidate_key(change.tenantId, change.candidateId)
    prefix = "" if kind == "score.changed" else "latest:"
    headers = binary_headers(
        event_id=f"{prefix}{key}:{change.sequence}",
        source=SOURCE,
        type_=ce_type(kind),
        time=change.asOf,
        subject=key,
        extra={"ce_sequence": str(change.sequence)},
    )
    return OutRecord(topic, key.encode(), encode(change), headers)


def encode(change: ScoreChange) -> bytes:
    """JSON bytes of a score record (camelCase, RFC 3339 times)."""
    return orjson.dumps(change.model_dump(mode="json"))


def _cause(outcome: ApplyOutcome) -> Cause:
    if outcome.outcome == "merged":
        return Cause(type="merge", messageId=outcome.message_id, event=outcome.event)
    return Cause(type="event", messageId=outcome.message_id, event=outcome.event)


def _time(snapshot: Snapshot) -> datetime:
    return datetime.fromtimestamp(snapshot.as_of or 0.0, UTC)
