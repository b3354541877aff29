"""Wire records on the Kafka topics (docs/design.md §3). Field names are a contract: camelCase, never renamed.

``Interaction`` is the value of ``engagement.interactions.v1``: the Segment envelope as ingest
normalised it; ``ErasureRequest`` is the other value there (a ``DELETE`` of the candidate, in its
partition). ``ScoreChange`` is the value of ``engagement.scores.changed.v1`` and of
``engagement.scores.latest.v1``. ``CandidateAlert`` and ``JobAlert`` are the values of
``engagement.candidate-alerts.v1``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

PILLARS = ("entrance", "activity", "interaction")
Pillar = Literal["entrance", "activity", "interaction"]
EventType = Literal["track", "page", "screen", "identify", "alias", "group"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)


class Interaction(_Record):
    """One normalised interaction as ingest wrote it (unknown envelope fields are kept)."""

    type: EventType
    messageId: str
    tenantId: str
    sourceId: str
    channel: str
    receivedAt: datetime
    timestamp: datetime = Field(
        description="Corrected event time, never later than receivedAt + 23h"
    )
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None
    userId: str | None = None
    anonymousId: str | None = None
    previousId: str | None = None
    event: str | None = None
    name: str | None = None
    groupId: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)


class ErasureRequest(_Record):
    """A candidate's erasure on the interactions topic, keyed and partitioned like its events.

    ``DELETE /v1/candidates/{id}`` wipes Redis at once and writes one per erased id; the scorer
    erases the id again when it reaches it, after every event before it in the partition (those
    in flight during the DELETE), and publishes the erasure's records after theirs.
    """

    type: Literal["erasure"]
    tenantId: str
    candidateId: str
    sequence: int = Field(ge=1, description="The erasure record's sequence, at least")
    requestedAt: datetime
    idleBefore: datetime | None = Field(
        default=None,
        description="An expiry, not a DELETE: erase only an anonymous candidate whose latest event "
        "is still before this instant (one that came back is kept)",
    )


class Cause(_Record):
    """Why a score record was written: an interaction, or a merge / erasure. ``mergedInto``:
    only on the record of a merge's source, the candidate it was folded into."""

    messageId: str | None = None
    event: str | None = None
    type: Literal["event", "merge", "erasure"] = "event"
    mergedInto: str | None = Field(default=None, exclude_if=lambda into: into is None)


class JobChange(_Record):
    """A (candidate, job) profile after a change (docs/scoring.md §6), carried by the change
    record of that change; ``tier`` None: the candidate left the job (dropped as its weakest
    job, or merged into another candidate, whose id the record names)."""

    jobId: str
    candidateId: str
    score: int = Field(ge=1, le=100)
    previousScore: int | None = Field(default=None, ge=1, le=100)
    tier: str | None
    previousTier: str | None = None
    raw: float
    sequence: int = Field(ge=0, description="The candidate's sequence of the change")
    asOf: datetime | None = Field(default=None, description="The job profile's reference time")


class ScoreChange(_Record):
    """A candidate's score after one change (and, on the latest topic, the current snapshot)."""

    tenantId: str
    candidateId: str
    score: int = Field(ge=1, le=100)
    previousScore: int | None = Field(default=None, ge=1, le=100)
    tier: str
    previousTier: str | None = None
    raw: float
    pillars: dict[str, float]
    channels: dict[str, float]
    sequence: int = Field(ge=0)
    asOf: datetime
    rulesVersion: str
    cause: Cause
    # only on change records whose change moved (candidate, job) profiles; absent otherwise
    jobs: tuple[JobChange, ...] = Field(default=(), exclude_if=lambda jobs: not jobs)


AlertType = Literal["candidate.hot", "candidate.cooled", "candidate.tier_changed"]
JobAlertType = Literal["candidate.job_hot", "candidate.job_cooled"]


class CandidateAlert(_Record):
    """One tier crossing. ``id`` is deterministic (candidate + sequence + tier) so replays dedupe."""

    id: str
    type: AlertType
    tenantId: str
    candidateId: str
    tier: str
    previousTier: str
    score: int
    thresholds: dict[str, Any]
    sequence: int
    time: datetime
    cause: dict[str, Any]


class JobAlert(_Record):
    """One crossing of a (candidate, job) profile into or out of the alert tier; ``id`` is
    deterministic (candidate + job + sequence + tier)."""

    id: str
    type: JobAlertType
    tenantId: str
    candidateId: str
    jobId: str
    tier: str
    previousTier: str
    score: int
    thresholds: dict[str, Any]
    sequence: int
    time: datetime
    cause: dict[str, Any]


Alert = CandidateAlert | JobAlert


def alert_of(data: dict[str, Any]) -> Alert:
    """The alert record of its JSON fields (a job's when they name a job)."""
    return JobAlert.model_validate(data) if "jobId" in data else CandidateAlert.model_validate(data)


_UTC_TEXT = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


def format_time(moment: datetime) -> str:
    """Return RFC 3339 UTC with milliseconds and a ``Z`` suffix (naive values are taken as UTC)."""
    if moment.tzinfo is not None and moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # orjson renders `"YYYY-MM-DDTHH:MM:SS[.ffffff]Z"` several times faster than strftime or
    # isoformat (this runs a few times per ingested event); keeping 3 of 6 digits truncates.
    text = orjson.dumps(moment, option=_UTC_TEXT).decode()
    return text[1:24] + "Z" if moment.microsecond else text[1:20] + ".000Z"
