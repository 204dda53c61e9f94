"""What the OpenAPI document says about errors: the real statuses, each with the contract's body.

Routes list the statuses they can answer with `responses=error_responses(...)`. On top of that,
`openapi_schema` states what every route shares: the 400 of a request that fails validation
(FastAPI's default 422 is removed: the API answers 400, see api/errors.py), and the 401 and 429
of every route behind a bearer token (signing in and the per-user rate limit).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="Machine-readable, e.g. VALIDATION_ERROR, NOT_FOUND.")
    message: str = Field(description="For people: what went wrong and what to do.")
    details: Any = Field(description="Structured context (e.g. the fields that failed), or null.")


class ErrorBody(BaseModel):
    """The API contract's error body, for every status from 400 up."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


ERROR_DESCRIPTIONS = {
    400: "The request is not valid (VALIDATION_ERROR); `details` names the fields.",
    401: "No, an invalid or an expired bearer token (UNAUTHORIZED).",
    403: "Signed in, but not allowed: not an active member, or the role may not (FORBIDDEN).",
    404: "Not found, or not visible to the caller (NOT_FOUND).",
    409: "Conflicts with the current state; retry or change the request (CONFLICT).",
    410: "No longer available, e.g. an expired download link (EXPIRED).",
    413: "The upload is larger than the limit (PAYLOAD_TOO_LARGE).",
    415: "The upload is not a CSV file (UNSUPPORTED_MEDIA_TYPE).",
    429: "Too many requests (RATE_LIMITED); `Retry-After` says when to try again.",
    502: "A provider refused the request.",
    503: "A dependency is unavailable; try again shortly.",
    504: "The work took longer than the route waits; try again in a moment.",
}

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    }
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status with its description and the contract's error body."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[status]}
        if status == 429:
            entry["headers"] = _RETRY_AFTER
        out[status] = entry
    return out


def _error_entry(status: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "description": ERROR_DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    if status == 429:
        entry["headers"] = _RETRY_AFTER
    return entry


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document with the shared error statuses stated and its 422s removed."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    for name, model in (("ErrorBody", ErrorBody), ("ErrorDetail", ErrorDetail)):
        if name not in components:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schema.pop("$defs", None)
            components[name] = schema
    for path_item in doc.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            shared: list[int] = []
            if "requestBody" in operation or operation.get("parameters"):
                shared.append(400)
            if operation.get("security"):
                shared += [401, 429]
            for status in shared:
                responses.setdefault(str(status), _error_entry(status))
            if "429" in responses:
                responses["429"].setdefault("headers", _RETRY_AFTER)
            operation["responses"] = dict(sorted(responses.items()))
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    app.openapi_schema = doc
    return doc


def install_openapi(app: FastAPI) -> None:
    app.openapi = lambda: openapi_schema(app)  # type: ignore[method-assign]
