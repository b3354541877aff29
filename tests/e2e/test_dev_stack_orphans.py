"""`engagement dev` leaves no process behind, however it ends: Ctrl-C after the pipe it prints to
is gone (`make run | tee log`, Ctrl-C ends tee too), and a SIGKILL of `engagement dev` itself."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from engagement.tools.localstack import free_port
from tests.e2e.test_dev_stack import ENGAGEMENT, WAIT, _alive


@pytest.fixture
def dev(redis_url: str) -> Iterator[subprocess.Popen[str]]:
    prefix = f"test:orphans{uuid.uuid4().hex[:8]}:"
    env = {**os.environ, "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix}
    env.update(DEV_STATUS_INTERVAL="1", KAFKA_TOPIC_PREFIX="")
    args = ["dev", "--headless", "--duration", "600", "--rate", "20"]
    args += ["--http-port", str(free_port()), "--kafka-port", str(free_port())]
    args += ["--receiver-port", str(free_port())]
    proc = subprocess.Popen(
        [str(ENGAGEMENT), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
        client.close()


def started_until_ready(proc: subprocess.Popen[str]) -> list[int]:
    """The pids of the children `engagement dev` started, read until it is ready."""
    assert proc.stdout is not None
    pids: list[int] = []
    deadline = time.monotonic() + WAIT
    for line in proc.stdout:
        pids += [int(p) for p in re.findall(r"^started: .* pid=(\d+)", line)]
        if line.startswith("ready: ") or time.monotonic() > deadline:
            break
    assert len(pids) >= 4, pids  # broker, ingest, scorer, notifier (+ redis, receiver)
    return pids


def left_behind(pids: list[int], within: float = 30.0) -> list[int]:
    deadline = time.monotonic() + within
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return [pid for pid in pids if _alive(pid)]


def test_ctrl_c_after_the_output_pipe_is_gone_stops_every_child(
    dev: subprocess.Popen[str],
) -> None:
    # given `engagement dev` ready, printing to a pipe whose reader then goes away (tee)
    pids = started_until_ready(dev)
    assert dev.stdout is not None
    dev.stdout.close()
    time.sleep(2)  # it prints a status line every second: into the broken pipe
    # when Ctrl-C reaches it
    dev.send_signal(signal.SIGINT)
    dev.wait(WAIT)
    # then no child of it is left
    assert left_behind(pids) == []


def test_a_killed_dev_stack_takes_its_children_along(dev: subprocess.Popen[str]) -> None:
    # given `engagement dev` ready
    pids = started_until_ready(dev)
    # when it is killed outright (no chance to stop anything)
    dev.kill()
    dev.wait(30)
    # then its children end too (the kernel tells them: PR_SET_PDEATHSIG)
    assert left_behind(pids) == [], [
        Path(f"/proc/{p}/cmdline").read_bytes() for p in pids if _alive(p)
    ]
