"""Prometheus metrics of the ingest service, on a registry of their own (one per app).

With several server processes (``engagement ingest --workers N``) every process records into
files under ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode, which the command
sets up) and ``/metrics`` sums them, so any process answers a scrape with the service's totals.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.ingest.rate_limit import SOURCE_LIMITS

BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
# The error codes of a 503: which dependency failed (docs/api.md). Other answers have reason "".
UNAVAILABLE_REASONS = ("kafka_unavailable", "redis_unavailable")
EVENT_OUTCOMES = ("accepted", "rejected", "dropped")


@dataclass(frozen=True)
class IngestMetrics:
    """The metric families the ingest service exports (names are a contract)."""

    registry: CollectorRegistry
    requests: Counter
    events: Counter
    request_seconds: Histogram
    produce_seconds: Histogram
    batch_events: Histogram
    limited: Counter

    @classmethod
    def create(cls) -> IngestMetrics:
        """Return fresh metrics on a new registry."""
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter(
                "engagement_ingest_requests",
                "HTTP requests by endpoint and status; reason: a 503's error code, else empty.",
                ["endpoint", "reason", "status"],
                registry=registry,
            ),
            events=Counter(
                "engagement_ingest_events",
                "Events by tenant, source and outcome (accepted, rejected, dropped).",
                ["tenant", "source", "outcome"],
                registry=registry,
            ),
            request_seconds=Histogram(
                "engagement_ingest_request_seconds", "Request duration.", registry=registry
            ),
            produce_seconds=Histogram(
                "engagement_ingest_produce_seconds",
                "Time until Kafka acknowledged a request's records.",
                registry=registry,
            ),
            batch_events=Histogram(
                "engagement_ingest_batch_events",
                "Events per request.",
                buckets=BATCH_BUCKETS,
                registry=registry,
            ),
            limited=Counter(
                "engagement_ingest_source_limited",
                "Write requests answered 429 by tenant, source and the limit they were over "
                "(requests, identities); unchecked: let through because Redis did not answer.",
                ["tenant", "source", "limit"],
                registry=registry,
            ),
        )

    def initialise(self, *, endpoints: Iterable[str], sources: Iterable[tuple[str, str]]) -> None:
        """Create the series alerts watch at 0 (each endpoint's 200 and 503s, each source's
        outcomes), so ``increase()`` sees their first event after a start."""
        for endpoint in endpoints:
            self.requests.labels(endpoint, "", "200")
            for reason in UNAVAILABLE_REASONS:
                self.requests.labels(endpoint, reason, "503")
        for tenant, source in sources:
            for outcome in EVENT_OUTCOMES:
                self.events.labels(tenant, source, outcome)
            for limit in (*SOURCE_LIMITS, "unchecked"):
                self.limited.labels(tenant, source, limit)


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def scrape_allowed(authorization: str | None, *, token: SecretStr) -> bool:
    """Return whether a scrape may read /metrics: always without a token, else only with
    ``Authorization: Bearer <token>`` (compared in constant time)."""
    expected = token.get_secret_value()
    if not expected:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected.encode()
    )


def exposition(metrics: IngestMetrics) -> bytes:
    """The text of ``/metrics``: this process's registry, or every process's in multiprocess
    mode (only counters and histograms here: their samples add up across processes)."""
    path = os.environ.get(MULTIPROC_ENV)
    if not path:
        return generate_latest(metrics.registry)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


class MetricsMiddleware:
    """Count every request by route template and status, and time it."""

    def __init__(self, app: ASGIApp, *, metrics: IngestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 500, "reason": ""}

        async def send_with_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            elif message["type"] == "http.response.body" and status["code"] == 503:
                status["reason"] = _error_code(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            endpoint = _endpoint(scope)
            self.metrics.requests.labels(endpoint, status["reason"], str(status["code"])).inc()
            self.metrics.request_seconds.observe(time.perf_counter() - started)


def _error_code(body: bytes) -> str:
    """Return a 503 body's error code when it is one of UNAVAILABLE_REASONS, else "other"."""
    try:
        code = orjson.loads(body)["error"]["code"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "other"
    return code if code in UNAVAILABLE_REASONS else "other"


def _endpoint(scope: Scope) -> str:
    """Return the matched route template (the router records it in the scope), else "other"."""
    route: Any = scope.get("route")
    return str(getattr(route, "path", None) or "other")
