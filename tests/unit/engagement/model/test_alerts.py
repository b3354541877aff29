"""Crossing decisions and alert records (engagement.model.alerts): pure, replay-safe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engagement.model.alerts import Decayed, Notified, alert_id, decide_change, decide_decay
from engagement.model.decisions import Stored, fold_changes
from engagement.model.records import Cause, ScoreChange, format_time
from engagement.model.rules import Rules, TierRule
from engagement.model.scoring import crossing_time, rank_key

RULES = Rules(
    version="t",
    half_life_days=1.0,
    score_scale=50.0,
    alert_tier="hot",
    tiers=(
        TierRule(name="cold", enter=1, exit=1),
        TierRule(name="warm", enter=40, exit=35),
        TierRule(name="hot", enter=70, exit=65),
    ),
)
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
DAY = 86400.0  # the half-life


def at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def change(
    seq: int, tier: str, previous: str | None, *, score: int = 50, raw: float = 60.0, **kw
) -> ScoreChange:
    return ScoreChange(
        tenantId="acme",
        candidateId="u1",
        score=score,
        previousScore=None,
        tier=tier,
        previousTier=previous,
        raw=raw,
        pillars={},
        channels={},
        sequence=seq,
        asOf=kw.get("as_of", T0),
        rulesVersion="t",
        cause=Cause(
            messageId=f"m{seq}", event="Application Submitted", type=kw.get("cause", "event")
        ),
    )


def test_alert_ids_are_deterministic_and_distinct_per_tier_and_sequence():
    assert alert_id("acme", "u1", 3, "hot") == alert_id("acme", "u1", 3, "hot")
    assert (
        len(
            {
                alert_id("acme", "u1", 3, "hot"),
                alert_id("acme", "u1", 3, "warm"),
                alert_id("acme", "u1", 4, "hot"),
            }
        )
        == 3
    )
    assert "." not in alert_id("acme", "u.1", 3, "hot")


def test_entering_the_alert_tier_raises_candidate_hot():
    decision = decide_change(change(1, "hot", "cold", score=80), None, RULES)
    [alert] = decision.alerts
    assert (alert.type, alert.tier, alert.previousTier, alert.score) == (
        "candidate.hot",
        "hot",
        "cold",
        80,
    )
    assert alert.id == alert_id("acme", "u1", 1, "hot")
    assert alert.thresholds == {"hot": {"enter": 70, "exit": 65}, "cold": {"enter": 1, "exit": 1}}
    assert decision.state == Notified("hot", 1)


def test_a_replayed_or_older_record_decides_nothing():
    assert decide_change(change(3, "hot", "cold"), Notified("cold", 3), RULES).alerts == ()
    assert decide_change(change(2, "hot", "cold"), Notified("cold", 3), RULES).state is None


def test_the_announced_tier_is_the_baseline_not_the_records_previous_tier():
    # given the notifier announced warm; when a record says cold -> hot; then warm -> hot
    [alert] = decide_change(change(5, "hot", "cold"), Notified("warm", 4), RULES).alerts
    assert alert.previousTier == "warm"


def test_leaving_the_alert_tier_raises_cooled_and_other_moves_tier_changed():
    assert (
        decide_change(change(2, "warm", "hot"), Notified("hot", 1), RULES).alerts[0].type
        == "candidate.cooled"
    )
    assert (
        decide_change(change(2, "warm", "cold"), Notified("cold", 1), RULES).alerts[0].type
        == "candidate.tier_changed"
    )


def test_a_record_read_after_its_candidate_decayed_also_raises_the_decay_crossing():
    # given a record making u1 hot (raw 80 -> score 80) read one half-life later (raw 40 -> 55)
    record = change(1, "hot", "cold", score=80, raw=80.0)
    decision = decide_change(record, None, RULES, now=T0 + timedelta(days=1))
    assert [(a.type, a.tier) for a in decision.alerts] == [
        ("candidate.hot", "hot"),
        ("candidate.cooled", "warm"),
    ]
    assert decision.state == Notified("warm", 1)
    assert decision.alerts[1].cause["type"] == "decay"


def test_a_replayed_copy_last_in_its_batch_still_decides_the_decay_to_now():
    # given u1 announced hot at seq 1, and its record (raw 80) read again a half-life later, a
    # replayed copy (the first copy's decay to now was never decided: it came before another)
    record = change(1, "hot", "cold", score=80, raw=80.0)
    later = T0 + timedelta(days=1)
    alerts, final = fold_changes([record], {"acme:u1": Notified("hot", 1)}, RULES, later)
    # then the decay is decided from it: cooled to warm
    assert [(a.type, a.tier) for a in alerts] == [("candidate.cooled", "warm")]
    assert final == {"acme:u1": Notified("warm", 1)}


def test_the_decay_to_now_is_decided_from_the_stored_state_when_it_is_newer():
    # given a record making u1 hot (raw 80 at T0), read a half-life later (raw 40: score 55),
    # while the store already holds seq 2: an event that left the integer score unchanged, and
    # no record, raised the raw to 160 (score 80 at T0 + 1 day: still hot)
    record = change(1, "hot", "cold", score=80, raw=80.0)
    later = T0 + timedelta(days=1)
    newer = Stored(sequence=2, raw=160.0, as_of=T0.timestamp())
    alerts, final = fold_changes([record], {}, RULES, later, {"acme:u1": newer})
    # then u1 is announced hot, and not cooled: it holds hot now
    assert [(a.type, a.tier) for a in alerts] == [("candidate.hot", "hot")]
    assert final == {"acme:u1": Notified("hot", 1)}
    # and when the stored state has cooled too, the cooling is announced at its sequence
    cooled = Stored(sequence=2, raw=81.0, as_of=T0.timestamp())
    alerts, final = fold_changes([record], {}, RULES, later, {"acme:u1": cooled})
    assert [(a.type, a.tier, a.sequence) for a in alerts] == [
        ("candidate.hot", "hot", 1),
        ("candidate.cooled", "warm", 2),
    ]
    assert final == {"acme:u1": Notified("warm", 2)}
    # and the cause says when it fell below hot's exit (65: at raw 81 that is 0.35 half-lives on)
    crossed = crossing_time(rank_key(81.0, T0.timestamp(), DAY), 65, 50.0, DAY)
    assert alerts[1].cause == {"type": "decay", "crossedAt": format_time(at(crossed))}


def test_the_decay_to_now_is_decided_for_every_candidate_of_the_batch():
    # given a batch whose first candidate holds its tier and whose second has cooled
    later = T0 + timedelta(days=1)
    holding = change(1, "warm", "cold", score=50, raw=200.0).model_copy(
        update={"candidateId": "u0"}
    )
    cooling = change(1, "hot", "cold", score=80, raw=80.0)
    # when it is folded a half-life later
    alerts, final = fold_changes([holding, cooling], {}, RULES, later)
    # then the second's cooling is announced too
    assert [(a.candidateId, a.tier) for a in alerts][-1] == ("u1", "warm")
    assert final["acme:u1"] == Notified("warm", 1)


def test_a_stored_state_whose_tier_dipped_below_the_announced_one_is_announced_at_it():
    # given u1 announced hot, and the store at seq 5 holding it cold: a late event's instant found
    # it decayed below warm's exit before its points raised the score to 36 (under warm's enter)
    record = change(1, "hot", "cold", score=80, raw=80.0)
    dipped = Stored(sequence=5, raw=22.5, as_of=T0.timestamp(), tier="cold")
    known = {"acme:u1": Notified("hot", 1)}
    # when the decay to now is decided (score 36: above warm's exit, under its enter)
    alerts, final = fold_changes([record], known, RULES, T0, {"acme:u1": dipped})
    # then the tier announced is the one the candidate holds: cold, not warm
    assert [(a.tier, a.previousTier, a.sequence) for a in alerts] == [("cold", "hot", 5)]
    assert final == {"acme:u1": Notified("cold", 5)}


def test_the_same_record_twice_in_a_batch_decides_what_it_decides_once():
    record = change(1, "hot", "cold", score=80, raw=80.0)
    later = T0 + timedelta(days=1)
    once, _ = fold_changes([record], {}, RULES, later)
    twice, _ = fold_changes([record, record], {}, RULES, later)
    assert [a.id for a in twice] == [a.id for a in once] and len(once) == 2


def test_a_batch_is_folded_in_order_and_erasure_clears_the_state():
    alerts, final = fold_changes(
        [
            change(1, "hot", "cold"),
            change(2, "hot", "hot"),
            change(3, "cold", None, cause="erasure"),
        ],
        {"acme:u1": None},
        RULES,
        T0,
    )
    assert [a.type for a in alerts] == ["candidate.hot"]
    assert final == {"acme:u1": None}


def test_oscillating_between_exit_and_enter_raises_one_alert():
    # scorer applies hysteresis: scores 71, 66, 69, 67, 72 keep the tier hot after the first
    records = [change(1, "hot", "cold")] + [change(s, "hot", "hot") for s in range(2, 6)]
    alerts, final = fold_changes(records, {}, RULES, T0)
    assert len(alerts) == 1 and final["acme:u1"] == Notified("hot", 5)


def found(score: int, seq: int = 4) -> Decayed:
    return Decayed("acme", "u1", "hot", seq, score, T0)


def test_decay_below_exit_cools_once_and_only_down():
    decision = decide_decay(found(60), Notified("hot", 4), RULES, T0)
    [alert] = decision.alerts
    assert (alert.type, alert.tier, alert.previousTier, alert.sequence) == (
        "candidate.cooled",
        "warm",
        "hot",
        4,
    )
    assert decide_decay(found(60), decision.state, RULES, T0).alerts == ()  # repeat: nothing


def test_decay_through_two_tiers_is_one_move():
    [alert] = decide_decay(found(20), Notified("hot", 4), RULES, T0).alerts
    assert (alert.tier, alert.previousTier) == ("cold", "hot")


@pytest.mark.parametrize("known", [None, Notified("hot", 5)])
def test_decay_of_a_candidate_never_announced_or_already_newer_raises_nothing(known):
    assert decide_decay(found(60, seq=4), known, RULES, T0).alerts == ()


def test_decay_is_announced_after_events_that_left_the_integer_score_unchanged():
    # given the notifier announced hot at sequence 3, and a later event (sequence 4) changed no
    # integer score, so the scorer published no record for it
    # when the sweep finds sequence 4 decayed below hot's exit
    decision = decide_decay(found(60, seq=4), Notified("hot", 3), RULES, T0)
    # then the cooling is announced (once) and remembered at the sweep's sequence
    assert [(a.type, a.tier, a.sequence) for a in decision.alerts] == [
        ("candidate.cooled", "warm", 4)
    ]
    assert decision.state == Notified("warm", 4)


@given(st.lists(st.sampled_from(["cold", "warm", "hot"]), min_size=1, max_size=30))
def test_replaying_any_sequence_of_records_raises_nothing_new(tiers):
    records = [change(i + 1, t, tiers[i - 1] if i else None) for i, t in enumerate(tiers)]
    alerts, final = fold_changes(records, {}, RULES, T0)
    again, _ = fold_changes(records, final, RULES, T0)
    assert again == []
    assert len({a.id for a in alerts}) == len(alerts)
