"""The notifier's decisions over what it reads, built from the one-step decisions of
``engagement.model.alerts``: a batch of score records (``fold_changes``), a candidate the decay
sweep found in a crossing range (``decide_swept``) and one the scorer moved without a record
(``decide_stored``), the last two from the candidate's state as the store holds it. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from engagement.model.alerts import (
    NOTHING,
    Decayed,
    Decision,
    Notified,
    build_alert,
    decayed_state,
    decide_change,
    decide_decay,
    fell_below,
    lower,
    tier_level,
)
from engagement.model.records import CandidateAlert, ScoreChange
from engagement.model.rules import Rules
from engagement.model.scoring import epoch, rank_key, raw_at_rank, score_of
from engagement.model.tiers import alert_type, tier_after_decay


@dataclass(frozen=True)
class Stored:
    """A candidate's state as the store holds it now: its sequence, its raw at ``as_of``, and
    the tier the store's hysteresis gave it then (None: unknown)."""

    sequence: int
    raw: float
    as_of: float
    tier: str | None = None


def fold_changes(
    changes: list[ScoreChange],
    known: dict[str, Notified | None],
    rules: Rules,
    now: datetime,
    stored: dict[str, Stored] | None = None,
) -> tuple[list[CandidateAlert], dict[str, Notified | None]]:
    """Decide a batch in order; return the alerts and the final state per changed candidate key.

    ``known`` maps ``tenant:candidate`` to the stored state; a ``None`` result means "erase".
    Decay up to ``now`` is applied after the batch to each candidate: from its state in the store
    (``stored``) when that is at least as new as its newest record (events that left the integer
    score unchanged moved it on without a record), else from its newest record whose state it is,
    also when that record was not new (a replayed copy last in the batch).
    """
    alerts: list[CandidateAlert] = []
    final: dict[str, Notified | None] = {}
    current = dict(known)
    newest: dict[str, ScoreChange] = {}
    for change in changes:
        key = f"{change.tenantId}:{change.candidateId}"
        if change.cause.type == "erasure":
            current[key] = final[key] = None
            newest.pop(key, None)
            continue
        if key not in newest or change.sequence >= newest[key].sequence:
            newest[key] = change
        decision = decide_change(change, current.get(key), rules)
        alerts.extend(decision.alerts)
        if decision.state is not None:
            current[key] = final[key] = decision.state
    for key, change in newest.items():
        state = current.get(key)
        decayed = None if state is None else _decayed_now(change, state, stored, rules, now)
        if state is None or decayed is None:
            continue
        decision = decide_decay(decayed, state, rules, now)
        alerts.extend(decision.alerts)
        if decision.state is not None:
            current[key] = final[key] = decision.state
    return alerts, final


def _decayed_now(
    change: ScoreChange,
    state: Notified,
    stored: dict[str, Stored] | None,
    rules: Rules,
    now: datetime,
) -> Decayed | None:
    """The decay finding of a candidate after its newest record of a batch (see fold_changes)."""
    base = None if stored is None else stored.get(f"{change.tenantId}:{change.candidateId}")
    if base is not None and base.sequence >= max(change.sequence, state.sequence):
        return stored_decay(change.tenantId, change.candidateId, state, base, rules, now)
    return decayed_state(change, state, rules, now)


def stored_decay(
    tenant_id: str, candidate_id: str, state: Notified, base: Stored, rules: Rules, now: datetime
) -> Decayed | None:
    """The decay finding of a candidate's stored state, if the tier it holds now is below the
    announced one: decayed from the lower of the announced tier and the store's own. Its
    sequence and score come from one read of the profile, so they always agree."""
    h, scale = rules.half_life_seconds, rules.score_scale
    start = lower(rules, state.tier, base.tier)
    rank = rank_key(base.raw, base.as_of, h)
    score = score_of(raw_at_rank(rank, epoch(now), h), scale)
    target = tier_level(rules, tier_after_decay(start, score, rules.tiers))
    if target >= tier_level(rules, state.tier):
        return None
    crossed = min(fell_below(rank, rules.tiers[target + 1].exit, base.as_of, rules), epoch(now))
    return Decayed(
        tenant_id=tenant_id,
        candidate_id=candidate_id,
        set_tier=start,
        sequence=base.sequence,
        score=score,
        crossed_at=datetime.fromtimestamp(crossed, UTC),
    )


def decide_swept(
    tenant_id: str,
    candidate_id: str,
    base: Stored | None,
    known: Notified | None,
    rules: Rules,
    now: datetime,
) -> Decision:
    """A candidate the decay sweep found in a crossing range: the decay its stored state shows
    now (not the rank the range read: the scorer may have moved it since)."""
    if base is None or known is None:
        return NOTHING
    found = stored_decay(tenant_id, candidate_id, known, base, rules, now)
    return NOTHING if found is None else decide_decay(found, known, rules, now)


def decide_stored(
    tenant_id: str,
    candidate_id: str,
    base: Stored | None,
    known: Notified | None,
    rules: Rules,
    now: datetime,
) -> Decision:
    """A candidate whose state moved on without a score record (``engagement.store.quiet``):
    announce the tier it holds now, its stored tier decayed to ``now``, where that differs from
    the announced one. Up: late events lifted it back over an exit it had been announced below
    (cause ``event`` without a messageId: no single event did it); down: decay, as the sweep
    decides it. Nothing for a state not newer than the announced one."""
    if base is None or known is None or base.tier is None or base.sequence <= known.sequence:
        return NOTHING
    h, scale = rules.half_life_seconds, rules.score_scale
    rank = rank_key(base.raw, base.as_of, h)
    score = score_of(raw_at_rank(rank, epoch(now), h), scale)
    held = tier_after_decay(base.tier, score, rules.tiers)
    level = tier_level(rules, held)
    if level < tier_level(rules, known.tier):
        crossed = min(fell_below(rank, rules.tiers[level + 1].exit, base.as_of, rules), epoch(now))
        found = Decayed(tenant_id, candidate_id, base.tier, base.sequence, score, _at(crossed))
        return decide_decay(found, known, rules, now)
    kind = alert_type(known.tier, held, rules.alert_tier)
    if kind is None:
        return NOTHING
    alert = build_alert(
        rules=rules,
        type_=kind,
        tenant_id=tenant_id,
        candidate_id=candidate_id,
        tier=held,
        previous_tier=known.tier,
        score=score,
        sequence=base.sequence,
        time=now,
        cause={"type": "event"},
    )
    return Decision((alert,), Notified(held, base.sequence))


def _at(instant: float) -> datetime:
    return datetime.fromtimestamp(instant, UTC)
