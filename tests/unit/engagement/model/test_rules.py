"""The score template: the shipped files are valid, broken ones are refused with named fields."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from engagement.model.rules import RulesError, load_rules, parse_rules
from engagement.tools.rules_cli import run

ROOT = Path(__file__).resolve().parents[4]
SHIPPED = [ROOT / "config" / "rules.toml", ROOT / "config" / "dev" / "rules.toml"]
DEFAULT_POINTS = {
    "Page Viewed": ("entrance", 1, 10),
    "Job Viewed": ("entrance", 2, 10),
    "Ad Clicked": ("entrance", 3, 5),
    "Email Link Clicked": ("entrance", 3, None),
    "Social Post Engaged": ("entrance", 2, 5),
    "Article Read": ("activity", 4, 5),
    "Video Watched": ("activity", 6, None),
    "Content Downloaded": ("activity", 8, None),
    "Webinar Registered": ("activity", 8, None),
    "Webinar Attended": ("activity", 12, None),
    "Social Post Shared": ("activity", 6, None),
    "Job Alert Subscribed": ("interaction", 15, None),
    "Newsletter Subscribed": ("interaction", 15, None),
    "Event Registered": ("interaction", 15, None),
    "Contact Form Submitted": ("interaction", 20, None),
    "Application Started": ("interaction", 20, None),
    "Application Submitted": ("interaction", 40, None),
    "Lead Form Submitted": ("interaction", 30, None),  # platform lead forms (docs/hooks.md)
    "Job Alert Unsubscribed": ("interaction", -15, None),
    "Newsletter Unsubscribed": ("interaction", -10, None),
}


def _template() -> dict:  # type: ignore[type-arg]
    return tomllib.loads(SHIPPED[0].read_text())


@pytest.mark.parametrize("path", SHIPPED, ids=["config", "config-dev"])
def test_shipped_template_is_the_design_default_plus_platform_leads(path: Path) -> None:
    rules = load_rules(path)
    assert (rules.half_life_days, rules.score_scale, rules.alert_tier) == (30.0, 50.0, "hot")
    assert [(t.name, t.enter, t.exit) for t in rules.tiers] == [
        ("cold", 1, 1),
        ("warm", 40, 35),
        ("hot", 70, 65),
    ]
    actual = {n: (e.pillar, e.points, e.daily_cap) for n, e in rules.events.items()}
    assert actual == DEFAULT_POINTS


def test_half_life_seconds_is_days_times_86400() -> None:
    assert load_rules(SHIPPED[0]).half_life_seconds == 30 * 86400


def test_exit_above_enter_is_refused() -> None:
    data = _template()
    data["tiers"][1]["exit"] = 45
    with pytest.raises(RulesError, match="exit"):
        parse_rules(data)


def test_tiers_that_decay_could_skip_are_refused() -> None:
    data = _template()
    data["tiers"][2]["exit"] = 30  # below warm's enter 40
    with pytest.raises(RulesError) as caught:
        parse_rules(data)
    assert caught.value.problems[0][0] == ("tiers", 2, "exit")


def test_unknown_alert_tier_and_pillar_are_refused() -> None:
    data = _template()
    data["alert_tier"] = "blazing"
    data["events"]["Page Viewed"]["pillar"] = "fun"
    with pytest.raises(RulesError) as caught:
        parse_rules(data)
    assert ("events", "Page Viewed", "pillar") in [loc for loc, _ in caught.value.problems]


def test_first_tier_must_be_the_floor() -> None:
    data = _template()
    data["tiers"][0]["enter"] = 5
    data["tiers"][0]["exit"] = 5
    with pytest.raises(RulesError, match="floor"):
        parse_rules(data)


def test_non_positive_half_life_is_refused() -> None:
    data = _template()
    data["half_life_days"] = 0
    with pytest.raises(RulesError, match="half_life_days"):
        parse_rules(data)


@pytest.mark.parametrize("path", SHIPPED, ids=["config", "config-dev"])
def test_rules_check_accepts_the_shipped_files(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "Application Submitted" in out


def test_rules_check_names_the_line_and_field_of_a_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = SHIPPED[0].read_text().replace("exit = 65", "exit = 80")
    broken = tmp_path / "rules.toml"
    broken.write_text(text)
    line = text.splitlines().index("exit = 80") + 1
    assert run(["check", str(broken)]) == 1
    out = capsys.readouterr().out
    assert f"{broken}:{line}: error: tiers[2]" in out
    assert "exit" in out


def test_rules_check_reports_toml_syntax_errors_with_their_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "rules.toml"
    broken.write_text('version = "v"\nhalf_life_days = = 3\n')
    assert run(["check", str(broken)]) == 1
    assert f"{broken}:2: error" in capsys.readouterr().out
