"""The notifier's alert series exist at 0 for every alert type, job alerts included, so that
``increase()`` sees a tenant's first alert of any type."""

from __future__ import annotations

from prometheus_client import generate_latest

from services.notifier.metrics import NotifierMetrics


def test_every_alert_type_of_a_tenant_is_created_at_zero() -> None:
    metrics = NotifierMetrics()
    metrics.initialise_alerts(tenants=["acme"], tiers=["cold", "warm", "hot"])
    text = generate_latest(metrics.registry).decode()
    for kind in (
        "candidate.hot",
        "candidate.cooled",
        "candidate.tier_changed",
        "candidate.job_hot",
        "candidate.job_cooled",
    ):
        assert f'type="{kind}"' in text, kind
