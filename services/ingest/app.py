"""Composition root of the ingest service: settings → keys, Kafka sink, Redis, metrics → app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from engagement.kafka.rules_topic import TemplateFollower
from engagement.model.rules import load_rules
from engagement.model.templates import Templates
from engagement.store.connection import connect
from engagement.store.templated_store import TemplatedStore
from services.ingest import (
    access_log,
    dashboard,
    hooks,
    job_api,
    job_tiers,
    read_api,
    rules_api,
    segment_compat,
)
from services.ingest.cors import SourceCorsMiddleware
from services.ingest.envelope import SegmentEvent
from services.ingest.errors import (
    ApiError,
    JsonResponse,
    api_error_handler,
    redis_unavailable_handler,
    unexpected_error_handler,
    validation_error_handler,
    with_error_answers,
)
from services.ingest.metrics import (
    IngestMetrics,
    MetricsMiddleware,
    exposition,
    scrape_allowed,
)
from services.ingest.metrics_listener import serving_metrics
from services.ingest.routes import build_router
from services.ingest.settings import IngestSettings
from services.ingest.sink import KafkaSink
from services.ingest.sources import load_sources
from services.ingest.tracker import router as tracker_router

log = logging.getLogger(__name__)
SCRAPE = {"WWW-Authenticate": 'Bearer realm="metrics"'}


def create_app(settings: IngestSettings) -> FastAPI:
    """Return the ingest + read API app; Kafka and Redis are connected in its lifespan."""
    keys = load_sources(settings.sources_file)
    rules = load_rules(settings.rules_file)
    metrics = IngestMetrics.create()
    app = FastAPI(
        title="Candidate engagement ingest API",
        version="0.1.0",
        description="Segment-compatible event collection into Kafka, and the score read API.",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.keys = keys
    app.state.rules = rules
    app.state.templates = Templates(rules)  # RULES_FILE for tenants without their own
    app.state.metrics = metrics
    app.state.sink = KafkaSink(settings)
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
    for outage in (RedisConnectionError, RedisTimeoutError):
        app.add_exception_handler(outage, redis_unavailable_handler)
    app.add_middleware(SourceCorsMiddleware, keys=lambda: app.state.keys)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    routers = [
        build_router(),
        _ops_router(),
        job_api.router,  # before read_api's: /v1/candidates/{id}/jobs is not a candidate id
        job_tiers.router,
        read_api.router,
        rules_api.router,
        hooks.router,
        tracker_router,
        segment_compat.router,
        dashboard.router,
    ]
    for router in routers:
        app.include_router(router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    access_log.install(settings.log_hash_key_bytes())
    metrics.initialise(
        # the routers' own routes: FastAPI (0.16x) wraps an included router in one app route
        endpoints={str(getattr(route, "path", "other")) for r in routers for route in r.routes},
        sources={(source.tenant_id, source.source_id) for source in keys.sources},
    )
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: IngestSettings = app.state.settings
    sink: KafkaSink = app.state.sink
    app.state.redis = connect(settings.redis_url, cluster=settings.redis_cluster)
    app.state.score_store = TemplatedStore(
        app.state.redis,
        prefix=settings.redis_key_prefix,
        templates=app.state.templates,
        log_hash_key=settings.log_hash_key_bytes(),
    )
    follower = TemplateFollower(
        app.state.templates,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topics=settings.topics,
        replication_factor=settings.kafka_replication_factor,
    )
    app.state.rules_follower = follower
    connecting = asyncio.create_task(sink.connect_forever(), name="kafka-connect")
    following = asyncio.create_task(follower.follow(), name="rules-follow")
    try:
        async with _metrics_listener(settings, app.state.metrics):
            yield
    finally:
        for task in (connecting, following):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await follower.close()
        await sink.close()
        await app.state.redis.aclose()


def _metrics_listener(
    settings: IngestSettings, metrics: IngestMetrics
) -> contextlib.AbstractAsyncContextManager[None]:
    if not settings.ingest_metrics_port:
        return contextlib.nullcontext()
    return serving_metrics(
        metrics,
        host=settings.ingest_metrics_host,
        port=settings.ingest_metrics_port,
        token=settings.ingest_metrics_token,
    )


def _ops_router() -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: 503 until the Kafka producer is connected and the templates are read",
    )
    async def readyz(request: Request) -> JsonResponse:
        if not await request.app.state.sink.ready():
            return JsonResponse({"status": "kafka not connected"}, status_code=503)
        if not request.app.state.rules_follower.caught_up.is_set():
            return JsonResponse({"status": "templates not read yet"}, status_code=503)
        return JsonResponse({"status": "ready"})

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics(request: Request) -> Response:
        settings: IngestSettings = request.app.state.settings
        if settings.ingest_metrics_port:
            raise ApiError(404, "not_found", "/metrics is served on INGEST_METRICS_PORT")
        token = settings.ingest_metrics_token
        if not scrape_allowed(request.headers.get("authorization"), token=token):
            raise ApiError(401, "invalid_key", "/metrics needs its bearer token", headers=SCRAPE)
        return Response(exposition(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)

    return router


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = with_error_answers(schema)["components"]
        components["schemas"]["SegmentEvent"] = SegmentEvent.model_json_schema()
        components["securitySchemes"] = {
            "writeKey": {"type": "http", "scheme": "basic", "description": "write key:"},
            "bearerKey": {"type": "http", "scheme": "bearer", "description": "read/admin key"},
        }
        app.openapi_schema = schema
    return app.openapi_schema
