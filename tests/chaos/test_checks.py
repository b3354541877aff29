"""The chaos checks themselves: they accept a consistent history and name each kind of break."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.chaos import checks
from tests.chaos.observe import Profile
from tests.chaos.stack import RULES
from tests.integration.scorer.expected import Sent, expected_raw, score_of

RULES_DICT = tomllib.loads(RULES)
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def sent(k: int, event: str, days_ago: float) -> Sent:
    return Sent(f"m{k}", "c", event, "web", NOW - timedelta(days=days_ago))


def alert(seq: int, previous: str, tier: str) -> dict[str, Any]:
    return {"id": f"a{seq}{tier}", "previousTier": previous, "tier": tier, "sequence": seq}


def test_steps_follow_the_closed_form_and_hysteresis() -> None:
    # given an application, a late one (hot at its time), then a page view ten days later
    events = [sent(1, "Application Submitted", 12), sent(2, "Application Submitted", 12.1),
              sent(3, "Page Viewed", 2)]  # fmt: skip
    # when the states after each event are computed
    history = checks.steps(events, RULES_DICT)
    # then each is the closed form at the latest event time, with its tier
    for step in history:
        raw = expected_raw(events[: step.sequence], RULES_DICT, step.t)
        assert step.raw == raw and step.score == score_of(raw, RULES_DICT["score_scale"])
    assert [s.tier for s in history] == ["warm", "hot", "warm"]
    assert [s.changed for s in history] == [True, True, True]


def test_a_chain_that_starts_at_the_floor_and_ends_where_the_candidate_is_holds() -> None:
    chain = [alert(1, "cold", "hot"), alert(3, "hot", "warm")]
    assert checks.check_chain(chain, {"warm"}, "cold") is None


def test_a_chain_with_a_gap_or_a_wrong_end_is_named() -> None:
    assert "after cold" in str(checks.check_chain([alert(1, "warm", "hot")], {"hot"}, "cold"))
    gap = [alert(1, "cold", "warm"), alert(2, "hot", "cold")]
    assert "after warm" in str(checks.check_chain(gap, {"cold"}, "cold"))
    assert "holds cold" in str(checks.check_chain([alert(1, "cold", "hot")], {"cold"}, "cold"))


def test_a_lost_last_change_record_is_named() -> None:
    events = [sent(1, "Article Read", 3), sent(2, "Application Submitted", 2)]
    history = checks.steps(events, RULES_DICT)
    first, last = history
    record = {"sequence": 1, "score": first.score, "raw": first.raw}
    assert checks.check_changes([record], history) is not None
    final = {"sequence": 2, "score": last.score, "raw": last.raw}
    assert checks.check_changes([record, final], history) is None


def test_a_latest_snapshot_behind_the_store_is_named() -> None:
    profile = Profile(t=1.0, raw=10.0, sequence=3, tier_number=1)
    assert checks.check_latest({"sequence": 3, "raw": 10.0}, profile) is None
    assert checks.check_latest({"sequence": 2, "raw": 10.0}, profile) is not None
