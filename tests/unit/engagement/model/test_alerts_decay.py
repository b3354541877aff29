"""Decay crossings of engagement.model.alerts: a record read late (decide_change with ``now``),
the finding of a record's state (decayed_state), the one move down (decide_decay), and the cause
an alert carries. Pure."""

from __future__ import annotations

from datetime import datetime

from engagement.model.alerts import (
    NOTHING,
    Decayed,
    Notified,
    decayed_state,
    decide_change,
    decide_decay,
    lower,
)
from engagement.model.records import Cause, ScoreChange, format_time
from engagement.model.scoring import crossing_time, rank_key, raw_threshold, score_of
from tests.unit.engagement.model.strategies import RULES, T0, at

H, SCALE = RULES.half_life_seconds, RULES.score_scale
DAY = H  # the half-life
HOT_EXIT, WARM_EXIT = 65, 35


def record(
    seq: int, tier: str, *, raw: float, cause: Cause | None = None, previous: str | None = None
) -> ScoreChange:
    return ScoreChange(
        tenantId="acme",
        candidateId="u1",
        score=score_of(raw, SCALE),
        tier=tier,
        previousTier=previous,
        raw=raw,
        pillars={},
        channels={},
        sequence=seq,
        asOf=at(T0),
        rulesVersion=RULES.version,
        cause=cause or Cause(messageId=f"m{seq}", event="Application Submitted"),
    )


def crossed(raw: float, exit_: int) -> datetime:
    return at(crossing_time(rank_key(raw, T0, H), exit_, SCALE, H))


def test_a_merge_alert_carries_its_cause_without_null_fields() -> None:
    # given a merge record (no messageId, no event)
    merge = record(2, "hot", raw=100.0, cause=Cause(type="merge"), previous="warm")
    # when it makes u1 hot, then the alert's cause is the merge's, without nulls
    [alert] = decide_change(merge, None, RULES).alerts
    assert alert.cause == {"type": "merge"}


def test_a_record_keeping_the_announced_tier_read_after_it_cooled_raises_only_the_decay() -> None:
    # given hot announced at 1, and a record of sequence 2 still hot (raw 100 at T0)
    later = record(2, "hot", raw=100.0)
    # when it is read a half-life later (raw 50: score 63)
    decision = decide_change(later, Notified("hot", 1), RULES, now=at(T0 + DAY))
    # then the record's own move is none, and the decay is announced
    assert [(a.type, a.tier, a.sequence) for a in decision.alerts] == [
        ("candidate.cooled", "warm", 2)
    ]
    assert decision.state == Notified("warm", 2)


def test_a_warm_record_read_after_it_fell_below_warms_exit_moves_to_the_floor() -> None:
    # given a record making u1 warm (raw 30: score 45) read a half-life later (raw 15: score 26)
    warm = record(1, "warm", raw=30.0)
    decision = decide_change(warm, None, RULES, now=at(T0 + DAY))
    # then warm is announced, then the decay to cold, crossing warm's exit
    assert [(a.tier, a.cause["type"]) for a in decision.alerts] == [
        ("warm", "event"),
        ("cold", "decay"),
    ]
    assert decision.alerts[1].cause["crossedAt"] == format_time(crossed(30.0, WARM_EXIT))
    assert decision.state == Notified("cold", 1)


def test_a_candidate_exactly_at_its_tiers_exit_still_holds_it() -> None:
    # given a hot record whose score is exactly hot's exit (65), read at its own instant
    raw = raw_threshold(HOT_EXIT, SCALE) * (1 + 1e-9)
    assert score_of(raw, SCALE) == HOT_EXIT
    # when it is decided with the decay to now, then it is hot, and nothing cooled
    decision = decide_change(record(1, "hot", raw=raw), None, RULES, now=at(T0))
    assert [a.tier for a in decision.alerts] == ["hot"]
    assert decision.state == Notified("hot", 1)


def test_a_decay_names_when_the_candidate_fell_below_the_lowest_exit_it_crossed() -> None:
    # given a hot record of raw 100 at T0, read one half-life later (score 63: warm) and three
    # half-lives later (raw 12.5: score 22, cold)
    hot = record(1, "hot", raw=100.0)
    to_warm = decide_change(hot, Notified("hot", 0), RULES, now=at(T0 + DAY)).alerts
    to_cold = decide_change(hot, Notified("hot", 0), RULES, now=at(T0 + 3 * DAY)).alerts
    # then hot -> warm crossed hot's exit; hot -> cold crossed warm's exit (the lower one)
    assert [(a.tier, a.cause["crossedAt"]) for a in to_warm + to_cold] == [
        ("warm", format_time(crossed(100.0, HOT_EXIT))),
        ("cold", format_time(crossed(100.0, WARM_EXIT))),
    ]


def test_the_decay_finding_of_a_records_state_is_that_state_at_its_sequence() -> None:
    # given u1 announced hot by its record of sequence 1 (raw 100 at T0), a half-life later
    found = decayed_state(record(1, "hot", raw=100.0), Notified("hot", 1), RULES, at(T0 + DAY))
    # then the finding is the announced tier's, at the record's sequence, crossing in UTC
    assert found == Decayed("acme", "u1", "hot", 1, 63, crossed(100.0, HOT_EXIT))


def test_the_lower_of_two_tiers_follows_the_rules_order() -> None:
    assert lower(RULES, "warm", "hot") == "warm"
    assert lower(RULES, "hot", "warm") == "warm"
    assert lower(RULES, "hot", None) == "hot"


def test_decay_into_an_alert_tier_below_the_top_enters_it() -> None:
    # given a template whose alert tier is warm, and a candidate announced hot
    rules = RULES.model_copy(update={"alert_tier": "warm"})
    found = Decayed("acme", "u1", "hot", 4, 50, at(T0))
    # when it decays to warm, then it entered the alert tier
    [alert] = decide_decay(found, Notified("hot", 4), rules, at(T0)).alerts
    assert (alert.type, alert.previousTier, alert.tier) == ("candidate.hot", "hot", "warm")


def test_decay_from_a_tier_the_rules_no_longer_name_announces_nothing() -> None:
    # given a candidate announced in a tier of an older template ("lukewarm": counted as the
    # floor), then the decay cannot move it down: nothing is announced
    found = Decayed("acme", "u1", "hot", 4, 20, at(T0))
    assert decide_decay(found, Notified("lukewarm", 3), RULES, at(T0)) == NOTHING
