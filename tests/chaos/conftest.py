"""Print the chaos figures in the session's summary, also when output is captured."""

from __future__ import annotations

from typing import Any

from tests.chaos.report import LINES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if LINES:
        terminalreporter.section("chaos")
        for line in LINES:
            terminalreporter.write_line(line)
