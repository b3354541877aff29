"""Score records' job entries → job alerts, exactly once (docs/alerts.md "Alerts per job").

Gather the (candidate, job) states the batch's entries name (first publishing what a stopped
notifier left in their outboxes), decide (pure: ``engagement.model.job_alerts``), have the decay
sweep look at each job a candidate now stands above the floor in (before any alert of it is out,
so no decay crossing after it escapes the sweep), forget the job states of erased candidates,
then announce through the outbox (``services.notifier.announce.announce_jobs``).

Invariant: every (candidate, job) the notifier holds above the floor either has a job profile
whose tier it matches (decayed to now: the sweep, ``services.notifier.job_sweep``, watches the
job until that profile falls below the lowest exit), or gets its ``candidate.job_cooled`` from
the first record of the candidate after it left the job. A candidate leaves a job only as its
weakest past ``SCORER_JOBS_PER_CANDIDATE`` (a ``D`` entry), by a merge into another candidate (the
source's leaving entries) or by erasure (the erasure record forgets its job states). Each is on
a score record, also when the records of the change were lost: the scorer logs each drop in the
candidate's slot with the drop itself (``P{T:C}:jl``, the newest ``SCORER_JOBS_PER_CANDIDATE``) and
its replay of the batch re-publishes the log (``engagement.store.job_store``), as a replayed merge
re-publishes the leaving; the compare-and-set per (candidate, job) drops what was announced.
(The log's bound is the one gap left: a candidate dropping more jobs than it keeps within the
records one crash loses.)
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, datetime

from engagement.model.alerts import tier_level
from engagement.model.job_alerts import JobKey, fold_job_changes, job_rules, sweep_deadline
from engagement.model.records import JobAlert, ScoreChange
from engagement.model.rules import Rules
from services.notifier.announce import DecidedJobs, announce_jobs, recover_jobs, settle_jobs
from services.notifier.job_state import JobNotifiedStore, LoadedJobs
from services.notifier.publisher import AlertPublisher


async def apply(
    changes: list[ScoreChange],
    *,
    state: JobNotifiedStore,
    publisher: AlertPublisher,
    rules_for: Callable[[str], Rules],
) -> list[JobAlert]:
    """Decide and announce the job crossings of a batch of score records (in batch order, each
    tenant under its template's job tiers); the job alerts published. A (candidate, job) whose
    state the sweep moved meanwhile is decided again (``settle_jobs``)."""
    keys = [(f"{c.tenantId}:{e.candidateId}", e.jobId) for c in changes for e in c.jobs]
    loaded = await state.load(keys)
    await recover_jobs(state, publisher, loaded.pending)
    decided, alerts, erased = _decide(changes, loaded, rules_for)
    await state.watch(_deadlines(changes, rules_for))
    await state.erase(erased)
    published, moved = await announce_jobs(state, publisher, decided, alerts, base=loaded.states)

    def again(loaded: LoadedJobs) -> tuple[DecidedJobs, list[JobAlert]]:
        decided, alerts, _ = _decide(_only(changes, loaded.states.keys()), loaded, rules_for)
        return decided, alerts

    if moved:
        published += (await settle_jobs(state, publisher, moved, again))[0]
    return published


def _decide(
    changes: list[ScoreChange], loaded: LoadedJobs, rules_for: Callable[[str], Rules]
) -> tuple[DecidedJobs, list[JobAlert], list[str]]:
    """The batch's job decisions from the loaded states (``fold_job_changes``, each tenant under
    its template's job tiers): the states with their levels, the alerts, the candidates erased."""
    now = datetime.now(UTC)
    alerts: list[JobAlert] = []
    decided: DecidedJobs = {}
    erased: list[str] = []
    for tenant, theirs in _by_tenant(changes).items():
        rules = job_rules(rules_for(tenant))
        fold = fold_job_changes(theirs, loaded.states, rules, now)
        alerts += fold.alerts
        decided |= {key: (s, tier_level(rules, s.tier)) for key, s in fold.states.items()}
        erased += fold.erased
    return decided, alerts, erased


def _only(changes: list[ScoreChange], keys: Collection[JobKey]) -> list[ScoreChange]:
    """The changes with only the job entries of ``keys`` (erasure records kept whole)."""
    return [
        c.model_copy(
            update={
                "jobs": [e for e in c.jobs if (f"{c.tenantId}:{e.candidateId}", e.jobId) in keys]
            }
        )
        for c in changes
    ]


def _deadlines(
    changes: list[ScoreChange], rules_for: Callable[[str], Rules]
) -> dict[tuple[str, str], float]:
    """The latest sweep deadline of each (tenant, job) of the batch."""
    deadlines: dict[tuple[str, str], float] = {}
    for tenant, theirs in _by_tenant(changes).items():
        _note_deadlines(deadlines, tenant, theirs, job_rules(rules_for(tenant)))
    return deadlines


def _note_deadlines(
    deadlines: dict[tuple[str, str], float], tenant: str, changes: list[ScoreChange], rules: Rules
) -> None:
    """Keep in ``deadlines`` the latest sweep deadline of each (tenant, job) of ``changes``."""
    for change in changes:
        for entry in change.jobs:
            deadline = sweep_deadline(entry, rules)
            key = (tenant, entry.jobId)
            if deadline is not None and deadline > deadlines.get(key, float("-inf")):
                deadlines[key] = deadline


def _by_tenant(changes: list[ScoreChange]) -> dict[str, list[ScoreChange]]:
    groups: dict[str, list[ScoreChange]] = {}
    for change in changes:
        groups.setdefault(change.tenantId, []).append(change)
    return groups
