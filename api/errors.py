"""The API contract's error body, `{"error": {"code", "message", "details"}}`, for every failure.

A refusal raised in code is a `dbr.errors.DbrError` (or a domain subclass of it), answered by
one handler with its own status, code, details and headers.

SQL functions refuse with PostgREST's custom error (`private.raise_error`, SQLSTATE PGRST);
a database error is answered by `dbr.postgrest`, PostgREST's own rules, so a rule enforced in
the database surfaces with the same status and code through FastAPI as through PostgREST.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dbr.errors import DbrError, code_for
from dbr.postgrest import contract_error, translate

log = logging.getLogger("dbr.api")


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code or code_for(status), "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DbrError)
    async def _refused(_: Request, exc: DbrError) -> JSONResponse:
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
        # FastAPI only runs queries for signed-in callers, so the request is "authed".
        err = translate(exc, authed=True)
        if err.status >= 500:
            log.exception("database error on %s %s", request.method, request.url.path)
            return error_response(err.status, "Something went wrong on our side.")
        body = contract_error(err)["error"]
        return error_response(
            err.status,
            body["message"] or "The request was refused.",
            code=body["code"],
            details=body["details"],
            headers=err.headers or None,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "Something went wrong on our side.")
