"""``engagement rules check FILE``: validate a score template, name every problem, summarise it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from engagement.model.rules import Rules, RulesError, load_rules, problems_of


def run(argv: Sequence[str]) -> int:
    """Exit code 0 when every file is a valid template, 1 otherwise."""
    parser = argparse.ArgumentParser(prog="engagement rules")
    sub = parser.add_subparsers(dest="action", required=True)
    check = sub.add_parser("check", help="validate a rules TOML file and print a summary")
    check.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(list(argv))
    console = Console(highlight=False, soft_wrap=True)
    return max(check_file(path, console=console) for path in args.files)


def check_file(path: Path, *, console: Console) -> int:
    """Print the problems (``FILE:LINE: field: message``) or a summary; 0 when valid."""
    try:
        rules = load_rules(path)
    except FileNotFoundError:
        console.print(f"{path}: error: file not found")
        return 1
    except RulesError as exc:
        for problem in problems_of(exc, path.read_text(encoding="utf-8")):
            where = f"{path}:{problem.line}" if problem.line else str(path)
            console.print(f"{where}: error: {problem.field}: {problem.message}")
        console.print(f"{path}: {len(exc.problems)} problem(s); the file was not accepted")
        return 1
    console.print(f"{path}: OK")
    console.print(summary(rules))
    return 0


def summary(rules: Rules) -> Table:
    """A table of the template: header values, tiers, job tiers, channels, events."""
    table = Table(title=f"rules {rules.version}", show_lines=False)
    for column in ("section", "name", "pillar / enter", "points / exit", "daily cap"):
        table.add_column(column)
    table.add_row("model", "half-life", f"{rules.half_life_days:g} days", "", "")
    table.add_row("model", "score scale", f"{rules.score_scale:g}", "", "")
    for tier in rules.tiers:
        alert = " (alert)" if tier.name == rules.alert_tier else ""
        table.add_row("tier", tier.name + alert, str(tier.enter), str(tier.exit), "")
    if rules.job_tiers is None:  # the tiers of (candidate, job) profiles
        table.add_row("job", "tiers as above", "", "", "")
    for tier in rules.job_tiers or ():
        alert = " (alert)" if tier.name == rules.alert_tier else ""
        table.add_row("job", f"tier {tier.name}{alert}", str(tier.enter), str(tier.exit), "")
    for channel, multiplier in rules.channels.items():
        table.add_row("channel", channel, "", f"x{multiplier:g}", "")
    for name, event in rules.events.items():
        cap = "" if event.daily_cap is None else str(event.daily_cap)
        table.add_row("event", name, event.pillar, f"{event.points:g}", cap)
    return table
