"""`engagement ingest --workers 2`: every process answers /metrics with the service's totals."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engagement.tools.localstack import free_port
from tests.integration.ingest.conftest import WRITE_KEY, basic

REQUESTS = 60
SCRAPES = 8


@pytest.fixture
def two_workers(
    kafka_bootstrap, redis_url, topic_prefix, redis_prefix, sources_file
) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": topic_prefix,
        "KAFKA_TOPIC_PARTITIONS": "3",
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": redis_prefix,
        "SOURCES_FILE": str(sources_file),
        "INGEST_SHUTDOWN_TIMEOUT_SECONDS": "3",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [str(Path(sys.executable).with_name("engagement")), "ingest", "--workers", "2"]
    proc = subprocess.Popen([*command, "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "ingest exited during startup"
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("ingest --workers 2 did not become ready")


def _sent(url: str, event: dict[str, object]) -> httpx.Response:
    """POST ``event``, again while the process that took it answers 503 (/readyz answered for one
    process: the other may still be connecting its Kafka producer, and says so with a 503 that a
    client retries)."""
    deadline = time.monotonic() + 30
    while True:
        response = httpx.post(url, json=event, headers=basic(WRITE_KEY))
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def _tracked(metrics: str) -> float:
    """Requests answered by /v1/track (200), summed over the exposition's samples."""
    pattern = (
        r'^engagement_ingest_requests_total\{endpoint="/v1/track",reason="",status="200"\} (\S+)$'
    )
    return sum(float(v) for v in re.findall(pattern, metrics, re.M))


def test_each_process_scrapes_the_totals_of_all_processes(two_workers: str) -> None:
    event = {"type": "track", "event": "Job Viewed", "anonymousId": "a1", "properties": {}}
    for _ in range(REQUESTS):  # a new connection each: the kernel spreads them over both processes
        response = _sent(f"{two_workers}/v1/track", event)
        assert response.status_code == 200
    seen = set()
    for _ in range(SCRAPES):  # new connections again: the scrapes reach both processes too
        seen.add(_tracked(httpx.get(f"{two_workers}/metrics").text))
    assert seen == {REQUESTS}
