"""The score a candidate must have, computed here from the events and docs/design.md §4 directly.

Deliberately independent of engagement.model.scoring: the tests check the system against the formula,
not against its own implementation.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Sent:
    """One track event as a test sends it."""

    message_id: str
    candidate: str  # the candidate the event belongs to after identity stitching
    event: str
    channel: str
    at: datetime


def expected_raw(events: Iterable[Sent], rules: dict[str, Any], t_ref: float) -> float:
    """R(t_ref) = sum of w_i * 2^(-(t_ref - t_i)/h) over distinct messageIds (caps not exceeded)."""
    h = rules["half_life_days"] * 86400.0
    seen: set[str] = set()
    total = 0.0
    for e in events:
        rule = rules["events"].get(e.event)
        if rule is None or e.message_id in seen:
            continue
        seen.add(e.message_id)
        w = rule["points"] * rules.get("channels", {}).get(e.channel, 1.0)
        total += w * 2.0 ** (-(t_ref - e.at.timestamp()) / h)
    return total


def score_of(raw: float, scale: float) -> int:
    """The 1..100 mapping of docs/design.md §4."""
    return min(100, max(1, math.floor(100 * (1 - math.exp(-max(raw, 0.0) / scale)) + 0.5)))


def expected_now(events: list[Sent], rules: dict[str, Any]) -> tuple[float, int, float]:
    """Return (raw at the reference time, score, reference time = latest event time)."""
    t_ref = max(e.at.timestamp() for e in events)
    raw = expected_raw(events, rules, t_ref)
    return raw, score_of(raw, rules["score_scale"]), t_ref


def load_toml(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text())


TEST_RULES = """
version = "test-rules-1"
half_life_days = 1.0
score_scale = 50.0
alert_tier = "hot"

[[tiers]]
name = "cold"
enter = 1
exit = 1

[[tiers]]
name = "warm"
enter = 40
exit = 35

[[tiers]]
name = "hot"
enter = 70
exit = 65

[channels]
web = 1.0
ad = 1.5
email = 0.5

[events."Page Viewed"]
pillar = "entrance"
points = 1
daily_cap = 50

[events."Job Viewed"]
pillar = "entrance"
points = 2
daily_cap = 50

[events."Article Read"]
pillar = "activity"
points = 4

[events."Webinar Attended"]
pillar = "activity"
points = 12

[events."Application Submitted"]
pillar = "interaction"
points = 40

[events."Newsletter Unsubscribed"]
pillar = "interaction"
points = -10
"""
