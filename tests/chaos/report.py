"""Figures of the chaos runs of this session, printed at its end (``conftest.py``)."""

from __future__ import annotations

LINES: list[str] = []


def say(line: str = "") -> None:
    """Print ``line`` now (seen with ``-s``) and keep it for the session's summary."""
    print(line, flush=True)
    LINES.append(line)
