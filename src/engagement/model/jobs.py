"""Engagement per job (vacancy): which job an event names, and a (candidate, job) profile's state.

An event whose properties name a job (``jobId``, else ``job_id``: a non-empty string or an
integer) also scores into the (candidate, job) profile, with the candidate's formula, decay and
exactness (docs/scoring.md §6). Pure: no IO.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from engagement.model.records import Interaction

JOB_FIELDS = ("jobId", "job_id")
MAX_JOB_ID_LENGTH = 128
JOBS_KEPT = 20  # job profiles per candidate (the weakest is dropped past it)


def job_of(interaction: Interaction) -> str | None:
    """The job an interaction names, or None (no job field, or not a usable job id)."""
    properties = interaction.properties
    if not properties:
        return None
    return job_id(properties)


def job_id(properties: Mapping[str, Any]) -> str | None:
    """``properties.jobId``, else ``properties.job_id``, as text; None when neither holds an id:
    a non-empty printable string of at most MAX_JOB_ID_LENGTH characters, or an integer."""
    for name in JOB_FIELDS:
        value = properties.get(name)
        if value is None:
            continue
        if type(value) is int:
            return str(value)
        if type(value) is str and 0 < len(value) <= MAX_JOB_ID_LENGTH and value.isprintable():
            return value
        return None
    return None


class JobState(NamedTuple):
    """A (candidate, job) profile right after a change, at instant ``as_of`` (its latest event
    time), or its removal from the job (``tier`` None: dropped as the candidate's weakest job, or
    moved into another candidate by an identity merge). ``sequence`` is the candidate's sequence
    of the change, so a job's states of one candidate are ordered like the candidate's. The
    current state a replayed event found has no previous values (``previous_score`` None)."""

    job_id: str
    candidate_id: str
    sequence: int
    as_of: float | None = None
    raw: float = 0.0
    score: int = 1
    tier: str | None = None
    previous_score: int | None = 1
    previous_tier: str | None = None

    @property
    def removed(self) -> bool:
        """True when the candidate left the job (dropped, or merged into another candidate)."""
        return self.tier is None


def parse_job_entries(
    entries: Iterable[bytes | str], candidate_id: str, tier_names: Sequence[str]
) -> tuple[JobState, ...]:
    """Decode the job entries of a store script's reply (lua/job_profile.lua ``job_entries``):
    ``U␟job␟t␟r␟e␟a␟i␟g␟s␟tier before␟score before␟score`` for a changed job, ``D␟job␟seq`` for
    one the candidate left, ``R␟job␟t␟r␟e␟a␟i␟g␟s␟score`` for a job's current state a replay found
    (␟ = \\x1f; tiers 1-based into ``tier_names``, the job tiers, clamped to them). The pillar
    sums are not decoded: a job state carries what its change record and the job's tier sets
    need (the read API reads the pillars from the stored profile)."""
    out: list[JobState] = []
    names = [tier_names[0], *tier_names, tier_names[-1]]  # Lua's 0 and past the last: clamped
    top = len(names) - 1
    for entry in entries:
        parts = (entry.decode() if isinstance(entry, bytes) else entry).split("\x1f")
        kind, job = parts[0], parts[1]
        if kind == "D":
            out.append(JobState(job, candidate_id, int(parts[2])))
            continue
        tier = names[max(0, min(int(parts[7]), top))]
        state: tuple[float, float, int, str, int | None, str | None]
        if kind == "R":  # no state before it: the replayed record's previous values are none
            state = (float(parts[2]), float(parts[3]), int(parts[9]), tier, None, None)
        else:
            before = names[max(0, min(int(parts[9]), top))]
            state = (float(parts[2]), float(parts[3]), int(parts[11]), tier, int(parts[10]), before)
        out.append(JobState(job, candidate_id, int(parts[8]), *state))
    return tuple(out)


@dataclass(frozen=True)
class JobView:
    """One (candidate, job) profile as the read API shows it, decayed to ``as_of``."""

    job_id: str
    score: int
    tier: str
    raw: float
    pillars: Mapping[str, float]
    last_event_at: float

    def as_dict(self) -> dict[str, Any]:
        """camelCase JSON shape of one entry of ``GET /v1/candidates/{id}/jobs``."""
        return {
            "jobId": self.job_id,
            "score": self.score,
            "tier": self.tier,
            "raw": self.raw,
            "pillars": dict(self.pillars),
            "lastEventAt": iso(self.last_event_at),
        }


@dataclass(frozen=True)
class CandidateJobs:
    """The jobs a candidate engages with, strongest first, valued at ``as_of``."""

    tenant_id: str
    candidate_id: str
    jobs: tuple[JobView, ...]
    as_of: float

    def as_dict(self) -> dict[str, Any]:
        """camelCase JSON shape of ``GET /v1/candidates/{id}/jobs``."""
        return {
            "candidateId": self.candidate_id,
            "jobs": [job.as_dict() for job in self.jobs],
            "asOf": iso(self.as_of),
        }


def iso(t: float) -> str:
    """ISO 8601 UTC of an epoch instant."""
    return datetime.fromtimestamp(t, UTC).isoformat()


@dataclass(frozen=True)
class JobSummary:
    """One job of a tenant: its candidates per job tier now, and its latest event."""

    job_id: str
    last_event_at: float
    candidates: Mapping[str, int]

    def as_dict(self) -> dict[str, Any]:
        """camelCase JSON shape of one entry of ``GET /v1/jobs``."""
        return {
            "jobId": self.job_id,
            "candidates": dict(self.candidates),
            "total": sum(self.candidates.values()),
            "lastEventAt": iso(self.last_event_at),
        }


@dataclass(frozen=True)
class JobsPage:
    """A tenant's jobs, most recently engaged first; pass ``next_cursor`` for the next page."""

    jobs: tuple[JobSummary, ...]
    next_cursor: str | None
    as_of: float

    def as_dict(self) -> dict[str, Any]:
        """camelCase JSON shape of ``GET /v1/jobs``."""
        return {
            "jobs": [job.as_dict() for job in self.jobs],
            "nextCursor": self.next_cursor,
            "asOf": iso(self.as_of),
        }
