"""``/v1/hooks/{provider}/{source_id}``: inbound ad and social platform webhooks.

GET answers the provider's handshake; POST verifies the signature on the raw bytes (401 when it
does not match; services.ingest.hook_signatures), turns each lead into a Segment ``track`` envelope
(services.ingest.platform_hooks) and hands the envelopes to the ingest pipeline exactly as a
server-side batch from that source.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import ORJSONResponse, PlainTextResponse, Response

from services.ingest import routes
from services.ingest.body import parse_object
from services.ingest.envelope import RequestFacts, classify
from services.ingest.errors import ApiError
from services.ingest.hook_signatures import (
    generic_signature_valid,
    google_key_valid,
    linkedin_challenge,
    linkedin_signature_valid,
    meta_challenge,
    meta_signature_valid,
)
from services.ingest.platform_hooks import (
    Envelope,
    HookRejected,
    HookSource,
    Provider,
    leads_of,
)
from services.ingest.sources import KeyRegistry, Source

MAX_HOOK_BYTES = 1024 * 1024

router = APIRouter(tags=["platform hooks"])


def hook_sources_of(request: Request) -> dict[str, HookSource]:
    """Return the app's hook endpoints by source id: ``app.state.hook_sources`` when set, else the
    sources of the key registry that carry ``hook_provider`` / ``hook_secret``."""
    explicit: dict[str, HookSource] | None = getattr(request.app.state, "hook_sources", None)
    if explicit is not None:
        return explicit
    found: dict[str, HookSource] = {}
    for source in request.app.state.keys.sources:
        if source.hook_provider and source.hook_secret:
            found[source.source_id] = HookSource(
                source_id=source.source_id,
                tenant_id=source.tenant_id,
                channel=source.channel,
                provider=source.hook_provider,
                secret=source.hook_secret,
                verify_token=source.hook_verify_token,
            )
    return found


def _hook_source(request: Request, provider: str, source_id: str) -> HookSource:
    hook = hook_sources_of(request).get(source_id)
    if hook is None or hook.provider != provider:
        raise ApiError(404, "unknown_hook", f"no {provider} hook for source {source_id}")
    return hook


@router.get("/v1/hooks/{provider}/{source_id}", summary="Platform webhook handshake")
async def handshake(provider: str, source_id: str, request: Request) -> Response:
    """Meta: echo ``hub.challenge`` (403 on a wrong token); LinkedIn: answer a UUID challengeCode
    (400 for any other string: its answer would be a signature)."""
    hook = _hook_source(request, provider, source_id)
    params = request.query_params
    if provider == "meta":
        token = hook.verify_token.get_secret_value() if hook.verify_token else None
        challenge = meta_challenge(params, verify_token=token)
        if challenge is None:
            raise ApiError(403, "verification_failed", "hub.verify_token does not match")
        return PlainTextResponse(challenge)
    if provider == "linkedin" and "challengeCode" in params:
        answer = linkedin_challenge(
            params["challengeCode"], client_secret=hook.secret.get_secret_value()
        )
        if answer is None:
            raise ApiError(400, "invalid_challenge", "challengeCode must be a UUID")
        return ORJSONResponse(answer)
    raise ApiError(405, "no_handshake", f"{provider} hooks have no GET handshake")


@router.post("/v1/hooks/{provider}/{source_id}", summary="Platform webhook delivery")
async def receive(provider: Provider, source_id: str, request: Request) -> Response:
    """Verify, normalise and produce every lead; 401 on a bad signature, 200 once Kafka acked."""
    hook = _hook_source(request, provider, source_id)
    body = await _raw_body(request)
    received_at = datetime.now(UTC)
    payload = _verified_payload(hook, body, request, now=received_at)
    try:
        envelopes = leads_of(provider, payload, channel=hook.channel)
    except HookRejected as exc:
        raise ApiError(400, "not_a_lead", str(exc)) from None
    return await deliver(request, hook, envelopes, received_at=received_at)


def _verified_payload(
    hook: HookSource, body: bytes, request: Request, *, now: datetime
) -> dict[str, Any]:
    secret = hook.secret.get_secret_value()
    headers = request.headers
    if hook.provider == "meta":
        valid = meta_signature_valid(body, headers.get("x-hub-signature-256"), app_secret=secret)
    elif hook.provider == "linkedin":
        valid = linkedin_signature_valid(body, headers.get("x-li-signature"), client_secret=secret)
    elif hook.provider == "generic":
        valid = generic_signature_valid(body, headers, secret=secret, now=now)
    else:
        valid = google_key_valid(_lenient(body), google_key=secret)
    if not valid:
        raise ApiError(401, "invalid_signature", "the webhook signature does not match")
    return parse_object(body)


def _lenient(body: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return document if isinstance(document, dict) else {}


async def _raw_body(request: Request) -> bytes:
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_HOOK_BYTES:
            raise ApiError(413, "request_too_large", f"webhook body over {MAX_HOOK_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def deliver(
    request: Request, hook: HookSource, envelopes: list[Envelope], *, received_at: datetime
) -> ORJSONResponse:
    """Classify and produce the envelopes like a server-side batch of the hook's source."""
    source = _source_of(request, hook)
    facts = RequestFacts(
        source=source,
        received_at=received_at,
        max_event_bytes=request.app.state.settings.ingest_max_event_bytes,
    )
    outcomes = [classify(envelope, i, facts=facts) for i, envelope in enumerate(envelopes)]
    await routes.publish_outcomes(request, outcomes, facts=facts)
    routes.count_outcomes(request.app.state.metrics, source, outcomes)
    return ORJSONResponse(routes.answer_of(outcomes))


def _source_of(request: Request, hook: HookSource) -> Source:
    keys: KeyRegistry = request.app.state.keys
    for source in keys.sources:
        if source.source_id == hook.source_id and source.tenant_id == hook.tenant_id:
            return source
    return Source(
        source_id=hook.source_id,
        tenant_id=hook.tenant_id,
        channel=hook.channel,
        write_key=f"hook:{hook.source_id}",
    )
