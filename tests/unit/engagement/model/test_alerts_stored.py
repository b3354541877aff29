"""Deciding a candidate from its stored state when it moved on without a score record
(engagement.model.decisions.decide_stored)."""

from __future__ import annotations

from datetime import UTC, datetime

from engagement.model.alerts import Notified
from engagement.model.decisions import Stored, decide_stored
from engagement.model.scoring import crossing_time, rank_key
from tests.unit.engagement.model.strategies import RULES, T0

H, SCALE = RULES.half_life_seconds, RULES.score_scale


def at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def raw_of_score(score: int) -> float:
    """A raw whose score at its own instant is about ``score`` (by bisection on crossing_time)."""
    lo, hi = 0.0, 1e6
    for _ in range(200):
        mid = (lo + hi) / 2
        if crossing_time(rank_key(mid, T0, H), score, SCALE, H) > T0:
            hi = mid
        else:
            lo = mid
    return hi


def test_a_stored_state_back_over_the_exit_is_announced_up() -> None:
    raw = raw_of_score(66)  # hot's exit is 65: a second later it is still over it
    decision = decide_stored(
        "acme", "c1", Stored(5, raw, T0, "hot"), Notified("warm", 4), RULES, at(T0 + 1)
    )
    [alert] = decision.alerts
    assert (alert.type, alert.previousTier, alert.tier, alert.sequence) == (
        "candidate.hot",
        "warm",
        "hot",
        5,
    )
    assert alert.cause == {"type": "event"} and alert.score >= 65
    assert decision.state == Notified("hot", 5)


def test_up_means_the_stored_tier_decayed_to_now_not_a_new_entry() -> None:
    # stored warm: hysteresis keeps it warm whatever its score now; announced cold: warm is up
    raw = raw_of_score(60)
    decision = decide_stored(
        "acme", "c1", Stored(5, raw, T0, "warm"), Notified("cold", 4), RULES, at(T0)
    )
    assert [(a.type, a.tier) for a in decision.alerts] == [("candidate.tier_changed", "warm")]


def test_a_stored_state_below_the_announced_tier_is_a_decay() -> None:
    raw = raw_of_score(66)
    later = crossing_time(rank_key(raw, T0, H), 65, SCALE, H) + 10
    decision = decide_stored(
        "acme", "c1", Stored(5, raw, T0, "hot"), Notified("hot", 4), RULES, at(later)
    )
    [alert] = decision.alerts
    assert (alert.type, alert.tier, alert.cause["type"]) == ("candidate.cooled", "warm", "decay")
    assert decision.state == Notified("warm", 5)


def test_nothing_when_the_tier_held_now_is_the_announced_one() -> None:
    raw = raw_of_score(80)
    stored = Stored(5, raw, T0, "hot")
    assert decide_stored("acme", "c1", stored, Notified("hot", 4), RULES, at(T0)).alerts == ()


def test_nothing_for_a_state_not_newer_than_the_announced_one_or_unknown() -> None:
    raw = raw_of_score(80)
    stored = Stored(4, raw, T0, "hot")
    assert decide_stored("acme", "c1", stored, Notified("warm", 4), RULES, at(T0)).state is None
    assert decide_stored("acme", "c1", None, Notified("warm", 3), RULES, at(T0)).state is None
    assert decide_stored("acme", "c1", stored, None, RULES, at(T0)).state is None
    no_tier = Stored(5, raw, T0, None)
    assert decide_stored("acme", "c1", no_tier, Notified("warm", 3), RULES, at(T0)).state is None
