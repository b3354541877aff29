"""The notifier's decisions from what it reads (engagement.model.decisions): a candidate the decay
sweep found (decide_swept), one moved without a record (decide_stored), a batch of records
(fold_changes). Pure."""

from __future__ import annotations

from datetime import UTC, datetime

from engagement.model.alerts import NOTHING, Decayed, Notified
from engagement.model.decisions import (
    Stored,
    decide_stored,
    decide_swept,
    fold_changes,
    stored_decay,
)
from engagement.model.records import Cause, ScoreChange, format_time
from engagement.model.scoring import crossing_time, rank_key
from tests.unit.engagement.model.strategies import RULES, T0, at, local_zone

H, SCALE = RULES.half_life_seconds, RULES.score_scale
DAY = H  # the half-life
HOT_EXIT = 65


def crossed_at(raw: float, as_of: float, exit_: int) -> str:
    """``crossedAt`` of a candidate of ``raw`` at ``as_of`` falling below ``exit_``."""
    return format_time(at(crossing_time(rank_key(raw, as_of, H), exit_, SCALE, H)))


def record(seq: int, tier: str, *, raw: float, cause: str = "event") -> ScoreChange:
    return ScoreChange(
        tenantId="acme",
        candidateId="u1",
        score=80,
        tier=tier,
        previousTier=None,
        raw=raw,
        pillars={},
        channels={},
        sequence=seq,
        asOf=at(T0),
        rulesVersion=RULES.version,
        cause=Cause(messageId=f"m{seq}", event="Application Submitted", type=cause),
    )


def test_a_swept_candidate_cooled_in_its_stored_state_is_announced_at_the_stored_sequence() -> None:
    # given hot announced at sequence 4, and the store at sequence 5: raw 100 at T0 (score 86)
    stored = Stored(sequence=5, raw=100.0, as_of=T0, tier="hot")
    # when the sweep finds it a half-life later (raw 50: score 63, below hot's exit)
    decision = decide_swept("acme", "c1", stored, Notified("hot", 4), RULES, at(T0 + DAY))
    # then it is cooled to warm at the stored sequence, crossing hot's exit when the stored
    # state did, seen at the sweep's instant
    [alert] = decision.alerts
    assert (alert.type, alert.tenantId, alert.candidateId) == ("candidate.cooled", "acme", "c1")
    assert (alert.previousTier, alert.tier, alert.score, alert.sequence) == ("hot", "warm", 63, 5)
    assert alert.cause == {"type": "decay", "crossedAt": crossed_at(100.0, T0, HOT_EXIT)}
    assert alert.time == at(T0 + DAY)
    assert decision.state == Notified("warm", 5)


def test_a_swept_candidate_the_scorer_lifted_since_the_range_read_is_not_cooled() -> None:
    # given a range that read the candidate below hot's exit, while the store has moved on: an
    # event at T0 + 1 day raised its raw to 200 (score 98)
    lifted = Stored(sequence=5, raw=200.0, as_of=T0 + DAY, tier="hot")
    # when it is decided, then from the stored state: still hot, nothing to announce
    assert decide_swept("acme", "c1", lifted, Notified("hot", 4), RULES, at(T0 + DAY)) == NOTHING


def test_a_swept_candidate_decays_from_the_lower_of_the_announced_and_the_stored_tier() -> None:
    # given hot announced, and the store holding cold at sequence 5: a late event's instant found
    # it below warm's exit before its points raised the raw to 40 (score 55, under warm's enter)
    dipped = Stored(sequence=5, raw=40.0, as_of=T0, tier="cold")
    # when the sweep finds it
    decision = decide_swept("acme", "c1", dipped, Notified("hot", 4), RULES, at(T0))
    # then the tier announced is the one it holds: cold, not warm
    assert [(a.previousTier, a.tier, a.score) for a in decision.alerts] == [("hot", "cold", 55)]
    assert decision.state == Notified("cold", 5)


def test_nothing_for_a_swept_candidate_without_a_stored_or_an_announced_state() -> None:
    stored = Stored(sequence=5, raw=10.0, as_of=T0, tier="hot")
    # erased meanwhile (no profile), or never announced (nothing to cool from)
    assert decide_swept("acme", "c1", None, Notified("hot", 4), RULES, at(T0 + DAY)) == NOTHING
    assert decide_swept("acme", "c1", stored, None, RULES, at(T0 + DAY)) == NOTHING


def test_a_swept_state_older_than_the_announced_one_decides_nothing() -> None:
    older = Stored(sequence=3, raw=10.0, as_of=T0, tier="hot")
    assert decide_swept("acme", "c1", older, Notified("hot", 4), RULES, at(T0 + DAY)) == NOTHING


def test_crossed_at_of_a_stored_decay_does_not_depend_on_the_machines_time_zone() -> None:
    # given a machine whose local zone is UTC+05:30 (the decision runs on any host)
    stored = Stored(sequence=5, raw=100.0, as_of=T0, tier="hot")
    with local_zone("IST-05:30"):
        # when the sweep and the quiet index decide the same stored state
        swept = decide_swept("acme", "c1", stored, Notified("hot", 4), RULES, at(T0 + DAY))
        quiet = decide_stored("acme", "c1", stored, Notified("hot", 4), RULES, at(T0 + DAY))
    # then both name the instant it crossed hot's exit, in UTC
    expected = {"type": "decay", "crossedAt": crossed_at(100.0, T0, HOT_EXIT)}
    assert [a.cause for a in swept.alerts + quiet.alerts] == [expected, expected]


def test_a_quiet_state_below_the_announced_tier_decays_from_its_stored_tier() -> None:
    # given hot announced at 4 and the store at 5 holding cold (hysteresis kept it there) with
    # raw 40 now (score 55: above warm's exit)
    dipped = Stored(sequence=5, raw=40.0, as_of=T0, tier="cold")
    # when the quiet index has it decided
    decision = decide_stored("acme", "c1", dipped, Notified("hot", 4), RULES, at(T0))
    # then cold is announced, the tier it holds, not warm
    assert [(a.previousTier, a.tier) for a in decision.alerts] == [("hot", "cold")]
    assert decision.state == Notified("cold", 5)


def test_a_replayed_record_older_than_the_announced_state_still_decays_the_stored_one() -> None:
    # given hot announced at sequence 5 (by the sweep of a quiet candidate), the store at 5
    # (raw 100 at T0), and a replayed record of sequence 3 read a half-life later
    known: dict[str, Notified | None] = {"acme:u1": Notified("hot", 5)}
    stored = {"acme:u1": Stored(sequence=5, raw=100.0, as_of=T0, tier="hot")}
    # when the batch is folded
    alerts, final = fold_changes([record(3, "hot", raw=100.0)], known, RULES, at(T0 + DAY), stored)
    # then the record decides nothing, but the stored state's decay to now is announced
    assert [(a.type, a.tier, a.sequence) for a in alerts] == [("candidate.cooled", "warm", 5)]
    assert final == {"acme:u1": Notified("warm", 5)}


def test_an_erasure_first_in_a_batch_forgets_the_candidate() -> None:
    erasure = record(6, "cold", raw=0.0, cause="erasure")
    alerts, final = fold_changes([erasure], {"acme:u1": Notified("hot", 5)}, RULES, at(T0))
    assert (alerts, final) == ([], {"acme:u1": None})


def test_records_after_an_erasure_are_decided_afresh_with_their_decay_to_now() -> None:
    # given a batch: u1 hot at sequence 5, erased, then a new profile's first record (sequence 1)
    batch = [
        record(5, "hot", raw=100.0),
        record(6, "cold", raw=0.0, cause="erasure"),
        record(1, "hot", raw=100.0),
    ]
    # when it is folded a half-life after the new record
    alerts, final = fold_changes(batch, {}, RULES, at(T0 + DAY))
    # then the new profile is announced hot from the floor, then cooled: the decay to now is
    # decided from the newest record after the erasure, not from one before it
    assert [(a.type, a.tier, a.sequence) for a in alerts][-2:] == [
        ("candidate.hot", "hot", 1),
        ("candidate.cooled", "warm", 1),
    ]
    assert final == {"acme:u1": Notified("warm", 1)}


def test_a_decay_finding_is_the_stored_state_at_its_sequence_in_utc() -> None:
    # stored_decay's finding, field by field (the sweep's alert is built from it)
    stored = Stored(sequence=5, raw=100.0, as_of=T0, tier="hot")
    found = stored_decay("acme", "c1", Notified("hot", 4), stored, RULES, at(T0 + DAY))
    crossed = crossing_time(rank_key(100.0, T0, H), HOT_EXIT, SCALE, H)
    assert found == Decayed("acme", "c1", "hot", 5, 63, datetime.fromtimestamp(crossed, UTC))


def test_a_stored_state_below_zero_points_cools_at_its_own_instant():
    # given u1 announced warm, and its stored state at raw -3 (negative points: an unsubscribe)
    below = Stored(5, -3.0, T0, "cold")
    known = Notified("warm", 4)
    # when the sweep finds it, or the quiet index hands it over, a minute later
    swept = decide_swept("acme", "u1", below, known, RULES, at(T0 + 60))
    stored = decide_stored("acme", "u1", below, known, RULES, at(T0 + 60))
    # then it is cooled to the floor at the stored sequence, crossed at the state's own instant
    # (its raw never decays past an exit: it is below all of them from the start)
    for decision in (swept, stored):
        assert decision.state == Notified("cold", 5)
        [alert] = decision.alerts
        assert (alert.previousTier, alert.tier) == ("warm", "cold")
        assert alert.cause == {"type": "decay", "crossedAt": format_time(at(T0))}
