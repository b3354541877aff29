"""Run the scorer as a real subprocess (``engagement scorer``) against the test broker and Redis."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from engagement.tools.localstack import free_port

ENGAGEMENT = str(Path(sys.executable).with_name("engagement"))
# Tansu makes a group join wait for the rebalance timeout: keep every broker timeout short.
TANSU_TIMEOUTS = {
    "SCORER_SESSION_TIMEOUT": "6",
    "SCORER_HEARTBEAT_INTERVAL": "1",
    "SCORER_REBALANCE_TIMEOUT": "6",
    "SCORER_REQUEST_TIMEOUT": "30",
}


@dataclass
class ScorerProcess:
    """A running ``engagement scorer`` child process."""

    proc: subprocess.Popen[bytes]
    web: str
    log_path: Path

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no final commit (what a crash or OOM kill does)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait for the warm shutdown (SIGKILL after 20 s)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def metrics(self) -> str:
        return httpx.get(f"{self.web}/metrics", timeout=10).text


def scorer_env(
    *, kafka: str, redis_url: str, topic_prefix: str, redis_prefix: str, rules_file: Path, port: int
) -> dict[str, str]:
    """Return the environment of a scorer process for one test's topics and keys."""
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "REDIS_URL": redis_url,
        "KAFKA_TOPIC_PREFIX": topic_prefix,
        "KAFKA_TOPIC_PARTITIONS": "3",
        "REDIS_KEY_PREFIX": redis_prefix,
        "RULES_FILE": str(rules_file),
        "SCORER_WEB_PORT": str(port),
        "SCORER_WEB_HOST": "127.0.0.1",
        "SCORER_DATA_DIR": tempfile.mkdtemp(prefix="engagement-scorer-test-"),
        **TANSU_TIMEOUTS,
    }


@contextlib.contextmanager
def running_scorer(env: dict[str, str], *, timeout: float = 60.0) -> Iterator[ScorerProcess]:
    """Start the scorer, wait until it owns its partitions (/readyz 200), stop it afterwards."""
    scorer = start_scorer(env, timeout=timeout)
    try:
        yield scorer
    finally:
        scorer.stop()


def start_scorer(env: dict[str, str], *, timeout: float = 60.0) -> ScorerProcess:
    """Start ``engagement scorer`` with ``env`` and return once /readyz answers 200."""
    log_path = Path(tempfile.mkstemp(prefix="scorer-", suffix=".log")[1])
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [ENGAGEMENT, "scorer"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    scorer = ScorerProcess(proc, f"http://127.0.0.1:{env['SCORER_WEB_PORT']}", log_path)
    _wait_ready(scorer, timeout)
    return scorer


def new_port() -> int:
    return free_port()


def _wait_ready(scorer: ScorerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if scorer.proc.poll() is not None:
            raise RuntimeError(f"scorer exited with {scorer.proc.returncode}:\n{scorer.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{scorer.web}/readyz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.2)
    scorer.kill()
    raise RuntimeError(f"scorer not ready after {timeout}s:\n{scorer.log_tail()}")
