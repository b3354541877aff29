"""The ops views every worker serves: /metrics (Prometheus), /healthz, /readyz."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust
from faust import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)

Health = Callable[[], tuple[dict[str, Any], bool]]
Checks = Callable[[], dict[str, bool]]
Probe = Callable[[], Awaitable[bool]]  # True when a dependency answers, e.g. a Redis PING


async def _nothing() -> None:
    return None


def _always_healthy() -> tuple[dict[str, Any], bool]:
    return {"status": "ok"}, True


def _no_checks() -> dict[str, bool]:
    return {}


def add_ops_views(
    app: faust.App,
    *,
    registry: CollectorRegistry,
    dependencies: Mapping[str, Probe],
    before_scrape: Callable[[], Awaitable[None]] = _nothing,
    health: Health = _always_healthy,
    ready_checks: Checks = _no_checks,
) -> None:
    """Serve /metrics, /livez (the process answers: no dependency), /healthz (``health``) and
    /readyz (every dependency answers, partitions assigned, checks)."""

    @app.page("/metrics")
    async def metrics_view(self: web.View, request: web.Request) -> web.Response:
        await before_scrape()
        body = generate_latest(registry)
        return self.bytes(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/livez")
    async def livez(self: web.View, request: web.Request) -> web.Response:
        # liveness probes use this one: an outage of Redis or Kafka must not restart every worker
        return self.json({"status": "ok"})

    @app.page("/healthz")
    async def healthz(self: web.View, request: web.Request) -> web.Response:
        body, ok = health()
        return self.json(body, status=200 if ok else 503)

    @app.page("/readyz")
    async def readyz(self: web.View, request: web.Request) -> web.Response:
        checks = {name: await probe() for name, probe in dependencies.items()}
        checks["assigned"] = bool(assignment(app))
        checks |= ready_checks()
        ok = all(checks.values())
        body = {"status": "ready" if ok else "not ready", "checks": checks}
        return self.json(body, status=200 if ok else 503)


def assignment(app: faust.App) -> set[Any]:
    """The partitions the app's consumer holds now (empty while rebalancing or not started)."""
    try:
        return set(app.consumer.assignment())
    except Exception:
        return set()
