"""The Grafana dashboard and the Prometheus rules use only metrics the services export."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.unit.deploy import catalog

EXPRESSIONS = catalog.dashboard_expressions() + catalog.alert_expressions()
REQUIRED_ALERTS = {
    "EngagementConsumerLagGrowing",
    "EngagementIngestUnavailable",
    "EngagementIngestServerErrors",
    "EngagementScorerDown",
    "EngagementNotifierDown",
    "EngagementWebhookDLQGrowing",
    "EngagementEndToEndLatencyHigh",
    "EngagementConsumerStuck",
    "EngagementConsumerLagUnmeasured",
    "EngagementIngestDown",
    "EngagementRedisUnavailable",
    "EngagementWebhookBacklogOld",
    "EngagementRecordsQuarantined",
}


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_every_metric_in_dashboard_and_alerts_is_in_the_exported_catalogue(expr):
    names = catalog.metric_names(expr)
    assert names, f"no metric found in {expr!r}"
    assert names <= catalog.sample_names(), names - catalog.sample_names()


def test_every_catalogued_family_is_on_the_dashboard_or_deliberately_left_out():
    left_out = set(catalog.catalog()["left_out"])
    assert set(catalog.families()) - catalog.used_families() == left_out
    assert left_out <= set(catalog.families())


def test_alert_rules_cover_lag_ingest_errors_downtime_dlq_and_latency():
    groups = yaml.safe_load(catalog.ALERTS.read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} >= REQUIRED_ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["runbook_url"]


def test_every_alert_runbook_anchor_exists_in_the_operations_guide():
    guide = (catalog.ROOT / "docs" / "operations.md").read_text()
    groups = yaml.safe_load(catalog.ALERTS.read_text())["groups"]
    for rule in (r for g in groups for r in g["rules"]):
        assert f"### {rule['alert']}" in guide, rule["alert"]


def test_dashboard_panels_use_the_provisioned_prometheus_datasource():
    provisioned = yaml.safe_load(
        (catalog.ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    uid = provisioned["datasources"][0]["uid"]
    dashboard = json.loads(catalog.DASHBOARD.read_text())
    panels = [p for p in catalog._panels(dashboard["panels"]) if p["type"] != "row"]
    assert panels and all(p["datasource"]["uid"] == uid for p in panels)


def test_prometheus_scrapes_ingest_scorer_and_notifier_and_loads_the_alert_rules():
    config = yaml.safe_load((catalog.ROOT / "deploy/prometheus/prometheus.yml").read_text())
    assert {"ingest", "scorer", "notifier"} <= {job["job_name"] for job in config["scrape_configs"]}
    assert "lag-exporter" in {job["job_name"] for job in config["scrape_configs"]}
    # relative to prometheus.yml: promtool finds it in the repository, Prometheus in compose
    assert config["rule_files"] == ["alerts.yml"]
