"""``engagement rules check``: the summary of a valid template names its job tiers too."""

from __future__ import annotations

from pathlib import Path

import pytest

from engagement.tools.rules_cli import run

ROOT = Path(__file__).resolve().parents[4]
JOB_TIERS = """
[[job_tiers]]
name = "cold"
enter = 1
exit = 1

[[job_tiers]]
name = "hot"
enter = 55
exit = 50
"""


def _rows(out: str, section: str) -> list[list[str]]:
    """The cells of the summary's rows of one section."""
    cells = ([c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines())
    return [row for row in cells if row and row[0] == section]


def test_rules_check_prints_the_templates_job_tiers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = tmp_path / "rules.toml"
    template.write_text((ROOT / "config" / "rules.toml").read_text() + JOB_TIERS)
    assert run(["check", str(template)]) == 0
    rows = _rows(capsys.readouterr().out, "job")
    assert [row[1:4] for row in rows] == [
        ["tier cold", "1", "1"], ["tier hot (alert)", "55", "50"]
    ]  # fmt: skip


def test_rules_check_says_a_template_without_job_tiers_uses_its_tiers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["check", str(ROOT / "config" / "rules.toml")]) == 0
    rows = _rows(capsys.readouterr().out, "job")
    assert [row[1] for row in rows] == ["tiers as above"]
