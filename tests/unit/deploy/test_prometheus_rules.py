"""promtool accepts the scrape config and the alert rules, and the rules' unit tests pass.

promtool comes from Debian's `prometheus` package, which scripts/system_deps.sh installs (make
test runs it). deploy/prometheus/alerts_test.yml holds the cases: series in, alerts out.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
RULE_TESTS = PROMETHEUS / "alerts_test.yml"
RUNBOOK_BASE = "https://github.com/OWNER/REPO/blob/main/docs/operations.md"


def _promtool(*args: str) -> str:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: run scripts/system_deps.sh (Debian package prometheus)"
    done = subprocess.run(
        [promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_accepts_the_scrape_config_from_the_repository():
    _promtool("check", "config", "prometheus.yml")


def test_promtool_accepts_the_alert_rules():
    _promtool("check", "rules", "alerts.yml")


def test_the_alert_rules_unit_tests_pass():
    _promtool("test", "rules", "alerts_test.yml")


def test_every_rule_has_a_case_in_which_it_fires():
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {
        check["alertname"]
        for case in cases
        for check in case.get("alert_rule_test", [])
        if check.get("exp_alerts")
    }
    assert {rule["alert"] for rule in _rules()} - fired == set()


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: rule["alert"])
def test_every_rule_links_its_runbook_section_by_an_absolute_url(rule):
    url = rule["annotations"]["runbook_url"]
    assert url == f"{RUNBOOK_BASE}#{rule['alert'].lower()}"
    guide = (ROOT / "docs" / "operations.md").read_text()
    headings = {_anchor(h) for h in re.findall(r"^#+ (.+)$", guide, re.M)}
    assert rule["alert"].lower() in headings


def test_the_runbook_base_is_named_once_in_the_rules_header():
    text = RULES.read_text()
    assert f"# RUNBOOK_BASE: {RUNBOOK_BASE}\n" in text
    assert "RUNBOOK_BASE" in (ROOT / "docs" / "operations.md").read_text()


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
