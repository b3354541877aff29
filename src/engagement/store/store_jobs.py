"""The score store's unit of work: one interaction's job through ``ScoreStore.apply_batch``.

``plan`` turns an interaction into a job (an event to apply, or step 1 of an identity merge) or
None (nothing to score: ``unscored``); the rounds move a job through its stages, and
``outcome_of`` turns a settled job into its ``ApplyOutcome``. No IO.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from engagement.model.identity import candidate_of_ids
from engagement.model.jobs import JobState, job_of
from engagement.model.records import Interaction
from engagement.model.rules import Rules
from engagement.model.score_views import ApplyOutcome, Outcome, Previous, Snapshot
from engagement.model.scoring import ScoredEvent, event_points
from engagement.store.store_scripts import merge_source

Stage = Literal["apply", "take", "add", "release"]
OnOutcome = Callable[[int, ApplyOutcome], None]
MERGE_TYPES = ("identify", "alias")  # the interaction types that may merge two profiles


@dataclass(slots=True)
class Job:
    """One interaction on its way through the rounds."""

    index: int
    interaction: Interaction
    tenant: str
    candidate: str
    stage: Stage
    event: ScoredEvent | None = None
    source: str | None = None  # merges: the candidate folded into ``candidate``
    redirected_from: str | None = None
    hops: int = 0
    frozen: Sequence[str] = ()  # merge step 2 arguments
    source_state: Snapshot | None = None
    marked: bool = False  # step 1 of this job marked the source (only then may it release it)
    refusal: str | None = None  # why a marked source is released (a key of merge_store.REFUSALS)
    job_id: str | None = None  # the job an event names (engagement.model.jobs.job_of)
    source_jobs: tuple[str, ...] = ()  # merges: the jobs of the source's profiles (step 1)


def candidate_of(interaction: Interaction) -> str:
    """The candidate an interaction scores: its userId, else ``anon:<anonymousId>``."""
    return candidate_of_ids(interaction.userId, interaction.anonymousId)


def plan(index: int, interaction: Interaction, rules: Rules) -> Job | None:
    """The job of the ``index``-th interaction of a batch; None when nothing of it is scored."""
    tenant = interaction.tenantId
    if interaction.type in MERGE_TYPES and interaction.userId:
        source = merge_source(interaction)
        if source and source != interaction.userId:
            return Job(index, interaction, tenant, interaction.userId, "take", source=source)
        return None
    scored = event_points(interaction, rules)
    if scored is None:
        return None
    job = job_of(interaction) if interaction.properties else None  # most events name none
    return Job(index, interaction, tenant, candidate_of(interaction), "apply", scored, job_id=job)


def unscored(interaction: Interaction, rules_version: str) -> ApplyOutcome:
    """The outcome of an interaction that changes no score."""
    return ApplyOutcome(
        outcome="unscored",
        tenant_id=interaction.tenantId,
        candidate_id=candidate_of(interaction),
        message_id=interaction.messageId,
        event=interaction.event or interaction.type,
        rules_version=rules_version,
    )


def outcome_of(
    job: Job,
    outcome: Outcome,
    before: Previous | None,
    after: Snapshot | None,
    rules_version: str,
    source_state: Snapshot | None = None,
    jobs: tuple[JobState, ...] = (),
) -> ApplyOutcome:
    """The outcome of a settled job (``source_state``: a merge source's state, if not the job's)."""
    scored = job.event
    return ApplyOutcome(  # positional, in field order: this runs for every scored event
        outcome,
        job.tenant,
        job.candidate,
        job.interaction.messageId,
        scored.event if scored else job.interaction.type,
        rules_version,
        before,
        after,
        job.redirected_from if scored else None,
        job.source,
        source_state or job.source_state,
        jobs,
    )
