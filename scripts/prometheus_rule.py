"""Write deploy/k8s/prometheus-rule.yaml: the alert rules of deploy/prometheus/alerts.yml as a
Prometheus Operator PrometheusRule, so `kubectl apply -k deploy/k8s` loads them.

Usage: python scripts/prometheus_rule.py write   (tests/unit/deploy fails when it falls behind)
       python scripts/prometheus_rule.py         (print it)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
TARGET = ROOT / "deploy" / "k8s" / "prometheus-rule.yaml"
HEADER = (
    "# Generated from deploy/prometheus/alerts.yml by `python scripts/prometheus_rule.py write`;\n"
    "# edit that file, not this one. Needs the Prometheus Operator (monitoring.coreos.com CRDs).\n"
)


def prometheus_rule() -> dict[str, Any]:
    """Return the PrometheusRule object holding every group of alerts.yml."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "engagement",
            "namespace": "engagement",
            "labels": {"app.kubernetes.io/part-of": "candidate-engagement"},
        },
        "spec": {"groups": yaml.safe_load(RULES.read_text())["groups"]},
    }


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML ships no types
    """Multi-line strings (the PromQL) as literal blocks, as in alerts.yml."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def text() -> str:
    """The file's text."""
    body = yaml.dump(prometheus_rule(), Dumper=_Dumper, sort_keys=False, width=1000)
    return HEADER + str(body)


if __name__ == "__main__":
    if sys.argv[1:] == ["write"]:
        TARGET.write_text(text())
    else:
        sys.stdout.write(text())
