"""Engagement per job (vacancy): which job an event names, and a (candidate, job) profile's state.

An event whose properties name a job (``jobId``, else ``job_id``: a non-empty string or an
integer) also scores into the (candidate, job) profile, with the candidate's formula, decay and
exactness (docs/scoring.md §6). Pure: no IO.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
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
    need (the read API reads the pillars from the stored profile). Runs once per event naming a
    job: the states are built as tuples (``tuple.__new__``, as ``JobState._make`` does)."""
    out: list[JobState] = []
    tier = _tiers_by_number(tuple(tier_names))
    for entry in entries:
        p = (entry.decode() if isinstance(entry, bytes) else entry).split("\x1f")
        kind = p[0]
        if kind == "D":
            fields: tuple[Any, ...] = (p[1], candidate_id, int(p[2]), None, 0.0, 1, None, 1, None)
        elif kind == "R":  # no state before it: the replayed record's previous values are none
            fields = (p[1], candidate_id, int(p[8]), float(p[2]), float(p[3]), int(p[9]),
                      tier(p[7]), None, None)  # fmt: skip
        else:
            fields = (p[1], candidate_id, int(p[8]), float(p[2]), float(p[3]), int(p[11]),
                      tier(p[7]), int(p[10]), tier(p[9]))  # fmt: skip
        out.append(_new_state(JobState, fields))
    return tuple(out)


_new_state = tuple.__new__


@lru_cache(maxsize=64)
def _tiers_by_number(tier_names: tuple[str, ...]) -> Callable[[str], str]:
    """A tier name by its Lua number's text, clamped to ``tier_names`` (0 and below: the first;
    past the last: the last)."""
    by_text = {str(k): name for k, name in enumerate(tier_names, start=1)}
    last = len(tier_names)

    def clamped(number: str) -> str:
        return tier_names[max(0, min(int(number), last) - 1)]

    def name(number: str) -> str:
        found = by_text.get(number)
        return found if found is not None else clamped(number)

    return name


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
