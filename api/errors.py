"""The seed's error body, `{"error": {"code", "message", "details"}}`, for every failure.

SQL functions signal user errors with SQLSTATEs; this module maps them to HTTP statuses so
that a rule enforced in the database surfaces the same way through every route.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("dbr.api")

_STATUS_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
    504: "TIMEOUT",
}

# SQLSTATE (exact, then class) -> HTTP status.
_SQLSTATE_STATUS = {
    "42501": 403,  # insufficient_privilege, incl. row-level security violations
    "P0002": 404,  # no_data_found: raised by RPCs for rows the caller cannot see
    "23505": 409,  # unique_violation
    "40001": 409,  # serialization_failure: the caller may retry
    "40P01": 409,  # deadlock_detected
    "P0001": 400,  # raise exception without a code
    "DB429": 429,  # custom: a database-kept limit was hit
}
_SQLSTATE_CLASS_STATUS = {"22": 400, "23": 400}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _STATUS_CODES.get(status, "ERROR")
        self.message = message
        self.details = details
        self.headers = headers


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": {
            "code": code or _STATUS_CODES.get(status, "ERROR"),
            "message": message,
            "details": details,
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def status_for_sqlstate(sqlstate: str | None) -> int | None:
    if not sqlstate:
        return None
    return _SQLSTATE_STATUS.get(sqlstate) or _SQLSTATE_CLASS_STATUS.get(sqlstate[:2])


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(
            exc.status, exc.message, code=exc.code, details=exc.details, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
                "reason": err.get("msg"),
            }
            for err in exc.errors()
        ]
        return error_response(400, "The request is not valid.", details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(psycopg.Error)
    async def _database(request: Request, exc: psycopg.Error) -> JSONResponse:
        status = status_for_sqlstate(exc.sqlstate)
        if status is None:
            log.exception("database error on %s %s", request.method, request.url.path)
            return error_response(500, "Something went wrong on our side.")
        diag = exc.diag
        details = {
            k: v
            for k, v in {
                "hint": diag.message_hint,
                "detail": diag.message_detail,
                "constraint": diag.constraint_name,
            }.items()
            if v
        }
        message = diag.message_primary or "The request was refused."
        if exc.sqlstate == "42501":
            message = "You do not have permission to do this."
            details = None
        return error_response(status, message, details=details or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "Something went wrong on our side.")
