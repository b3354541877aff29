"""Outages as the alert rules see them: the metrics a service exports under a Redis outage fire
the Redis alert and not the Kafka one, and worker liveness does not depend on Redis."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from engagement.tools.localstack import free_port
from services.ingest.app import create_app
from tests.integration.ingest.conftest import ingest_settings
from tests.integration.scorer.harness import ENGAGEMENT, scorer_env
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


def _request_samples(text: str) -> dict[str, float]:
    """Series text (promtool's notation) -> value, of engagement_ingest_requests_total."""
    return {
        sample.name
        + "{"
        + ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
        + "}": sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "engagement_ingest_requests"
        for sample in family.samples
        if sample.name.endswith("_total")
    }


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


def _rules_test(scrapes: list[dict[str, float]]) -> dict[str, object]:
    """A promtool rules test: scrape k at minute k, and the alerts expected at the end."""
    values: dict[str, list[str]] = defaultdict(lambda: ["_"] * len(scrapes))
    for minute, scrape in enumerate(scrapes):
        for series, value in scrape.items():
            values[series][minute] = repr(value)
    series = [{"series": s, "values": " ".join(v)} for s, v in sorted(values.items())]
    series.append({"series": 'up{job="ingest",instance="ingest"}', "values": f"1x{len(scrapes)}"})
    redis_rule = next(
        r
        for g in yaml.safe_load(RULES.read_text())["groups"]
        for r in g["rules"]
        if r["alert"] == "EngagementRedisUnavailable"
    )
    at = f"{len(scrapes) - 1}m"
    return {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {
                        "eval_time": at,
                        "alertname": "EngagementRedisUnavailable",
                        "exp_alerts": [
                            {
                                "exp_labels": redis_rule["labels"],
                                "exp_annotations": redis_rule["annotations"],
                            }
                        ],
                    },
                    {"eval_time": at, "alertname": "EngagementIngestUnavailable", "exp_alerts": []},
                ],
            }
        ],
    }


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
    test_file = tmp_path / "outage_test.yml"
    test_file.write_text(yaml.safe_dump(_rules_test(scrapes), sort_keys=False))
    done = subprocess.run(
        ["promtool", "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


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
