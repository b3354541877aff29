"""Tiers with hysteresis (docs/design.md §4): entered at score >= enter, left below exit.

A jump over several tiers is one move. Decay only moves down: from tier k the tier at current
score s is the highest j <= k with s >= exit_j. ``engagement/store/lua/common.lua`` implements the same
rules (``tier_after_decay`` / ``tier_move``) over 1-based indexes; tests check they agree.
"""

from __future__ import annotations

from collections.abc import Sequence

from engagement.model.records import AlertType
from engagement.model.rules import TierRule


def _index(name: str, tiers: Sequence[TierRule]) -> int:
    for k, tier in enumerate(tiers):
        if tier.name == name:
            return k
    return 0


def decayed_index(k: int, score: int, tiers: Sequence[TierRule]) -> int:
    """From tier index k, the highest j <= k with score >= exit_j (0 at the floor)."""
    for j in range(min(k, len(tiers) - 1), 0, -1):
        if score >= tiers[j].exit:
            return j
    return 0


def moved_index(k: int, score: int, tiers: Sequence[TierRule]) -> int:
    """From tier index k after a score change: up to the highest entered tier, else decay rule."""
    for j in range(len(tiers) - 1, k, -1):
        if score >= tiers[j].enter:
            return j
    return decayed_index(k, score, tiers)


def tier_after_decay(previous_tier: str, score_now: int, tiers: Sequence[TierRule]) -> str:
    """The tier after decay alone brought the score to ``score_now`` (never higher)."""
    return tiers[decayed_index(_index(previous_tier, tiers), score_now, tiers)].name


def tier_after_event(
    previous_tier: str, score_before: int, score_after: int, tiers: Sequence[TierRule]
) -> str:
    """The tier after an event: decay ``previous_tier`` to ``score_before``, then move."""
    decayed = decayed_index(_index(previous_tier, tiers), score_before, tiers)
    return tiers[moved_index(decayed, score_after, tiers)].name


def alert_type(previous: str, new: str, alert_tier: str) -> AlertType | None:
    """The alert a tier change raises: entering the alert tier, leaving it, or any other move."""
    if previous == new:
        return None
    if new == alert_tier:
        return "candidate.hot"
    if previous == alert_tier:
        return "candidate.cooled"
    return "candidate.tier_changed"
