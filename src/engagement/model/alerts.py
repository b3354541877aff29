"""Tier-crossing alerts (docs/design.md §3): decide crossings and build the alert records. Pure.

The notifier remembers, per candidate, the tier it last announced and the sequence of the latest
score record it handled (``Notified``). A score record is only considered when its sequence is
newer, and a decay crossing only when it lowers the announced tier: replays decide nothing twice.
Alert ids are a hash of (tenant, candidate, sequence, tier), so a re-published alert keeps its id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engagement.model.records import AlertType, CandidateAlert, ScoreChange, format_time
from engagement.model.rules import Rules
from engagement.model.scoring import crossing_time, epoch, rank_key, raw_at_rank, score_of
from engagement.model.tiers import alert_type, tier_after_decay


@dataclass(frozen=True)
class Notified:
    """What the notifier last announced for a candidate."""

    tier: str
    sequence: int


@dataclass(frozen=True)
class Decision:
    """The outcome of one input: the alerts to publish and the state to store (None: keep)."""

    alerts: tuple[CandidateAlert, ...]
    state: Notified | None


NOTHING = Decision((), None)


def alert_id(tenant_id: str, candidate_id: str, sequence: int, tier: str) -> str:
    """Return the deterministic alert id of (tenant, candidate, sequence, tier); no dots."""
    text = "\x1f".join((tenant_id, candidate_id, str(sequence), tier))
    return "alrt_" + hashlib.sha256(text.encode()).hexdigest()[:32]


def tier_level(rules: Rules, tier: str) -> int:
    """Return the tier's position (0 = the floor); unknown names count as the floor."""
    names = [t.name for t in rules.tiers]
    return names.index(tier) if tier in names else 0


def thresholds(rules: Rules, *tiers: str) -> dict[str, Any]:
    """Return the enter/exit thresholds of the named tiers."""
    return {t.name: {"enter": t.enter, "exit": t.exit} for t in rules.tiers if t.name in tiers}


def build_alert(
    *,
    rules: Rules,
    type_: AlertType,
    tenant_id: str,
    candidate_id: str,
    tier: str,
    previous_tier: str,
    score: int,
    sequence: int,
    time: datetime,
    cause: dict[str, Any],
) -> CandidateAlert:
    """Return the alert record for one crossing, with its deterministic id."""
    return CandidateAlert(
        id=alert_id(tenant_id, candidate_id, sequence, tier),
        type=type_,
        tenantId=tenant_id,
        candidateId=candidate_id,
        tier=tier,
        previousTier=previous_tier,
        score=score,
        thresholds=thresholds(rules, tier, previous_tier),
        sequence=sequence,
        time=time,
        cause=cause,
    )


def decide_change(
    change: ScoreChange, known: Notified | None, rules: Rules, *, now: datetime | None = None
) -> Decision:
    """Return the crossings a score record causes; nothing for a record not newer than ``known``.

    Without a remembered tier, the record's ``previousTier`` (else the floor) is the baseline.
    With ``now``, decay from ``asOf`` to ``now`` is applied too (a record read late whose
    candidate has cooled since), so the sweep never needs to look behind the consumer.
    """
    if known is not None and change.sequence <= known.sequence:
        return NOTHING
    previous = known.tier if known is not None else (change.previousTier or rules.tiers[0].name)
    alerts: list[CandidateAlert] = []
    kind = alert_type(previous, change.tier, rules.alert_tier)
    if kind is not None:
        cause = change.cause.model_dump(mode="json", exclude_none=True)
        alerts.append(_change_alert(change, kind, previous, rules, cause))
    tier = change.tier
    if now is not None:
        decayed = _decayed_since(change, rules, now)
        if decayed is not None:
            alerts.append(
                decide_decay(decayed, Notified(tier, change.sequence), rules, now).alerts[0]
            )
            tier = alerts[-1].tier
    return Decision(tuple(alerts), Notified(tier, change.sequence))


def _change_alert(
    change: ScoreChange, kind: AlertType, previous: str, rules: Rules, cause: dict[str, Any]
) -> CandidateAlert:
    return build_alert(
        rules=rules,
        type_=kind,
        tenant_id=change.tenantId,
        candidate_id=change.candidateId,
        tier=change.tier,
        previous_tier=previous,
        score=change.score,
        sequence=change.sequence,
        time=change.asOf,
        cause=cause,
    )


def _decayed_since(change: ScoreChange, rules: Rules, now: datetime) -> Decayed | None:
    """Return the record's candidate as a decay finding if it fell below its tier's exit by ``now``."""
    return _decayed(
        change, change.tier, change.sequence, change.raw, epoch(change.asOf), rules, now
    )


def _decayed(
    change: ScoreChange,
    tier: str,
    sequence: int,
    raw: float,
    as_of: float,
    rules: Rules,
    now: datetime,
) -> Decayed | None:
    """The candidate of ``change`` in the state (``raw`` at ``as_of``, ``sequence``) as a decay
    finding, if it fell below the exit of ``tier`` by ``now``."""
    h, level = rules.half_life_seconds, tier_level(rules, tier)
    rank = rank_key(raw, as_of, h)
    score = score_of(raw_at_rank(rank, epoch(now), h), rules.score_scale)
    if level == 0 or score >= rules.tiers[level].exit:
        return None
    lowest_left = tier_level(rules, tier_after_decay(tier, score, rules.tiers)) + 1
    crossed = fell_below(rank, rules.tiers[lowest_left].exit, as_of, rules)
    return Decayed(
        tenant_id=change.tenantId,
        candidate_id=change.candidateId,
        set_tier=tier,
        sequence=sequence,
        score=score,
        crossed_at=datetime.fromtimestamp(crossed, UTC),
    )


def fell_below(rank: float, score: int, as_of: float, rules: Rules) -> float:
    """The instant a state (``rank``, its instant ``as_of``) fell below ``score``: as it decayed
    past it, or at ``as_of`` itself when it was below already (negative points, a raw <= 0)."""
    return max(crossing_time(rank, score, rules.score_scale, rules.half_life_seconds), as_of)


def decayed_state(
    change: ScoreChange, state: Notified, rules: Rules, now: datetime
) -> Decayed | None:
    """The candidate of ``change`` in the state the record announced (``state``: its tier, at
    the record's sequence) as a decay finding, if it fell below that tier's exit by ``now``."""
    if state.sequence != change.sequence:
        return None
    return _decayed(change, state.tier, change.sequence, change.raw, epoch(change.asOf), rules, now)


def lower(rules: Rules, a: str, b: str | None) -> str:
    """The lower of two tiers (``a`` when ``b`` is None)."""
    return a if b is None or tier_level(rules, a) <= tier_level(rules, b) else b


@dataclass(frozen=True)
class Decayed:
    """A candidate a sweep found below an exit threshold: its rank-set tier, sequence, score now."""

    tenant_id: str
    candidate_id: str
    set_tier: str
    sequence: int
    score: int
    crossed_at: datetime


def decide_decay(found: Decayed, known: Notified | None, rules: Rules, now: datetime) -> Decision:
    """Return the crossing a decay causes; only ever a move down from the announced tier.

    Never for a state older than the announced one. A newer one is decided too: events that
    leave the integer score unchanged advance the sequence without any score record.
    """
    if known is None or found.sequence < known.sequence:
        return NOTHING
    previous = known.tier
    # from the store's own tier when it is lower (an event's instant found the candidate decayed
    # below an exit before its points came: hysteresis kept it there)
    tier = tier_after_decay(lower(rules, previous, found.set_tier), found.score, rules.tiers)
    kind = alert_type(previous, tier, rules.alert_tier)
    if kind is None or tier_level(rules, tier) >= tier_level(rules, previous):
        return NOTHING
    alert = build_alert(
        rules=rules,
        type_=kind,
        tenant_id=found.tenant_id,
        candidate_id=found.candidate_id,
        tier=tier,
        previous_tier=previous,
        score=found.score,
        sequence=found.sequence,
        time=now,
        cause={"type": "decay", "crossedAt": format_time(found.crossed_at)},
    )
    return Decision((alert,), Notified(tier, found.sequence))
