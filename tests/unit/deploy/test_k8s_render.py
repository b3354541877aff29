"""deploy/k8s renders as `kubectl kustomize` would and every object validates offline.

The rendering here does what the kustomization asks (resources, namespace, images); built-in kinds
are checked with kubernetes-validate against Kubernetes' own schemas (strict: no unknown field),
the KEDA and Prometheus Operator objects against the fields their controllers read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

K8S = Path(__file__).resolve().parents[3] / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"  # the oldest release the manifests target (matchLabelKeys: 1.27+)
CUSTOM_KINDS = {
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}
DIGEST = re.compile(r"^[a-z0-9./-]+@sha256:[0-9a-f]{64}$")


def kustomization() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return data


def render() -> list[dict[str, Any]]:
    """Return the objects `kubectl kustomize deploy/k8s` produces (the transformers used here)."""
    spec = kustomization()
    docs = []
    for resource in spec["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / resource).read_text()) if d]
    images = {i["name"]: i for i in spec.get("images", [])}
    for doc in docs:
        if doc["kind"] != "Namespace":
            doc["metadata"]["namespace"] = spec["namespace"]
        for container in _containers(doc):
            image = images.get(container["image"].split("@")[0].split(":")[0])
            if image:
                container["image"] = f"{image['name']}@{image['digest']}"
    return docs


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    pod = doc.get("spec", {}).get("template", {}).get("spec", {})
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


RENDERED = render()


def test_every_listed_resource_exists_and_holds_objects():
    for resource in kustomization()["resources"]:
        path = K8S / resource
        assert path.is_file(), resource
        assert [d for d in yaml.safe_load_all(path.read_text()) if d], resource


def test_objects_are_unique_by_kind_and_name():
    keys = [(d["kind"], d["metadata"]["name"]) for d in RENDERED]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    "doc",
    [d for d in RENDERED if (d["apiVersion"], d["kind"]) not in CUSTOM_KINDS],
    ids=lambda d: f"{d['kind']}/{d['metadata']['name']}",
)
def test_built_in_objects_validate_against_the_kubernetes_schemas(doc):
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {error.message} at {error.path}")


def test_only_known_custom_kinds_are_used():
    kinds = {(d["apiVersion"], d["kind"]) for d in RENDERED}
    custom = {k for k in kinds if "." in k[0].split("/")[0] and not k[0].endswith(".k8s.io/v1")}
    assert custom <= CUSTOM_KINDS | {("apps/v1", "Deployment")}


def test_every_image_is_pinned_by_digest_after_rendering():
    images = [c["image"] for d in RENDERED for c in _containers(d)]
    assert images and all(DIGEST.match(image) for image in images), images


def test_no_secret_is_applied_with_the_kustomization():
    assert [d for d in RENDERED if d["kind"] == "Secret"] == []


def test_the_prometheus_rule_holds_the_alert_rules_as_they_are_in_alerts_yml():
    from scripts.prometheus_rule import TARGET, text

    assert TARGET.read_text() == text(), "run: python scripts/prometheus_rule.py write"
    (rule,) = [d for d in RENDERED if d["kind"] == "PrometheusRule"]
    alerts = yaml.safe_load((K8S.parent / "prometheus" / "alerts.yml").read_text())
    assert rule["spec"]["groups"] == alerts["groups"]
