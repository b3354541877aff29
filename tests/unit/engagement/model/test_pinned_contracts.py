"""Behaviour of the pure model that consumers and stored data depend on, pinned one fact per
test (mutmut found each unpinned): the candidate an event scores, alert ids that stay the same
across releases, the floor for an unknown tier, a crossing's instant in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engagement.model.alerts import Notified, alert_id, decide_change, tier_level
from engagement.model.decisions import Stored, decide_stored
from engagement.model.identity import candidate_of_ids
from engagement.model.records import Cause, ScoreChange, format_time
from engagement.model.scoring import crossing_time, epoch, rank_key
from engagement.model.tiers import decayed_index, tier_after_decay
from tests.unit.engagement.model.strategies import RULES, T0

H, SCALE = RULES.half_life_seconds, RULES.score_scale


def record(*, score: int, tier: str, previous: str | None) -> ScoreChange:
    return ScoreChange(
        tenantId="acme",
        candidateId="u1",
        score=score,
        previousScore=None,
        tier=tier,
        previousTier=previous,
        raw=10.0,
        pillars={},
        channels={},
        sequence=1,
        asOf=datetime.fromtimestamp(T0, UTC),
        rulesVersion=RULES.version,
        cause=Cause(type="event", messageId="m1", event="Job Viewed"),
    )


def test_an_event_scores_its_user_else_the_anonymous_visitor_else_none() -> None:
    assert candidate_of_ids("u1", "a1") == "u1"
    assert candidate_of_ids(None, "a1") == "anon:a1"
    assert candidate_of_ids("", "a1") == "anon:a1"
    with pytest.raises(ValueError, match=r"^an event needs a userId or an anonymousId$"):
        candidate_of_ids(None, None)


def test_alert_ids_stay_the_same_across_releases() -> None:
    # consumers and webhook receivers dedupe on them: a release that changed them would make
    # every replayed alert look new
    assert alert_id("acme", "u1", 7, "hot") == "alrt_a61f526bcd106fb4c5e989105e3e60b1"
    assert alert_id("acme", "u1", 7, "warm") != alert_id("acme", "u1", 7, "hot")


def test_an_unknown_tier_counts_as_the_floor() -> None:
    assert tier_level(RULES, "no-such-tier") == 0
    assert tier_after_decay("no-such-tier", 99, RULES.tiers) == "cold"


def test_decay_from_past_the_top_tier_starts_at_the_top() -> None:
    assert decayed_index(10, 99, RULES.tiers) == 2


def test_a_first_record_without_previous_tier_starts_from_the_floor() -> None:
    change = record(score=50, tier="warm", previous=None)
    [alert] = decide_change(change, None, RULES).alerts
    assert (alert.previousTier, alert.tier) == ("cold", "warm")


def test_a_change_alert_carries_its_records_cause_as_json_without_empty_fields() -> None:
    change = record(score=80, tier="hot", previous="warm")
    [alert] = decide_change(change, Notified("warm", 0), RULES).alerts
    assert alert.cause == change.cause.model_dump(mode="json", exclude_none=True)
    assert None not in alert.cause.values()


def test_a_stored_decay_names_the_instant_it_crossed_the_exit_it_left_in_utc() -> None:
    raw = 100.0
    crossed = crossing_time(rank_key(raw, T0, H), RULES.tiers[2].exit, SCALE, H)
    now = datetime.fromtimestamp(crossed + 30, UTC)
    decision = decide_stored(
        "acme", "u1", Stored(5, raw, T0, "hot"), Notified("hot", 4), RULES, now
    )
    [alert] = decision.alerts
    assert alert.cause["crossedAt"] == format_time(datetime.fromtimestamp(crossed, UTC))
    assert epoch(datetime.fromisoformat(alert.cause["crossedAt"])) == pytest.approx(
        crossed, abs=1e-3
    )
