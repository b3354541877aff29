"""Tier hysteresis: enter at >= enter, leave below exit, decay only moves down."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engagement.model.tiers import alert_type, tier_after_decay, tier_after_event
from tests.unit.engagement.model.strategies import RULES, scores

TIERS = RULES.tiers


def test_a_candidate_enters_warm_at_the_enter_threshold() -> None:
    assert tier_after_event("cold", 1, 39, TIERS) == "cold"
    assert tier_after_event("cold", 1, 40, TIERS) == "warm"


def test_a_warm_candidate_stays_warm_between_exit_and_enter() -> None:
    assert tier_after_event("warm", 45, 36, TIERS) == "warm"
    assert tier_after_decay("warm", 35, TIERS) == "warm"
    assert tier_after_decay("warm", 34, TIERS) == "cold"


def test_a_jump_over_several_tiers_is_one_move() -> None:
    assert tier_after_event("cold", 5, 90, TIERS) == "hot"
    assert tier_after_event("hot", 90, 10, TIERS) == "cold"


def test_decay_from_hot_lands_in_the_band_it_passes_through() -> None:
    assert tier_after_decay("hot", 64, TIERS) == "warm"
    assert tier_after_decay("hot", 20, TIERS) == "cold"


def test_event_first_decays_the_previous_tier_to_the_score_before_it() -> None:
    # hot decayed to 50 is warm; +5 to 55 stays warm (55 < hot's enter 70)
    assert tier_after_event("hot", 50, 55, TIERS) == "warm"


@given(st.sampled_from(["cold", "warm", "hot"]), scores)
def test_decay_never_moves_a_tier_up(tier: str, score: int) -> None:
    names = [t.name for t in TIERS]
    assert names.index(tier_after_decay(tier, score, TIERS)) <= names.index(tier)


@given(st.sampled_from(["cold", "warm", "hot"]), scores)
def test_tier_after_an_event_is_always_consistent_with_the_score(tier: str, score: int) -> None:
    new = next(t for t in TIERS if t.name == tier_after_event(tier, 100, score, TIERS))
    assert score >= new.exit


def test_alert_types_name_entering_and_leaving_the_alert_tier() -> None:
    assert alert_type("warm", "hot", "hot") == "candidate.hot"
    assert alert_type("hot", "warm", "hot") == "candidate.cooled"
    assert alert_type("cold", "warm", "hot") == "candidate.tier_changed"
    assert alert_type("warm", "warm", "hot") is None
