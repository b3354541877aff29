"""Tier crossings per (candidate, job) (docs/alerts.md "Alerts per job"). Pure.

A (candidate, job) profile is decided exactly as a candidate is (``engagement.model.alerts``),
under the job tiers (``job_rules``): the job entries of the score records (``ScoreChange.jobs``)
are folded in batch order per (candidate, job), each newest one then decayed to now, and a
(candidate, job) the sweep finds in a job's tier sets is decided from its job profile as the store
holds it (``engagement.model.decisions.decide_swept``, then ``job_alerts``). The notifier remembers per
(candidate, job) the tier it last announced and the sequence it announced it at (``Notified``),
with the same compare-and-set rules, so replays decide nothing twice. Only moves into and out of
the alert tier are announced (``candidate.job_hot`` / ``candidate.job_cooled``); the other moves
are remembered, not announced. Alert ids hash (tenant, candidate, job, sequence, tier).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from engagement.model.alerts import (
    Notified,
    decayed_state,
    decide_change,
    decide_decay,
    tier_level,
)
from engagement.model.records import (
    CandidateAlert,
    Cause,
    JobAlert,
    JobAlertType,
    JobChange,
    ScoreChange,
)
from engagement.model.rules import Rules
from engagement.model.scoring import crossing_time, epoch, rank_key

JobKey = tuple[str, str]  # (``tenant:candidate``, job id)

JOB_TYPES: dict[str, JobAlertType] = {
    "candidate.hot": "candidate.job_hot",
    "candidate.cooled": "candidate.job_cooled",
}
LEFT = "left"  # the cause type of a crossing down because the candidate left the job

_JOB_RULES: dict[int, tuple[Rules, Rules]] = {}


def job_rules(rules: Rules) -> Rules:
    """``rules`` with the job tiers as its tiers (the same when the template sets none), so the
    candidate's decisions decide a job's."""
    if rules.job_tiers is None:
        return rules
    cached = _JOB_RULES.get(id(rules))
    if cached is None or cached[0] is not rules:
        data = rules.model_dump()
        data.update(tiers=data["job_tiers"], job_tiers=None)
        cached = (rules, Rules.model_validate(data))
        _JOB_RULES[id(rules)] = cached
    return cached[1]


def job_alert_id(tenant_id: str, candidate_id: str, job_id: str, sequence: int, tier: str) -> str:
    """The deterministic id of a job alert; never one of a candidate alert (another text)."""
    text = "\x1f".join(("job", tenant_id, candidate_id, job_id, str(sequence), tier))
    return "alrt_" + hashlib.sha256(text.encode()).hexdigest()[:32]


def as_job_alert(
    alert: CandidateAlert, job_id: str, cause: dict[str, object] | None = None
) -> JobAlert | None:
    """The job alert of a crossing decided for a job's state (None for a move that is neither
    into nor out of the alert tier)."""
    kind = JOB_TYPES.get(alert.type)
    if kind is None:
        return None
    return JobAlert(
        id=job_alert_id(alert.tenantId, alert.candidateId, job_id, alert.sequence, alert.tier),
        type=kind,
        tenantId=alert.tenantId,
        candidateId=alert.candidateId,
        jobId=job_id,
        tier=alert.tier,
        previousTier=alert.previousTier,
        score=alert.score,
        thresholds=alert.thresholds,
        sequence=alert.sequence,
        time=alert.time,
        cause=alert.cause if cause is None else cause,
    )


def job_alerts(alerts: Iterable[CandidateAlert], job_id: str) -> list[JobAlert]:
    """The job alerts of the crossings decided for one job's state."""
    return [a for a in (as_job_alert(alert, job_id) for alert in alerts) if a is not None]


def entry_change(change: ScoreChange, entry: JobChange, rules: Rules) -> ScoreChange:
    """A job entry of ``change`` as the change of a candidate-shaped state (``rules``: the job
    rules). A candidate leaving the job falls to the floor tier at the record's instant."""
    left = entry.tier is None
    return ScoreChange(
        tenantId=change.tenantId,
        candidateId=entry.candidateId,
        score=1 if left else entry.score,
        previousScore=entry.previousScore,
        tier=rules.tiers[0].name if entry.tier is None else entry.tier,
        previousTier=entry.previousTier,
        raw=0.0 if left else entry.raw,
        pillars={},
        channels={},
        sequence=entry.sequence,
        asOf=entry.asOf or change.asOf,
        rulesVersion=change.rulesVersion,
        cause=change.cause,
    )


@dataclass(frozen=True)
class JobFold:
    """A batch's job decisions: the alerts, the final state per (candidate, job), and the
    candidates erased (their job states go before the final states are written)."""

    alerts: tuple[JobAlert, ...]
    states: dict[JobKey, Notified]
    erased: tuple[str, ...]


def fold_job_changes(
    changes: list[ScoreChange],
    known: Mapping[JobKey, Notified | None],
    rules: Rules,
    now: datetime,
) -> JobFold:
    """Decide a batch's job entries in order (``rules``: the job rules), then the decay to
    ``now`` of each (candidate, job) from its newest entry, as ``fold_changes`` does a
    candidate's; an erasure record forgets the candidate's job states."""
    alerts: list[JobAlert] = []
    final: dict[JobKey, Notified] = {}
    current: dict[JobKey, Notified | None] = dict(known)
    newest: dict[JobKey, ScoreChange] = {}
    erased: list[str] = []
    for change in changes:
        if change.cause.type == "erasure":
            erased.append(_erase(f"{change.tenantId}:{change.candidateId}", current, final, newest))
            continue
        for entry in change.jobs:
            key = (f"{change.tenantId}:{entry.candidateId}", entry.jobId)
            job = entry_change(change, entry, rules)
            if key not in newest or job.sequence >= newest[key].sequence:
                newest[key] = job
            decision = decide_change(job, current.get(key), rules)
            cause = _left(change.cause) if entry.tier is None else None
            alerts += [
                a for a in (as_job_alert(x, entry.jobId, cause) for x in decision.alerts) if a
            ]
            if decision.state is not None:
                current[key] = final[key] = decision.state
    for key, job in newest.items():
        state = current.get(key)
        found = None if state is None else decayed_state(job, state, rules, now)
        if state is None or found is None:
            continue
        decision = decide_decay(found, state, rules, now)
        alerts += job_alerts(decision.alerts, key[1])
        if decision.state is not None:
            current[key] = final[key] = decision.state
    return JobFold(tuple(alerts), final, tuple(erased))


def _erase(
    candidate_key: str,
    current: dict[JobKey, Notified | None],
    final: dict[JobKey, Notified],
    newest: dict[JobKey, ScoreChange],
) -> str:
    """Forget every job state of an erased candidate decided so far; its key."""
    for mapping in (current, final, newest):
        for key in [k for k in mapping if k[0] == candidate_key]:
            del mapping[key]
    return candidate_key


def _left(cause: Cause) -> dict[str, object]:
    """The cause of a crossing down because the candidate left the job: dropped as its weakest
    job (``by`` an event) or merged into another candidate (``by`` a merge)."""
    return {"type": LEFT, "by": cause.model_dump(mode="json", exclude_none=True)}


def sweep_deadline(entry: JobChange, rules: Rules) -> float | None:
    """Until when (epoch s) the decay sweep must look at the entry's job for this candidate: the
    instant its score falls below the lowest exit above the floor (None: at the floor, or left).
    """
    if entry.tier is None or entry.asOf is None or tier_level(rules, entry.tier) == 0:
        return None
    h = rules.half_life_seconds
    rank = rank_key(entry.raw, epoch(entry.asOf), h)
    return crossing_time(rank, rules.tiers[1].exit, rules.score_scale, h)
