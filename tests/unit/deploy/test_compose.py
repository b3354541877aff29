"""docker-compose.yml: valid Compose, and the stack issue 5 describes."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
ENGAGEMENT_SERVICES = ("ingest", "scorer", "notifier")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_compose_file_validates_against_the_compose_specification_schema(compose):
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_stack_has_kafka_redis_services_and_monitoring(compose):
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    cluster_id = services["kafka"]["environment"]["CLUSTER_ID"]
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16  # KRaft wants a base64 UUID
    assert services["redis"]["image"].startswith("redis:7")
    assert {"prometheus", "grafana", *ENGAGEMENT_SERVICES} <= set(services)


def test_scorer_runs_two_replicas(compose):
    assert compose["services"]["scorer"]["deploy"]["replicas"] == 2


def test_every_long_running_service_has_a_healthcheck(compose):
    for name, service in compose["services"].items():
        if name != "demo":
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_pipeline_services_wait_for_healthy_kafka_and_redis(compose):
    for name in ENGAGEMENT_SERVICES:
        depends = compose["services"][name]["depends_on"]
        assert depends["kafka"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_pipeline_services_use_idempotent_producers_against_apache_kafka(compose):
    for name in ENGAGEMENT_SERVICES:
        assert compose["services"][name]["environment"]["KAFKA_ENABLE_IDEMPOTENCE"] == "true"


def test_pipeline_services_build_from_the_one_dockerfile_and_run_their_subcommand(compose):
    for name in ENGAGEMENT_SERVICES:
        service = compose["services"][name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert service["command"] == [name]


def test_demo_generator_and_webhook_receiver_only_run_in_the_demo_profile(compose):
    services = compose["services"]
    assert services["demo"]["profiles"] == ["demo"]
    assert services["webhook-receiver"]["profiles"] == ["demo"]
    assert [s for s, v in services.items() if "profiles" in v] == ["webhook-receiver", "demo"]


def test_files_the_compose_file_mounts_exist(compose):
    for secret in compose["secrets"].values():
        assert (ROOT / secret["file"]).is_file(), secret["file"]
    for name in ("prometheus", "grafana"):
        for volume in compose["services"][name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source


def test_compose_keys_and_webhooks_files_are_valid_configuration():
    from engagement.model.webhooks import load_webhooks
    from services.ingest.sources import load_sources

    registry = load_sources(ROOT / "deploy/compose/sources.toml")
    webhooks = load_webhooks(ROOT / "deploy/compose/webhooks.toml")
    assert registry.source_for_write_key("dev_write_key") is not None
    assert [e.url for e in webhooks.endpoints] == ["http://webhook-receiver:9000/webhooks"]


def test_published_ports_listen_on_the_loopback_interface_only(compose):
    published = [
        (name, port)
        for name, service in compose["services"].items()
        for port in service.get("ports", [])
    ]
    assert published
    assert [(n, p) for n, p in published if not str(p).startswith("127.0.0.1:")] == []


def test_the_lag_exporter_runs_and_prometheus_scrapes_it(compose):
    exporter = compose["services"]["lag-exporter"]
    assert exporter["command"] == ["lag-exporter"]
    assert exporter["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "lag-exporter"]
    port = exporter["environment"]["LAG_EXPORTER_PORT"]
    assert job["static_configs"][0]["targets"] == [f"lag-exporter:{port}"]
