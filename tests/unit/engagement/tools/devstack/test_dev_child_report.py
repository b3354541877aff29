"""What `engagement dev` says when a child dies: how it ended, and its errors before its chatter."""

from __future__ import annotations

import signal
from pathlib import Path

from engagement.tools.devstack.children import Child
from engagement.tools.devstack.supervisor import _last_lines, how_it_ended


def test_a_child_killed_by_a_signal_is_reported_as_killed_not_as_an_exit_code() -> None:
    assert how_it_ended(-signal.SIGKILL).startswith("was killed by SIGKILL")
    assert "out-of-memory" in how_it_ended(-signal.SIGKILL)
    assert how_it_ended(-signal.SIGTERM) == "was killed by SIGTERM"
    assert how_it_ended(3) == "exited with code 3"


def test_the_errors_of_a_dead_child_come_before_its_last_chatter(tmp_path: Path) -> None:
    log = tmp_path / "scorer.log"
    lines = [
        "[INFO] started",
        "[ERROR] redis call failed: WRONGPASS",
        *[f"[INFO] {k}" for k in range(30)],
    ]
    log.write_text("\n".join(lines))
    report = _last_lines(Child("scorer", [], {}, log))
    assert report.startswith("its last errors:") and "WRONGPASS" in report
    assert "[INFO] 29" not in report
    quiet = tmp_path / "quiet.log"
    quiet.write_text("[INFO] a\n[INFO] b")
    assert _last_lines(Child("ingest", [], {}, quiet)) == "its last log lines:\n[INFO] a\n[INFO] b"
