"""The Segment-compatible write endpoints: gather (body, key) → decide (classify) → apply (produce)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from redis.exceptions import RedisError

from engagement.kafka.bad_rows import dlq_value
from engagement.kafka.cloudevents import binary_headers, ce_type
from services.ingest.answers import IngestAnswer
from services.ingest.auth import authenticate_source
from services.ingest.bad_rows import bad_row, bad_row_key
from services.ingest.body import read_json_object
from services.ingest.envelope import (
    Accepted,
    BatchRequest,
    Dropped,
    Outcome,
    Rejected,
    RequestFacts,
    SegmentEvent,
    classify,
)
from services.ingest.errors import ApiError, JsonResponse
from services.ingest.event_guards import encoded_event
from services.ingest.metrics import IngestMetrics
from services.ingest.rate_limit import source_over_limit
from services.ingest.settings import IngestSettings
from services.ingest.sink import KafkaSink, NotAcknowledged, OutRecord
from services.ingest.sources import Source

SINGLE_TYPES = ("track", "page", "identify", "alias", "screen", "group")
# analytics.js (@segment/analytics-next) posts one event to `{apiHost}/` + the type's first letter.
SHORT_PATHS = {kind[0]: kind for kind in SINGLE_TYPES}
BATCH_PATHS = ("/v1/batch", "/v1/import", "/v1/b")
LIMIT_TIMEOUT = 0.25  # seconds the per-source limit may add to a write request at most
ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Every accepted event is acknowledged by Kafka.", "model": IngestAnswer},
    400: {"description": "Malformed JSON, invalid envelope or empty batch.", **ERROR},
    401: {"description": "Missing or unknown write key.", **ERROR},
    403: {"description": "Origin not allowed for this write key.", **ERROR},
    413: {"description": "Body, event or batch too large.", **ERROR},
    415: {"description": "Content type or encoding not supported.", **ERROR},
    503: {"description": "Kafka did not acknowledge in time; retry after Retry-After.", **ERROR},
}


def _body_schema(model: type[SegmentEvent] | type[BatchRequest]) -> dict[str, Any]:
    schema = {"schema": model.model_json_schema()}
    return {"requestBody": {"required": True, "content": {"application/json": schema}}}


def build_router() -> APIRouter:
    """Return the router with every write endpoint."""
    router = APIRouter(tags=["ingest"], responses=RESPONSES)
    for kind in SINGLE_TYPES:
        router.add_api_route(
            f"/v1/{kind}",
            _endpoint(kind),
            methods=["POST"],
            summary=f"Send one {kind} event",
            operation_id=f"send_{kind}",
            openapi_extra=_body_schema(SegmentEvent),
            response_class=JsonResponse,
        )
    for short, kind in SHORT_PATHS.items():
        router.add_api_route(
            f"/v1/{short}",
            _endpoint(kind),
            methods=["POST"],
            summary=f"Send one {kind} event (analytics.js short path, same as /v1/{kind})",
            operation_id=f"send_{kind}_short",
            openapi_extra=_body_schema(SegmentEvent),
            response_class=JsonResponse,
        )
    for path in BATCH_PATHS:
        router.add_api_route(
            path,
            _endpoint(None),
            methods=["POST"],
            summary="Send a batch of events" + (" (beacon)" if path == "/v1/b" else ""),
            operation_id="send_" + path.rsplit("/", 1)[-1],
            openapi_extra=_body_schema(BatchRequest),
            response_class=JsonResponse,
        )
    return router


def _endpoint(kind: str | None) -> Callable[..., Awaitable[JsonResponse]]:
    async def endpoint(
        request: Request,
        writeKey: str | None = Query(None, description="Write key (beacons cannot set headers)."),
    ) -> JsonResponse:
        return await ingest(request, kind=kind)

    return endpoint


async def ingest(request: Request, *, kind: str | None) -> JsonResponse:
    """Answer 200 only once every accepted event (and every bad row) is acknowledged by Kafka."""
    settings: IngestSettings = request.app.state.settings
    document = await read_json_object(request, max_bytes=settings.ingest_max_request_bytes)
    source = authenticate_source(request, document)
    items = _events_of(document, kind=kind, max_events=settings.ingest_max_batch_events)
    facts = _facts(request, document, source=source, kind=kind, settings=settings)
    outcomes = [classify(_without_key(item), i, facts=facts) for i, item in enumerate(items)]
    await within_source_limits(request, source, outcomes)
    await publish_outcomes(request, outcomes, facts=facts)
    count_outcomes(request.app.state.metrics, source, outcomes)
    if kind is not None and isinstance(outcomes[0], Rejected):
        raise _single_event_error(outcomes[0])
    return JsonResponse(answer_of(outcomes))


async def within_source_limits(request: Request, source: Source, outcomes: list[Outcome]) -> None:
    """429 when the source is over its requests or identities per window; a Redis that does not
    answer within LIMIT_TIMEOUT lets the request through (counted as unchecked): a limit
    protects the store, it never refuses events the broker would take."""
    settings: IngestSettings = request.app.state.settings
    metrics: IngestMetrics = request.app.state.metrics
    identities = sorted({o.key for o in outcomes if isinstance(o, Accepted)})
    try:
        async with asyncio.timeout(LIMIT_TIMEOUT):
            over = await source_over_limit(
                request.app.state.redis,
                prefix=settings.redis_key_prefix,
                tenant=source.tenant_id,
                source=source.source_id,
                identities=identities,
                request_limit=settings.source_request_limit,
                identity_limit=settings.source_identity_limit,
                window_seconds=settings.source_limit_window_seconds,
                now=time.time(),
            )
    except (RedisError, OSError, TimeoutError):
        metrics.limited.labels(source.tenant_id, source.source_id, "unchecked").inc()
        return
    if over is not None:
        limit, wait = over
        metrics.limited.labels(source.tenant_id, source.source_id, limit).inc()
        raise ApiError(
            429,
            "rate_limited",
            f"too many {limit} for this source in this window; retry",
            headers={"Retry-After": str(wait)},
        )


def _events_of(document: dict[str, Any], *, kind: str | None, max_events: int) -> list[Any]:
    if kind is not None:
        return [document]
    batch = document.get("batch")
    if not isinstance(batch, list):
        raise ApiError(400, "invalid_batch", "body needs a `batch` array")
    if not batch:
        raise ApiError(400, "empty_batch", "`batch` has no events")
    if len(batch) > max_events:
        raise ApiError(413, "batch_too_large", f"a batch holds at most {max_events} events")
    return batch


def _without_key(item: Any) -> Any:
    if isinstance(item, dict) and "writeKey" in item:
        return {k: v for k, v in item.items() if k != "writeKey"}
    return item


def _facts(
    request: Request,
    document: dict[str, Any],
    *,
    source: Source,
    kind: str | None,
    settings: IngestSettings,
) -> RequestFacts:
    context = document.get("context") if kind is None else None
    if isinstance(context, dict):
        unwritable = encoded_event({"context": context})  # at the depth it has in each event
        if isinstance(unwritable, str):
            raise ApiError(400, "invalid_body", f"batch context: {unwritable}")
    return RequestFacts(
        source=source,
        received_at=datetime.now(UTC),
        client_ip=request.client.host if request.client else None,
        from_browser="origin" in request.headers or request.url.path == "/v1/b",
        forced_type=kind,
        batch_sent_at=document.get("sentAt") if kind is None else None,
        batch_context=context if isinstance(context, dict) else {},
        max_event_bytes=settings.ingest_max_event_bytes,
    )


async def publish_outcomes(
    request: Request, outcomes: list[Outcome], *, facts: RequestFacts
) -> None:
    """Write accepted events and bad rows to Kafka; 503 unless every record is acknowledged."""
    sink: KafkaSink = request.app.state.sink
    metrics: IngestMetrics = request.app.state.metrics
    settings: IngestSettings = request.app.state.settings
    records = [_record(o, facts=facts, settings=settings) for o in outcomes]
    started = time.perf_counter()
    try:
        await sink.publish([r for r in records if r is not None])
    except NotAcknowledged:
        retry = str(settings.ingest_retry_after_seconds)
        raise ApiError(
            503,
            "kafka_unavailable",
            "events were not stored; retry",
            headers={"Retry-After": retry},
        ) from None
    metrics.produce_seconds.observe(time.perf_counter() - started)


def _record(outcome: Outcome, *, facts: RequestFacts, settings: IngestSettings) -> OutRecord | None:
    source, topics = facts.source, settings.topics
    if isinstance(outcome, Accepted):
        headers = binary_headers(
            event_id=outcome.message_id,
            source=source.ce_source,
            type_=ce_type(f"interaction.{outcome.type}"),
            time=outcome.time,
            subject=outcome.subject,
        )
        value = orjson.dumps(outcome.value)
        return OutRecord(topics.interactions, outcome.key.encode(), value, headers)
    if isinstance(outcome, Rejected):
        headers = binary_headers(
            event_id=outcome.message_id or f"{source.ce_source}/{facts.received_at.isoformat()}",
            source=source.ce_source,
            type_=ce_type("interaction.rejected"),
            time=facts.received_at,
            subject=outcome.failure_type,
        )
        key = bad_row_key(outcome, tenant_id=source.tenant_id).encode()
        value = dlq_value(bad_row(outcome, facts=facts))
        return OutRecord(topics.interactions_dlq, key, value, headers)
    return None


def count_outcomes(metrics: IngestMetrics, source: Source, outcomes: list[Outcome]) -> None:
    """Count a request's events by outcome."""
    metrics.batch_events.observe(len(outcomes))
    tally = {"accepted": 0, "rejected": 0, "dropped": 0}
    for outcome in outcomes:
        tally[_outcome_name(outcome)] += 1
    for name, number in tally.items():
        if number:
            metrics.events.labels(source.tenant_id, source.source_id, name).inc(number)


def _outcome_name(outcome: Outcome) -> str:
    if isinstance(outcome, Accepted):
        return "accepted"
    return "rejected" if isinstance(outcome, Rejected) else "dropped"


def _single_event_error(rejected: Rejected) -> ApiError:
    if rejected.failure_type == "size_violation":
        return ApiError(413, "event_too_large", rejected.reason)
    return ApiError(400, "invalid_event", rejected.reason)


def answer_of(outcomes: list[Outcome]) -> dict[str, Any]:
    """Return the 200 body: accepted and dropped counts, and every rejected event's reason."""
    rejected = [o for o in outcomes if isinstance(o, Rejected)]
    return {
        "success": True,
        "accepted": sum(isinstance(o, Accepted) for o in outcomes),
        "dropped": sum(isinstance(o, Dropped) for o in outcomes),
        "rejected": [
            {"index": r.index, "messageId": r.message_id, "reason": r.reason} for r in rejected
        ],
    }
