"""Outages as the alert rules see them: the metrics the services export under a Redis outage fire
the Redis alert and not the Kafka one (ingest alone with no Redis at all; the whole stack with its
Redis stopped under load, which drains once Redis is back), and worker liveness does not depend
on Redis."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import time
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from engagement.tools.localstack import free_port
from services.ingest.app import create_app
from tests.chaos import checks, observe
from tests.chaos import stack as stack_keys
from tests.chaos.load import make_events
from tests.chaos.stack import Stack, running_stack
from tests.integration.ingest.conftest import ingest_settings
from tests.integration.scorer.expected import Sent
from tests.integration.scorer.harness import ENGAGEMENT, scorer_env
from tests.integration.scorer.pipeline import track
from tests.support.server import serve

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
WRITE_KEY, READ_KEY = "wk_outage", "rk_outage"
ROUNDS = 8  # scrapes, one a minute in the rules' test


def _sources(path: Path, tenant: str) -> Path:
    path.write_text(
        f'[[sources]]\nsource_id = "site"\ntenant_id = "{tenant}"\nchannel = "web"\n'
        f'write_key = "{WRITE_KEY}"\n\n[[read_keys]]\nkey = "{READ_KEY}"\ntenant_id = "{tenant}"\n'
    )
    return path


def _samples(text: str, family: str, **labels: str) -> dict[str, float]:
    """Series text (promtool's notation) -> value, of the counter ``family`` in a /metrics page,
    with ``labels`` added (the target's job and instance, as Prometheus adds them)."""
    return {
        sample.name
        + "{"
        + ",".join(f'{k}="{v}"' for k, v in sorted({**sample.labels, **labels}.items()))
        + "}": sample.value
        for metrics in text_string_to_metric_families(text)
        if metrics.name == family
        for sample in metrics.samples
        if sample.name.endswith("_total")
    }


def _request_samples(text: str) -> dict[str, float]:
    """The samples of engagement_ingest_requests_total."""
    return _samples(text, "engagement_ingest_requests")


def _scrapes_under_a_redis_outage(base: str) -> list[dict[str, float]]:
    """Each round: events written, the tiers read (Redis down), /metrics scraped."""
    scrapes = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for n in range(ROUNDS):
            for k in range(5):
                event = {
                    "type": "track",
                    "userId": f"u{k}",
                    "event": "Job Viewed",
                    "messageId": f"m{n}-{k}",
                }
                assert client.post("/v1/track", json=event, auth=(WRITE_KEY, "")).status_code == 200
            tiers = client.get("/v1/tiers", headers={"Authorization": f"Bearer {READ_KEY}"})
            assert tiers.status_code == 503
            assert tiers.json()["error"]["code"] == "redis_unavailable"
            scrapes.append(_request_samples(client.get("/metrics").text))
    return scrapes


def _alert(name: str) -> dict[str, Any]:
    """The labels and annotations promtool expects of the rule ``name`` when it fires."""
    rule = next(
        r
        for g in yaml.safe_load(RULES.read_text())["groups"]
        for r in g["rules"]
        if r["alert"] == name
    )
    return {"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}


def _rules_test(
    scrapes: list[dict[str, float]],
    expected: list[tuple[int, str, bool]],
    *,
    jobs: tuple[str, ...] = ("ingest",),
) -> dict[str, object]:
    """A promtool rules test: scrape k at minute k (``up`` 1 for every job throughout), and for
    each (minute, alert, firing) of ``expected`` whether the alert fires then."""
    values: dict[str, list[str]] = defaultdict(lambda: ["_"] * len(scrapes))
    for minute, scrape in enumerate(scrapes):
        for series, value in scrape.items():
            values[series][minute] = repr(value)
    series = [{"series": s, "values": " ".join(v)} for s, v in sorted(values.items())]
    series += [
        {"series": f'up{{job="{j}",instance="{j}"}}', "values": f"1x{len(scrapes)}"} for j in jobs
    ]
    return {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {
                        "eval_time": f"{minute}m",
                        "alertname": name,
                        "exp_alerts": [_alert(name)] if firing else [],
                    }
                    for minute, name, firing in expected
                ],
            }
        ],
    }


def _promtool_test(tmp_path: Path, rules_test: dict[str, object]) -> None:
    """Run ``promtool test rules`` on ``rules_test``; fail with its output unless it passes."""
    test_file = tmp_path / "outage_test.yml"
    test_file.write_text(yaml.safe_dump(rules_test, sort_keys=False))
    done = subprocess.run(
        ["promtool", "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ingest_metrics_under_a_redis_outage_fire_the_redis_alert_and_not_the_kafka_one(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, unique: str
) -> None:
    # given ingest with Kafka up and nothing listening where its Redis should be
    settings = ingest_settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=topic_prefix,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        sources_file=_sources(tmp_path / "sources.toml", f"acme{unique}"),
        rules_file=ROOT / "config" / "rules.toml",
    )
    # when events are written and scores read through the outage, a scrape after each round
    with serve(create_app(settings), ready_path="/readyz") as base:
        scrapes = _scrapes_under_a_redis_outage(base)
    # then writes never answered 503 and the reads' 503s carry the reason redis_unavailable
    last = scrapes[-1]
    assert (
        last[
            'engagement_ingest_requests_total{endpoint="/v1/track",reason="kafka_unavailable",status="503"}'
        ]
        == 0
    )
    assert (
        last[
            'engagement_ingest_requests_total{endpoint="/v1/tiers",reason="redis_unavailable",status="503"}'
        ]
        == ROUNDS
    )
    # and Prometheus's rules over those samples fire the Redis alert and not the Kafka one
    at = len(scrapes) - 1
    expected = [
        (at, "EngagementRedisUnavailable", True),
        (at, "EngagementIngestUnavailable", False),
    ]
    _promtool_test(tmp_path, _rules_test(scrapes, expected))


def test_a_worker_is_alive_but_not_ready_while_its_redis_does_not_answer(
    kafka_bootstrap: str, topic_prefix: str, redis_prefix: str
) -> None:
    # given a scorer whose Redis is a port where nothing listens
    port = free_port()
    env = scorer_env(
        kafka=kafka_bootstrap,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        topic_prefix=topic_prefix,
        redis_prefix=redis_prefix,
        rules_file=ROOT / "config" / "rules.toml",
        port=port,
    )
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [ENGAGEMENT, "scorer"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            # when its web server answers
            live = _first_answer(f"http://127.0.0.1:{port}/livez", proc, log)
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        finally:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    # then liveness (what Kubernetes restarts on) is 200 and readiness 503, naming Redis
    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"] is False


def _first_answer(url: str, proc: subprocess.Popen[bytes], log: object) -> httpx.Response:
    """Poll ``url`` until the process answers it; fail with the log if the process exits."""
    while True:
        if proc.poll() is not None:
            log.seek(0)  # type: ignore[attr-defined]
            raise AssertionError(
                f"scorer exited with {proc.returncode}:\n{log.read().decode()[-3000:]}"
            )  # type: ignore[attr-defined]
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(url, timeout=2)
        time.sleep(0.2)


# The whole stack through a Redis outage ------------------------------------------------------
# Redis is down (stopped, its port refusing) for OUTAGE_SECONDS while events keep arriving and
# the read API is asked each round; ingest and both scorers are scraped every ROUND_SECONDS, and
# promtool replays the scrapes one minute apart, so the rules' `for:` periods pass within the
# outage. 30 s rather than the 60: it is 6 times the scorer's longest backoff (5 s) and
# the workers' session timeout (6 s), and nothing in the services changes past that before
# Faust's poll interval (1,000 s); what the rules see depends on the number of scrapes, not on
# their spacing.
OUTAGE_SECONDS = 30.0
ROUND_SECONDS = 3.0
ROUND_EVENTS = 20
SCRAPED = {"ingest": "engagement_ingest_requests", "scorer": "engagement_scorer_redis_errors"}


@dataclass
class OutageRun:
    """What the stack answered and exported, scrape by scrape."""

    scrapes: list[dict[str, float]] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)  # per scrape: before, during, after
    acknowledged: dict[str, Sent] = field(default_factory=dict)
    reads: list[tuple[str, int, str]] = field(default_factory=list)  # phase, status, error code
    writes: list[tuple[str, int]] = field(default_factory=list)
    drained_seconds: float = 0.0


def _round(
    stack: Stack, client: httpx.Client, run: OutageRun, phase: str, events: list[Sent]
) -> None:
    """Events written, the tiers read, ingest and the scorers scraped."""
    batch = {"batch": [track(e, user_id=e.candidate) for e in events]}
    written = client.post(f"{stack.base}/v1/batch", json=batch, auth=(stack_keys.WRITE_KEY, ""))
    run.writes.append((phase, written.status_code))
    if written.status_code == 200:
        run.acknowledged.update((e.message_id, e) for e in events)
    tiers = client.get(
        f"{stack.base}/v1/tiers", headers={"Authorization": f"Bearer {stack_keys.READ_KEY}"}
    )
    code = tiers.json().get("error", {}).get("code", "") if tiers.status_code != 200 else ""
    run.reads.append((phase, tiers.status_code, code))
    scrape = _samples(client.get(f"{stack.base}/metrics").text, SCRAPED["ingest"], job="ingest")
    for name in ("a", "b"):
        web = stack.scorer(name).ready_url.removesuffix("/readyz")
        text = client.get(f"{web}/metrics").text
        scrape |= _samples(text, SCRAPED["scorer"], job="scorer", instance=f"scorer-{name}")
    run.scrapes.append(scrape)
    run.phases.append(phase)


def _through_an_outage(stack: Stack) -> OutageRun:
    run = OutageRun()
    events = iter(make_events(2000, 200, seed=21, now=time.time()))
    with httpx.Client(timeout=30) as client:

        def rounds(phase: str, seconds: float) -> None:
            end = time.monotonic() + seconds
            while True:
                began = time.monotonic()
                _round(stack, client, run, phase, [next(events) for _ in range(ROUND_EVENTS)])
                if time.monotonic() >= end:
                    return
                time.sleep(max(0.0, ROUND_SECONDS - (time.monotonic() - began)))

        rounds("before", 2 * ROUND_SECONDS)
        stack.redis.stop()  # SIGTERM: Redis writes its AOF and exits; its port refuses
        rounds("during", OUTAGE_SECONDS)
        stack.redis.start()
        back = time.time()
        quiet = _wait_quiet(stack)
        run.drained_seconds = quiet - back
        rounds("after", ROUND_SECONDS)  # two scrapes once drained: a minute apart in the rules
    return run


def _wait_quiet(stack: Stack, timeout: float = 180.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        quiet = observe.quiet_since(stack, 2.5)
        if quiet is not None:
            return quiet
        time.sleep(0.5)
    raise AssertionError(f"not drained after {timeout:.0f}s: lag {observe.offsets(stack)[0]}")


def _total(scrape: dict[str, float], family: str, **labels: str) -> float:
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(v for s, v in scrape.items() if s.startswith(family) and all(w in s for w in wanted))


def test_a_redis_outage_under_load_pages_redis_not_kafka_and_everything_drains_after(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # given the stack running (ingest, two scorers, the notifier) with a Redis of its own
    with running_stack(kafka_bootstrap, partitions=2, sweep_interval=1.0) as stack:
        # when Redis is down for OUTAGE_SECONDS while events arrive and scores are read
        run = _through_an_outage(stack)
        profiles = observe.profiles(stack, sorted({e.candidate for e in run.acknowledged.values()}))
    during = [k for k, phase in enumerate(run.phases) if phase == "during"]
    first, last = run.scrapes[during[0] - 1], run.scrapes[during[-1]]
    errors = "engagement_scorer_redis_errors_total"
    print(
        f"Redis down {OUTAGE_SECONDS:g} s: {len(run.acknowledged)} events acknowledged, "
        f"{sum(s == 503 for p, s, _ in run.reads if p == 'during')} reads answered 503, "
        f"scorer Redis errors {_total(first, errors):g} -> {_total(last, errors):g}; "
        f"drained {run.drained_seconds:.1f} s after Redis came back"
    )
    # then every write was acknowledged throughout (they need Kafka only)
    assert {status for _, status in run.writes} == {200}
    # and every read during the outage answered 503 redis_unavailable, every other one 200
    assert {(s, c) for p, s, c in run.reads if p == "during"} == {(503, "redis_unavailable")}
    assert {s for p, s, _ in run.reads if p != "during"} == {200}
    # and the scorers counted failed Redis batches during the outage, none once it drained
    assert _total(last, errors) > _total(first, errors)
    assert _total(run.scrapes[-1], errors) == _total(run.scrapes[-2], errors)
    # and once Redis is back every acknowledged event is scored, exactly once
    by_candidate: dict[str, list[Sent]] = defaultdict(list)
    for sent in run.acknowledged.values():
        by_candidate[sent.candidate].append(sent)
    problems = checks.check_scores(by_candidate, profiles, tomllib.loads(stack_keys.RULES))
    assert not problems, "\n".join(problems[:5])
    # and the rules over the scrapes page for Redis during the outage (not for Kafka, no other
    # 5xx), and not any more once it drained
    at, end = during[-1], len(run.scrapes) - 1
    expected = [
        (at, "EngagementRedisUnavailable", True),
        (at, "EngagementIngestUnavailable", False),
        (at, "EngagementIngestServerErrors", False),
        (end, "EngagementRedisUnavailable", False),
    ]
    _promtool_test(tmp_path, _rules_test(run.scrapes, expected, jobs=("ingest", "scorer")))
