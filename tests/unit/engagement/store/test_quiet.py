"""Which candidates of a batch the scorer indexes as moved without a score record."""

from __future__ import annotations

from engagement.model.score_views import ApplyOutcome, Previous, Snapshot
from engagement.store.quiet import commands
from engagement.store.redis_keys import KeyLayout

KEYS = KeyLayout("p:")


def snap(sequence: int, score: int, tier: str, merged_into: str | None = None) -> Snapshot:
    return Snapshot(1.0, 1.0, {}, {}, sequence, score, tier, merged_into=merged_into)


def outcome(cand: str, kind: str, before: int | None, after: Snapshot) -> ApplyOutcome:
    prev = None if before is None else Previous(after.sequence - 1, before, after.tier)
    return ApplyOutcome(kind, "acme", cand, "m", "Job Viewed", "v1", prev, after)  # type: ignore[arg-type]


def test_a_candidate_moved_above_the_floor_without_a_score_change_is_indexed() -> None:
    after = snap(7, 70, "hot")
    got = commands(KEYS, [outcome("c1", "scored", 70, after)], {("acme", "c1"): after}, "cold")
    assert got == [("ZADD", "p:{acme}:quiet", "GT", "7", "c1")]


def test_a_score_change_or_a_replayed_duplicate_publishes_a_record_instead() -> None:
    after = snap(7, 70, "hot")
    latest = {("acme", "c1"): after}
    changed = [outcome("c1", "scored", 68, snap(6, 69, "hot")), outcome("c1", "scored", 70, after)]
    assert commands(KEYS, changed, latest, "cold") == []
    replayed = [outcome("c1", "duplicate", 70, after), outcome("c1", "scored", 70, after)]
    assert commands(KEYS, replayed, latest, "cold") == []


def test_the_floor_a_cap_or_a_candidate_merged_away_is_not_indexed() -> None:
    floor = snap(7, 10, "cold")
    assert (
        commands(KEYS, [outcome("c1", "scored", 10, floor)], {("acme", "c1"): floor}, "cold") == []
    )
    hot = snap(7, 70, "hot")
    assert commands(KEYS, [outcome("c1", "capped", 70, hot)], {("acme", "c1"): hot}, "cold") == []
    gone = snap(7, 70, "hot", merged_into="u1")
    assert commands(KEYS, [outcome("c1", "scored", 70, gone)], {("acme", "c1"): gone}, "cold") == []
