"""`make bench` keeps working: each benchmark runs to its end on a tiny load and prints its
figures beside their references, and leaves no key in the shared Redis.

No figure is checked (a test never asserts a timing); what is checked is that a benchmark does
not break, hang or leave data behind as the code under it changes, as the stage benchmark once
did (it retried a failing call forever) and the alert benchmark (it left 4,000 keys behind).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
WITHIN = 200  # seconds a benchmark gets on its tiny load (it takes 1-20 s); under the test timeout
TINY = {
    "ingest.py": ["--events", "2000", "--workers", "1"],
    "scorer.py": [
        "--events", "3000", "--naive-events", "300", "--candidates", "300",
        "--seconds", "1", "--rate", "200", "--memory-candidates", "200",
    ],
    "scorer_stages.py": ["--events", "3000", "--candidates", "300", "--rounds", "1"],
    "alerts.py": ["--seconds", "1", "--rate", "20", "--burst", "40"],
    "erasure_fences.py": ["--batches", "20"],
    "tier_sets.py": ["--moves", "200"],
}  # fmt: skip
PRINTS = {  # the lines that give each benchmark's figures beside their references
    "ingest.py": ["ingest /v1/batch :", "raw aiokafka     :", "summary: ingest/raw ratio"],
    "scorer.py": [
        "ours   (scorer, 1 worker process)",
        "(a)    raw aiokafka consume + decode",
        "(b)    pipelined Lua straight to Redis",
        "(c)    naive Faust agent, 1 call/event",
        "ours / min(a, b) =",
        "end-to-end (HTTP received -> score in Redis)",
        "Redis bytes per candidate",
        "scorer RSS over",
    ],
    "scorer_stages.py": [
        "parse    raw bytes -> Interaction",
        "fenced   the handler",
        "handler / store =",
    ],
    "alerts.py": [
        "record produced -> alert published: n=20/20",
        "webhook received: n=20/20",
        "fast endpoint           : 40/40 delivered",
        "10% failures (500)      : 40/40 delivered",
        "fast beside a 2 s one   : 40/40 delivered",
        "meanwhile the 2 s endpoint answered",
    ],
    "erasure_fences.py": ["  cache  ", "  hmget, new ids  "],
    "tier_sets.py": ["   8 members: listpack", " 127 members: listpack"],
}


def makefile_benchmarks() -> list[str]:
    """The benchmarks `make bench` runs, in order."""
    recipe = (ROOT / "Makefile").read_text().split("\nbench:", 1)[1].split("\n\n", 1)[0]
    return [line.split("bench/", 1)[1].strip() for line in recipe.splitlines() if "bench/" in line]


def test_every_benchmark_of_make_bench_is_run_here() -> None:
    assert makefile_benchmarks() == list(TINY)


@pytest.mark.timeout(WITHIN + 60)
@pytest.mark.parametrize("bench", list(TINY))
def test_a_benchmark_runs_to_its_end_and_prints_its_figures(
    bench: str, redis_url: str, redis_prefix: str
) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / bench), *TINY[bench]],
        cwd=ROOT,
        env={**os.environ, "REDIS_URL": redis_url, "BENCH_KEY_PREFIX": redis_prefix},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=WITHIN)
    except subprocess.TimeoutExpired:  # interrupted, it stops the broker and Redis it started
        os.killpg(proc.pid, signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            stdout, stderr = "", ""
        pytest.fail(f"{bench} did not end within {WITHIN} s:\n{(stdout + stderr)[-3000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = stdout + stderr
    assert proc.returncode == 0, output[-3000:]
    missing = [line for line in PRINTS[bench] if line not in stdout]
    assert not missing, f"{bench} printed none of {missing}:\n{output[-3000:]}"
    assert "call failed" not in output, output[-3000:]
    with redis.Redis.from_url(redis_url) as client:
        assert list(client.scan_iter(match=f"{redis_prefix}*")) == []
