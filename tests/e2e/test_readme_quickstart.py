"""The README's quick start, followed word for word: `make run`, then its curl commands.

It uses the default ports of `make run` (8080 HTTP, 9092 Kafka, 8090 webhook receiver), as a
newcomer would; the test fails with a clear message when one of them is already taken.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from engagement.tools.localstack import port_open, redis_answers

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PORTS = (8080, 9092, 8090)
READY_WITHIN = 240.0


def quick_start_blocks() -> list[str]:
    """Return the shell code blocks of the README's "Quick start" section, in order."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


@pytest.fixture
def make_run() -> Iterator[list[str]]:
    taken = [port for port in DEFAULT_PORTS if port_open("127.0.0.1", port)]
    assert not taken, f"the quick start needs ports {DEFAULT_PORTS}; taken here: {taken}"
    commands = [line.split("#")[0].strip() for line in quick_start_blocks()[0].splitlines()]
    assert "make run" in commands
    prefix = f"quickstart{os.getpid()}:"
    proc = subprocess.Popen(
        ["make", "run"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "REDIS_KEY_PREFIX": prefix}, start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        yield lines
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        finally:
            _delete_keys(prefix)  # the machine's Redis outlives the test


def _delete_keys(prefix: str) -> None:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if not redis_answers(url):  # none: `make run` started a private one, gone with its keys
        return
    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
    finally:
        client.close()


def _wait_ready(lines: list[str]) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        if any(line.startswith("ready: http://127.0.0.1:8080") for line in list(lines)):
            return
        time.sleep(0.5)
    raise AssertionError("no ready line from `make run`:\n" + "".join(lines[-40:]))


def test_quick_start_commands_work_word_for_word(make_run: list[str]) -> None:
    # given `make run`, as the README says
    _wait_ready(make_run)
    # when the README's curl commands run exactly as written
    curls = [line for line in quick_start_blocks()[1].replace("\\\n", " ").splitlines() if line]
    tracked = _run_json(curls[0])
    candidate = _retry_until(lambda: _run_json(curls[1]), lambda body: "candidateId" in body)
    leaderboard = _run_json(curls[2])
    # then the event is accepted, and the candidate is readable with a score
    assert tracked["success"] is True and tracked["accepted"] == 1
    assert candidate["candidateId"] == "cand-42" and candidate["score"] >= 1
    assert isinstance(leaderboard["candidates"], list)


def _run_json(command: str) -> dict[str, Any]:
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"{command!r} failed: {done.stderr}"
    body: dict[str, Any] = json.loads(done.stdout)
    return body


def _retry_until(
    call: Callable[[], dict[str, Any]], ok: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Repeat a read as a person would while the score is computed (a second or two)."""
    deadline = time.monotonic() + 30
    body = call()
    while not ok(body) and time.monotonic() < deadline:
        time.sleep(0.5)
        body = call()
    return body
