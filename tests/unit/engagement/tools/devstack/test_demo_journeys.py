"""Demo journeys (engagement dev): realistic, scored by the default template, some turn hot."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from engagement.model.rules import Rules, load_rules
from engagement.model.scoring import score_of
from engagement.tools.devstack.journeys import CHANNELS, new_journey

ROOT = Path(__file__).resolve().parents[5]
RULES = load_rules(ROOT / "config" / "dev" / "rules.toml")
SEEDS = range(40)


def _points(step: dict[str, Any], rules: Rules) -> float:
    name = "Page Viewed" if step["type"] == "page" else step.get("event")
    rule = rules.events.get(name) if name else None
    return (
        0.0
        if rule is None
        else rule.points * rules.channels.get(step["properties"]["channel"], 1.0)
    )


def _journeys(persona: str) -> list[Any]:
    found = []
    for seed in SEEDS:
        rng = random.Random(seed)
        found += [
            j for i in range(60) if (j := new_journey(rng, run="t", index=i)).persona == persona
        ]
    return found


def _threshold(name: str, field: str) -> int:
    tier = next(t for t in RULES.tiers if t.name == name)
    return int(getattr(tier, field))


def test_every_tracked_event_is_in_the_default_template():
    for persona in ("browser", "reader", "subscriber", "applicant", "cooler"):
        for journey in _journeys(persona):
            names = {s["event"] for s in journey.steps if s["type"] == "track"}
            assert names <= set(RULES.events), names - set(RULES.events)


def test_every_event_carries_an_id_and_a_known_channel():
    for journey in _journeys("subscriber") + _journeys("browser"):
        for step in journey.steps:
            assert step.get("userId") or step.get("anonymousId")
            assert step["type"] == "identify" or step["properties"]["channel"] in CHANNELS


def test_the_first_journey_of_a_run_is_an_applicant():
    assert new_journey(random.Random(7), run="t", index=0).persona == "applicant"


@pytest.mark.parametrize("persona", ["browser", "reader"])
def test_anonymous_personas_never_identify(persona):
    for journey in _journeys(persona):
        assert all("userId" not in s for s in journey.steps)
        assert journey.candidate.startswith("anon:")


def test_applicants_end_hot():
    for journey in _journeys("applicant"):
        raw = sum(_points(s, RULES) for s in journey.steps)
        assert score_of(raw, RULES.score_scale) >= _threshold("hot", "enter")


def test_coolers_turn_hot_then_cool_off():
    for journey in _journeys("cooler"):
        points = [_points(s, RULES) for s in journey.steps]
        peak = max(sum(points[: i + 1]) for i in range(len(points)))
        assert score_of(peak, RULES.score_scale) >= _threshold("hot", "enter")
        assert score_of(sum(points), RULES.score_scale) < _threshold("hot", "exit")


def test_browsers_stay_cold():
    for journey in _journeys("browser"):
        raw = sum(_points(s, RULES) for s in journey.steps)
        assert score_of(raw, RULES.score_scale) < _threshold("warm", "enter")
