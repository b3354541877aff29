"""The service's error answer: ``{"error": {"code", "message"}}`` with a status code, for every
refusal (also of parameters FastAPI validates), and as the OpenAPI document describes it."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response


class JsonResponse(Response):
    """A JSON answer serialised with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ApiError(Exception):
    """A request the service refuses, answered as a JSON error with ``status``."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JsonResponse:
    """Return the JSON error answer."""
    body = {"error": {"code": code, "message": message}}
    return JsonResponse(body, status_code=status, headers=headers)


async def api_error_handler(_request: Request, exc: Exception) -> JsonResponse:
    """Answer an ApiError as its JSON error."""
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def unexpected_error_handler(_request: Request, _exc: Exception) -> JsonResponse:
    """Answer a bug as a JSON 500 (the traceback goes to the log, not to the client)."""
    return error_response(500, "internal_error", "unexpected server error")


async def redis_unavailable_handler(_request: Request, _exc: Exception) -> JsonResponse:
    """Answer a Redis outage on the read API as 503 + Retry-After (clients retry)."""
    return error_response(
        503, "redis_unavailable", "scores are unavailable right now; retry", {"Retry-After": "5"}
    )


async def validation_error_handler(_request: Request, exc: Exception) -> JsonResponse:
    """Answer a path or query parameter FastAPI refuses as 400 ``invalid_request`` (not 422)."""
    assert isinstance(exc, RequestValidationError)
    problems = [
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
        for error in exc.errors()[:10]
    ]
    return error_response(400, "invalid_request", "; ".join(problems) or "invalid request")


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def with_error_answers(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with the answers the service really gives: parameters FastAPI
    refuses are 400 ``{"error"}`` (its 422 ``{"detail"}`` never reaches a client)."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None and "400" not in responses:
                responses["400"] = {"description": "Invalid parameters.", "content": ERROR_CONTENT}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    components["Error"] = ERROR_SCHEMA
    return schema
