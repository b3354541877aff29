"""The metric catalogue (deploy/metrics.yaml) and the metric names the dashboard and alerts use."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
CATALOG = ROOT / "deploy" / "metrics.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "engagement.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"

_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# PromQL words that look like metric names: functions, aggregations, keywords, label names.
_PROMQL_WORDS = frozenset(
    [
        "sum",
        "rate",
        "irate",
        "increase",
        "deriv",
        "delta",
        "max",
        "min",
        "avg",
        "count",
        "by",
        "without",
        "histogram_quantile",
        "clamp_min",
        "clamp_max",
        "absent",
        "vector",
        "and",
        "or",
        "unless",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "le",
        "label_values",
        "humanize",
        "humanizePercentage",
        "humanizeDuration",
        "value",
        "bool",
        "topk",
        "bottomk",
        "offset",
        "scalar",
        "time",
        "changes",
        "min_over_time",
        "max_over_time",
    ]
)


def catalog() -> dict[str, Any]:
    """Return deploy/metrics.yaml."""
    data: dict[str, Any] = yaml.safe_load(CATALOG.read_text())
    return data


def families(service: str | None = None) -> dict[str, str]:
    """Return metric family -> type for one service, or for all of them."""
    services: dict[str, dict[str, str]] = catalog()["services"]
    chosen = [services[service]] if service else list(services.values())
    return {name: kind for entries in chosen for name, kind in entries.items()}


def sample_names() -> set[str]:
    """Return every series name the services export (histogram buckets, counter totals, ...)."""
    names = {f + s for f, kind in families().items() for s in _SUFFIXES[kind]}
    return names | set(catalog()["prometheus_builtin"])


def dashboard_expressions() -> list[str]:
    """Return every PromQL expression of the Grafana dashboard (targets and variables)."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in _panels(dashboard["panels"]) for t in p.get("targets", [])]
    for variable in dashboard.get("templating", {}).get("list", []):
        exprs.append(variable.get("definition", ""))
    return exprs


def alert_expressions() -> list[str]:
    """Return the expression of every alert rule."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """Return the metric names a PromQL expression reads (label matchers and strings removed)."""
    without_strings = re.sub(r'"[^"]*"', "", expr)
    without_matchers = re.sub(r"\{[^}]*\}", "", without_strings)
    without_ranges = re.sub(r"\[[^\]]*\]|\boffset\s+\w+", "", without_matchers)
    without_groupings = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", without_ranges)
    without_labels = re.sub(r"label_values\(\s*([^,)]+),[^)]*\)", r"\1", without_groupings)
    without_numbers = re.sub(r"\b\d+(\.\d+)?([eE][-+]?\d+)?\b", "", without_labels)
    return set(_IDENTIFIER.findall(without_numbers)) - _PROMQL_WORDS


def family_of(sample: str) -> str:
    """Return the family a series name belongs to (strip _total/_bucket/_sum/_count)."""
    for suffix in ("_total", "_bucket", "_sum", "_count", "_created"):
        if sample.endswith(suffix) and sample[: -len(suffix)] in families():
            return sample[: -len(suffix)]
    return sample


def used_families() -> set[str]:
    """Return the metric families the dashboard shows."""
    return {family_of(n) for e in dashboard_expressions() for n in metric_names(e)}


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))
