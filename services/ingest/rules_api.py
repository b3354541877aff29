"""The tenant's score template through the admin API: ``PUT /v1/rules``, ``GET /v1/rules``,
``GET /v1/rules/versions``, ``POST /v1/rules/rebuild``, ``GET /v1/rules/rebuild`` (docs/api.md,
"Score templates").

A template is validated by the code of ``engagement rules check`` (``parse_template``) and is
stored only whole: on the rules topic (``engagement.kafka.rules_topic``), acknowledged by Kafka
(``acks=all``) before the answer, never partly. Every worker follows that topic; this process's
own follower has folded the version in before the PUT answers (or the answer says it is stored
but not yet read back). A rebuild is only requested here (``engagement.store.rebuild_requests``):
a scorer runs it (``services.scorer.rebuild_runner``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request

from engagement.kafka.rules_topic import version_key, version_value
from engagement.model.rules import RulesError, parse_template, problems_of
from engagement.model.templates import Templates, TemplateVersion
from engagement.store.rebuild_requests import RebuildRequest, RebuildRequests
from engagement.store.redis_keys import KeyLayout
from services.ingest.auth import require_admin_key, require_read_key
from services.ingest.errors import ApiError, JsonResponse
from services.ingest.routes import ERROR
from services.ingest.sink import KafkaSink, NotAcknowledged, OutRecord

MAX_TEMPLATE_BYTES = 256 * 1024
READ_BACK_SECONDS = 5.0  # the PUT waits this long for its own follower to fold the version in
MEDIA = {
    "application/toml": "toml",
    "text/toml": "toml",
    "text/plain": "toml",
    "application/json": "json",
}
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or wrong key (`invalid_key`).", **ERROR},
    429: {"description": "The key is past its rate limit (`rate_limited`).", **ERROR},
}
router = APIRouter(tags=["rules"], responses=ERRORS)
AdminTenant = Annotated[str, Depends(require_admin_key)]
ReadTenant = Annotated[str, Depends(require_read_key)]


def templates_of(request: Request) -> Templates:
    """The app's template registry (followed from the rules topic in the lifespan)."""
    templates: Templates = request.app.state.templates
    return templates


@router.put(
    "/v1/rules",
    summary="Set the tenant's score template (TOML or JSON), as a new version",
    responses={
        200: {"description": "This very version was stored before (a retried PUT)."},
        201: {"description": "Stored: `active`, or `pending` until a rebuild (half-life)."},
        409: {
            "description": "The version string exists with other content (`version_exists`).",
            **ERROR,
        },
        413: {"description": "Body over 256 KiB (`payload_too_large`).", **ERROR},
        415: {"description": "Not application/toml or application/json.", **ERROR},
        422: {
            "description": "Invalid template (`invalid_template`): every problem listed.",
            **ERROR,
        },
        503: {"description": "Kafka did not acknowledge (`kafka_unavailable`): retry.", **ERROR},
    },
)
async def put_rules(request: Request, tenant: AdminTenant) -> JsonResponse:
    """Validate the whole template and store it as a new version of the tenant's template."""
    media = _media(request.headers.get("content-type"))
    text = await _body_text(request)
    try:
        rules = parse_template(text, source="body", media=media)
    except RulesError as exc:
        problems = [p.as_dict() for p in problems_of(exc, text, media=media)]
        message = f"{len(problems)} problem(s); the template was not stored"
        error = {"code": "invalid_template", "message": message, "problems": problems}
        return JsonResponse({"error": error}, status_code=422)
    templates = templates_of(request)
    known = {v.version: v for v in templates.versions(tenant)}
    same = known.get(rules.version)
    if same is not None:
        if same.rules == rules:
            return JsonResponse(_answer(same), status_code=200)
        raise ApiError(409, "version_exists", f"version {rules.version!r} exists: bump version")
    now = datetime.now(UTC).isoformat()
    state = templates.state_for(tenant, rules)
    version = TemplateVersion(
        tenant, rules, text, media, state, now, now if state == "active" else None
    )
    await _store(request.app.state.sink, request.app.state.settings.topics.rules, version)
    await _read_back(templates, tenant, rules.version)
    return JsonResponse(_answer(version), status_code=201)


@router.get("/v1/rules", summary="The template the tenant is scored with now")
async def get_rules(request: Request, tenant: ReadTenant) -> Any:
    """The active version (``source: tenant``) or the default (``source: default``)."""
    templates = templates_of(request)
    active = templates.active(tenant)
    rules = templates.rules_for(tenant)
    body: dict[str, Any] = {
        "version": rules.version,
        "source": "default" if active is None else "tenant",
        "template": rules.model_dump(mode="json"),
    }
    if active is not None:
        body |= {"activatedAt": active.activated_at, "media": active.media, "text": active.text}
    return body


@router.get(
    "/v1/rules/versions",
    summary="Every version of the tenant's template, newest first, with its rebuild's state",
    responses={503: {"description": "Redis did not answer (`redis_unavailable`): retry.", **ERROR}},
)
async def get_versions(request: Request, tenant: ReadTenant) -> Any:
    """Each version stored, with its state (``active`` for the one in force, ``pending`` for one
    waiting for a rebuild, ``superseded`` for an earlier active one) and the state of its
    rebuild, as the store knows it (the tenant's latest request: ``rebuild`` on the version it
    names, null on the others)."""
    templates = templates_of(request)
    active = templates.active(tenant)
    versions = templates.versions(tenant)
    latest = await _requests(request).latest(tenant) if versions else None
    listed = []
    for version in reversed(versions):
        summary = version.summary()
        if version.state == "active" and (active is None or active.version != version.version):
            summary["state"] = "superseded"
        named = latest is not None and latest.version == version.version
        summary["rebuild"] = _rebuild_of_version(latest) if named else None
        listed.append(summary)
    return {"versions": listed, "default": templates.default.version}


def _rebuild_of_version(request: RebuildRequest | None) -> dict[str, Any] | None:
    """A rebuild's state as a version lists it (without the tenant and version it names)."""
    if request is None:
        return None
    summary = request.summary()
    return {k: v for k, v in summary.items() if k not in ("tenantId", "version")}


@router.post(
    "/v1/rules/rebuild",
    summary="Rescore the tenant's history under its newest version, and make it active",
    status_code=202,
    responses={
        202: {"description": "Requested: a scorer runs it; follow it at GET /v1/rules/rebuild."},
        409: {
            "description": "A rebuild of the tenant is in progress (`rebuild_in_progress`, "
            "its `rebuild` beside the error), or the tenant has no template of its own "
            "(`no_template`).",
            **ERROR,
        },
        503: {"description": "Redis did not answer (`redis_unavailable`): retry.", **ERROR},
    },
)
async def post_rebuild(request: Request, tenant: AdminTenant) -> JsonResponse:
    """Request a rebuild of the tenant under its newest version; at most one at a time."""
    versions = templates_of(request).versions(tenant)
    if not versions:
        raise ApiError(409, "no_template", "the tenant has no template of its own: PUT one first")
    now = datetime.now(UTC).isoformat()
    found, new = await _requests(request).request(tenant, versions[-1].version, now)
    if not new:
        message = f"rebuild {found.id} is {found.state}: follow it at GET /v1/rules/rebuild"
        error = {"code": "rebuild_in_progress", "message": message}
        return JsonResponse({"error": error, "rebuild": found.summary()}, status_code=409)
    headers = {"Location": "/v1/rules/rebuild"}
    return JsonResponse(found.summary(), status_code=202, headers=headers)


@router.get(
    "/v1/rules/rebuild",
    summary="The tenant's latest rebuild and its state",
    responses={404: {"description": "No rebuild was requested (`not_found`).", **ERROR}},
)
async def get_rebuild(request: Request, tenant: ReadTenant) -> Any:
    """``requested``, ``running`` (with the generation it rescores into), ``activated`` or
    ``aborted`` (with the error)."""
    found = await _requests(request).latest(tenant)
    if found is None:
        raise ApiError(404, "not_found", "no rebuild of the tenant was requested")
    return found.summary()


def _requests(request: Request) -> RebuildRequests:
    prefix = request.app.state.settings.redis_key_prefix
    return RebuildRequests(request.app.state.redis, KeyLayout(prefix))


def _media(content_type: str | None) -> Literal["toml", "json"]:
    media = MEDIA.get((content_type or "").split(";")[0].strip().lower())
    if media is None:
        raise ApiError(415, "unsupported_media_type", "send application/toml or application/json")
    return "json" if media == "json" else "toml"


async def _body_text(request: Request) -> str:
    body = await request.body()
    if len(body) > MAX_TEMPLATE_BYTES:
        raise ApiError(
            413, "payload_too_large", f"a template is at most {MAX_TEMPLATE_BYTES} bytes"
        )
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_encoding", "the template must be UTF-8") from exc


async def _store(sink: KafkaSink, topic: str, version: TemplateVersion) -> None:
    """Return once Kafka acknowledged the version's record; 503 otherwise (retry the PUT)."""
    record = OutRecord(topic, version_key(version), version_value(version), [])
    try:
        await sink.publish([record])
    except NotAcknowledged as exc:
        raise ApiError(
            503,
            "kafka_unavailable",
            "the template was not stored: retry",
            headers={"Retry-After": str(sink.settings.ingest_retry_after_seconds)},
        ) from exc


async def _read_back(templates: Templates, tenant: str, version: str) -> None:
    """Wait (a bounded time) until this process's follower folded the version in."""
    deadline = asyncio.get_running_loop().time() + READ_BACK_SECONDS
    while not any(v.version == version for v in templates.versions(tenant)):
        if asyncio.get_running_loop().time() > deadline:
            return
        await asyncio.sleep(0.05)


def _answer(version: TemplateVersion) -> dict[str, Any]:
    answer = version.summary()
    if version.state == "pending":
        answer["message"] = (
            "half_life_days differs from the template in force: this version applies once "
            "POST /v1/rules/rebuild has rescored the tenant's history under it"
        )
    return answer
