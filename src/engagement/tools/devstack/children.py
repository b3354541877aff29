"""Child processes of the dev stack: started with their own log file, stopped politely."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from engagement.tools.localstack import die_with_parent


@dataclass
class Child:
    """One service process (`engagement <command>`), its environment and its log."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None)

    def start(self) -> Child:
        """Start ``python -m engagement.cli <args>`` in its own session (Ctrl-C reaches only us)."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "engagement.cli", *self.args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,  # gone with us, however we end
            )
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    def exit_code(self) -> int | None:
        """Return the exit code once the process has ended, else None."""
        return None if self.proc is None else self.proc.poll()

    def stop(self, timeout: float = 12.0) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL the process group; return the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _kill_group(self.proc.pid)
                self.proc.wait(5)
        _kill_group(self.proc.pid)  # anything the child left behind in its session
        return self.proc.returncode

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines of the child's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
