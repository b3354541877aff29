"""deploy/k8s: manifests parse, carry the required fields, and scale within Kafka's limits."""

from __future__ import annotations

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


@pytest.mark.parametrize("name", WORKLOADS)
def test_pods_have_liveness_on_healthz_and_readiness_on_readyz(name):
    for container in _containers(_one("Deployment", name)):
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
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


def test_scorer_autoscaler_never_exceeds_the_partition_count():
    partitions = int(_one("ConfigMap", "engagement-config")["data"]["KAFKA_TOPIC_PARTITIONS"])
    hpa = _one("HorizontalPodAutoscaler", "scorer")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "scorer",
    }
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= partitions <= 12


def test_rules_configmap_holds_a_valid_score_template(tmp_path):
    from engagement.rules import load_rules

    path = tmp_path / "rules.toml"
    path.write_text(_one("ConfigMap", "engagement-rules")["data"]["rules.toml"])
    rules = load_rules(path)
    assert rules.alert_tier in {t.name for t in rules.tiers}


def test_keys_secret_holds_valid_sources_and_webhooks_files(tmp_path):
    from engagement.sources import SourcesFileError, load_sources
    from engagement.webhooks import load_webhooks

    data = _one("Secret", "engagement-keys")["stringData"]
    (tmp_path / "sources.toml").write_text(data["sources.toml"])
    (tmp_path / "webhooks.toml").write_text(data["webhooks.toml"])
    # the template's keys are placeholders: ingest refuses to start until they are replaced
    with pytest.raises(SourcesFileError, match="placeholder"):
        load_sources(tmp_path / "sources.toml")
    replaced = data["sources.toml"].replace("REPLACE_ME", "generated")
    (tmp_path / "sources.toml").write_text(replaced)
    assert load_sources(tmp_path / "sources.toml").sources
    assert load_webhooks(tmp_path / "webhooks.toml").endpoints


def test_rules_configmap_is_the_shipped_default_template(tmp_path):
    from engagement.rules import load_rules

    path = tmp_path / "rules.toml"
    path.write_text(_one("ConfigMap", "engagement-rules")["data"]["rules.toml"])
    root = K8S.parents[1]
    assert load_rules(path) == load_rules(root / "config" / "rules.toml")
