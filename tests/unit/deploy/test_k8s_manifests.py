"""deploy/k8s: manifests parse, carry the required fields, and scale within Kafka's limits."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

K8S = Path(__file__).resolve().parents[3] / "deploy" / "k8s"
WORKLOADS = ("ingest", "scorer", "notifier")


def _documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


DOCS = _documents()


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in DOCS if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} documents"
    return found[0]


def _containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    return containers


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_has_api_version_kind_and_name(doc):
    assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]


def test_kustomization_lists_every_manifest_file():
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    present = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == present


@pytest.mark.parametrize("name", WORKLOADS)
def test_deployment_selector_matches_its_pod_labels(name):
    deployment = _one("Deployment", name)
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


@pytest.mark.parametrize("kind", ["Service", "PodDisruptionBudget"])
@pytest.mark.parametrize("name", WORKLOADS)
def test_service_and_disruption_budget_select_the_deployment_pods(kind, name):
    doc = _one(kind, name)
    selector = doc["spec"]["selector"]
    selector = selector.get("matchLabels", selector)
    labels = _one("Deployment", name)["spec"]["template"]["metadata"]["labels"]
    assert selector and selector.items() <= labels.items()


# Liveness paths that answer while the process does, touching neither Redis nor Kafka (ingest's
# /healthz; the workers' /healthz fails when batches keep failing, so they live on /livez).
LIVENESS = {
    "ingest": "/healthz",
    "scorer": "/livez",
    "notifier": "/livez",
    "lag-exporter": "/livez",
}


@pytest.mark.parametrize("name", sorted(LIVENESS))
def test_liveness_does_not_depend_on_redis_or_kafka_and_readiness_does(name):
    for container in _containers(_one("Deployment", name)):
        assert container["livenessProbe"]["httpGet"]["path"] == LIVENESS[name]
        assert container.get("startupProbe", container["livenessProbe"])["httpGet"]["path"] in {
            LIVENESS[name]
        }
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


@pytest.mark.parametrize("name", WORKLOADS)
def test_pods_run_as_non_root(name):
    pod = _one("Deployment", name)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("name", WORKLOADS)
def test_pods_read_config_from_the_configmap_and_keys_from_the_secret(name):
    deployment = _one("Deployment", name)
    (container,) = _containers(deployment)
    assert {"configMapRef": {"name": "engagement-config"}} in container["envFrom"]
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    refs = {v.get("configMap", {}).get("name") for v in volumes}
    refs |= {v.get("secret", {}).get("secretName") for v in volumes}
    expected = {"scorer": {"engagement-rules"}}  # ingest: keys + rules (the read API's tiers)
    assert expected.get(name, {"engagement-keys", "engagement-rules"}) <= refs


TOPICS = {"scorer": "engagement.interactions.v1", "notifier": "engagement.scores.changed.v1"}


@pytest.mark.parametrize("name", sorted(TOPICS))
def test_workers_scale_on_their_consumer_groups_lag_within_the_partition_count(name):
    config = _one("ConfigMap", "engagement-config")["data"]
    partitions = int(config["KAFKA_TOPIC_PARTITIONS"])
    scaled = _one("ScaledObject", name)["spec"]
    assert scaled["scaleTargetRef"]["name"] == name
    assert 1 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"] <= partitions
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "kafka"
    prefix = config.get("KAFKA_TOPIC_PREFIX", "")
    assert trigger["metadata"]["topic"] == prefix + TOPICS[name]
    assert trigger["metadata"]["consumerGroup"] == f"{prefix}engagement-{name}"
    assert trigger["metadata"]["bootstrapServersFromEnv"] == "KAFKA_BOOTSTRAP_SERVERS"
    assert int(trigger["metadata"]["lagThreshold"]) > 0


def test_no_deployment_sets_replicas_that_an_autoscaler_owns():
    scaled = {d["spec"]["scaleTargetRef"]["name"] for d in DOCS if d["kind"] == "ScaledObject"}
    scaled |= {
        d["spec"]["scaleTargetRef"]["name"] for d in DOCS if d["kind"] == "HorizontalPodAutoscaler"
    }
    assert scaled >= {"ingest", "scorer", "notifier"}
    assert [n for n in scaled if "replicas" in _one("Deployment", n)["spec"]] == []


def test_workers_roll_without_surge_so_a_pod_past_the_partition_count_never_stalls_a_rollout():
    for name in TOPICS:
        rolling = _one("Deployment", name)["spec"]["strategy"]["rollingUpdate"]
        assert rolling == {"maxSurge": 0, "maxUnavailable": 1}


@pytest.mark.parametrize("name", WORKLOADS)
def test_pods_spread_over_zones_and_nodes(name):
    pod = _one("Deployment", name)["spec"]["template"]["spec"]
    keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for constraint in pod["topologySpreadConstraints"]:
        assert constraint["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": name}


def test_pod_monitors_give_every_job_the_alert_rules_use():
    alerts = (K8S.parents[1] / "deploy" / "prometheus" / "alerts.yml").read_text()
    jobs = {"ingest", "scorer", "notifier", "lag-exporter"}
    assert jobs <= set(re.findall(r'job="([^"]+)"', alerts)) | {"lag-exporter"}
    for job in jobs:
        monitor = _one("PodMonitor", job)["spec"]
        assert monitor["jobLabel"] == "app.kubernetes.io/name"
        labels = _one("Deployment", job)["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == job
        assert monitor["selector"]["matchLabels"].items() <= labels.items()
        (endpoint,) = monitor["podMetricsEndpoints"]
        (container,) = _containers(_one("Deployment", job))
        assert endpoint["port"] in {p["name"] for p in container["ports"]}
        assert endpoint["path"] == "/metrics"


def test_rules_configmap_holds_a_valid_score_template(tmp_path):
    from engagement.model.rules import load_rules

    path = tmp_path / "rules.toml"
    path.write_text(_one("ConfigMap", "engagement-rules")["data"]["rules.toml"])
    rules = load_rules(path)
    assert rules.alert_tier in {t.name for t in rules.tiers}


def test_keys_examples_are_valid_files_refused_until_their_placeholders_are_replaced():
    import tomllib

    from engagement.model.webhooks import load_webhooks
    from services.ingest.sources import SourcesFileError, load_sources, parse_sources

    sources = K8S / "keys.example" / "sources.toml"
    assert parse_sources(tomllib.loads(sources.read_text())).sources
    with pytest.raises(SourcesFileError) as refused:
        load_sources(sources)
    problems = str(refused.value).splitlines()[1:]
    assert problems and all("is a placeholder" in problem for problem in problems)
    assert load_webhooks(K8S / "keys.example" / "webhooks.toml").endpoints


def test_the_guide_creates_the_secret_with_every_key_the_pods_read():
    read = {
        ref["secretKeyRef"]["key"]
        for d in DOCS
        if d["kind"] == "Deployment"
        for c in _containers(d)
        for ref in (e.get("valueFrom", {}) for e in c.get("env", []))
        if ref.get("secretKeyRef", {}).get("name") == "engagement-keys"
    }
    guide = (K8S.parents[1] / "docs" / "operations.md").read_text()
    command = guide[guide.index("kubectl -n engagement create secret generic engagement-keys") :]
    command = command[: command.index("```")]
    for key in read | {"sources.toml", "webhooks.toml"}:
        assert f"--from-{'literal' if key == 'REDIS_URL' else 'file'}={key}=" in command, key


def test_rules_configmap_is_the_shipped_default_template(tmp_path):
    from engagement.model.rules import load_rules

    path = tmp_path / "rules.toml"
    path.write_text(_one("ConfigMap", "engagement-rules")["data"]["rules.toml"])
    root = K8S.parents[1]
    assert load_rules(path) == load_rules(root / "config" / "rules.toml")


def test_ingest_metrics_are_served_on_a_port_its_service_does_not_expose():
    (container,) = _containers(_one("Deployment", "ingest"))
    env = {e["name"]: e.get("value") for e in container["env"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert int(env["INGEST_METRICS_PORT"]) == ports["metrics"] != ports["http"]
    assert env["INGEST_METRICS_HOST"] == "0.0.0.0"
    exposed = {p["targetPort"] for p in _one("Service", "ingest")["spec"]["ports"]}
    assert exposed == {"http"}
    assert _one("PodMonitor", "ingest")["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
