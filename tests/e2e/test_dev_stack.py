"""`engagement dev`: one command runs the whole pipeline with demo traffic, and stops cleanly.

Also checks, against the running services, that every metric the dashboard and the alert rules
use is exported, and every exported engagement_* metric is on the dashboard or deliberately left out.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from engagement.kafka.topics import CANDIDATE_ALERTS
from engagement.tools.localstack import free_port
from tests.support.kafka import read_topic
from tests.support.services import broker_kind
from tests.unit.deploy import catalog

ENGAGEMENT = Path(sys.executable).with_name("engagement")
WAIT = 240.0  # upper bound for each wait below; the stack normally needs far less


@dataclass
class DevRun:
    """A running `engagement dev --headless` and the lines it printed so far."""

    proc: subprocess.Popen[str]
    http_port: int
    kafka_port: int
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, matches: Callable[[str], bool]) -> str:
        """Return the first line (already printed or new) that ``matches``; fail if the run ends."""
        found = next((line for line in self.lines if matches(line)), None)
        deadline = time.monotonic() + WAIT
        while found is None and time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=1.0)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError("engagement dev ended early:\n" + "\n".join(self.lines[-40:]))
            self.lines.append(line)
            found = line if matches(line) else None
        assert found is not None, "line not printed:\n" + "\n".join(self.lines[-40:])
        return found

    def finish(self) -> int:
        """Ctrl-C, wait for the exit and collect the remaining output."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=120)
        while (line := self._queue.get(timeout=30)) is not None:
            self.lines.append(line)
        return code


@pytest.fixture(scope="module")
def dev_run(redis_url: str) -> Iterator[DevRun]:
    """One `engagement dev` for this module; the last test stops it with Ctrl-C."""
    prefix = f"test:dev{uuid.uuid4().hex[:8]}:"
    http_port, kafka_port = free_port(), free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix}
    env.update(DEV_STATUS_INTERVAL="2", KAFKA_TOPIC_PREFIX="")
    args = ["dev", "--headless", "--duration", "600", "--rate", "40"]
    args += ["--http-port", str(http_port), "--kafka-port", str(kafka_port)]
    args += ["--receiver-port", str(free_port())]
    args += ["--broker", "kafka" if broker_kind() == "kafka" else "tansu"]  # the session's kind
    proc = subprocess.Popen(
        [str(ENGAGEMENT), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run = DevRun(proc, http_port, kafka_port)
    threading.Thread(target=run.pump, daemon=True).start()
    try:
        yield run
    finally:
        if proc.poll() is None:
            run.finish()
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
        client.close()


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def _hot_alert_on_kafka(bootstrap: str, candidate: str) -> list[dict]:
    def hot(records) -> bool:
        return any(json.loads(r.value).get("candidateId") == candidate for r in records)

    records = asyncio.run(read_topic(bootstrap, CANDIDATE_ALERTS, until=hot, timeout=60))
    values = [json.loads(r.value) for r in records]
    return [v for v in values if v["candidateId"] == candidate and v["type"] == "candidate.hot"]


def _exported_families(url: str) -> set[str]:
    response = httpx.get(url + "/metrics", timeout=10)
    assert response.status_code == 200, f"{url}/metrics answered {response.status_code}"
    # prometheus-client also exposes `<name>_created` series; they belong to <name>
    return {catalog.family_of(f.name) for f in text_string_to_metric_families(response.text)}


def test_running_services_export_every_metric_the_dashboard_and_alerts_use(dev_run: DevRun):
    # given the running dev stack
    dev_run.wait_for(lambda line: line.startswith("ready: "))
    ports = {
        name: int(m.group(1))
        for line in dev_run.lines
        for name in ("scorer", "notifier")
        if (m := re.search(rf"^{name} metrics: http://127\.0\.0\.1:(\d+)/metrics", line))
    }
    urls = {"ingest": dev_run.base_url} | {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    assert set(urls) == {"ingest", "scorer", "notifier"}
    dev_run.wait_for(lambda line: "scorer=ready" in line and "notifier=ready" in line)

    # when their /metrics are scraped
    exported = {name: _exported_families(url) for name, url in urls.items()}

    # then each service exports the families the catalogue lists for it
    for name, families in exported.items():
        assert set(catalog.families(name)) <= families, (
            name,
            set(catalog.families(name)) - families,
        )
    # and every exported engagement_* family is on the dashboard or deliberately left out
    ours = {f for families in exported.values() for f in families if f.startswith("engagement_")}
    shown = catalog.used_families() | set(catalog.catalog()["left_out"])
    assert ours - shown == set()


def test_dev_stack_runs_the_pipeline_with_demo_traffic_and_stops_cleanly(dev_run: DevRun):
    # given `engagement dev` started with free ports, when it is ready
    ready = dev_run.wait_for(lambda line: line.startswith("ready: "))
    assert ready == f"ready: {dev_run.base_url}"

    # then demo events are accepted through the public API
    dev_run.wait_for(lambda line: re.search(r"\baccepted [1-9]\d*\b", line) is not None)
    own = httpx.post(
        dev_run.base_url + "/v1/batch",
        auth=("dev_write_key", ""),
        json={"batch": [{"type": "track", "event": "Job Viewed", "anonymousId": "e2e-visitor"}]},
        timeout=30,
    )
    assert own.status_code == 200 and own.json()["accepted"] == 1

    # and the local receiver verifies a signed candidate.hot webhook
    line = dev_run.wait_for(lambda text: text.startswith("webhook verified: candidate.hot "))
    candidate = line.split()[3].split("/", 1)[1]

    # and the candidate's score is readable through the read API
    view = httpx.get(
        f"{dev_run.base_url}/v1/candidates/{candidate}",
        headers={"Authorization": "Bearer dev_read_key"},
        timeout=10,
    )
    assert view.status_code == 200
    assert 1 <= view.json()["score"] <= 100 and view.json()["pillars"]

    # and the same alert is on the alerts topic
    assert _hot_alert_on_kafka(f"127.0.0.1:{dev_run.kafka_port}", candidate)

    # when Ctrl-C is pressed, then everything stops and no child process is left behind
    code = dev_run.finish()
    assert code == 0, "\n".join(dev_run.lines[-40:])
    assert dev_run.lines[-1] == "stopped"
    assert sum(line.startswith("ready: ") for line in dev_run.lines) == 1
    pids = [int(p) for line in dev_run.lines for p in re.findall(r"^started: .* pid=(\d+)", line)]
    assert len(pids) >= 4  # kafka, ingest, scorer, notifier (+ redis when one was started)
    assert [pid for pid in pids if _alive(pid)] == []
