"""The one error vocabulary: every refusal a user can see is a `DbrError`.

    raise DbrError("You are not an active member of any client.", status=403)

An error carries what the API contract's error body needs, `{"error": {"code", "message",
"details"}}`, plus the HTTP `status` (and `headers`, e.g. Retry-After). `code` defaults from
the status (`CODES`: 400 VALIDATION_ERROR, 401 UNAUTHORIZED, 403 FORBIDDEN, 404 NOT_FOUND,
409 CONFLICT, 429 RATE_LIMITED, ...). Domain errors subclass it and set `status` (and `code`)
as class attributes: `dbr.datasets.errors.DatasetError`, `dbr.bookings.errors.BookingError`,
`dbr.rpc.RpcError`. The refusals every domain has are here once (`NotFound`, `Forbidden`,
`Conflict`); a domain's own refusal subclasses one of them and its domain root, e.g.
`class LeadNotFound(NotFound, BookingError)`. FastAPI answers every one of them in one
handler (`api.errors`); the CLI prints `message` and `details`.

A database error is not raised as a `DbrError`: `dbr.postgrest` turns it into PostgREST's
status and body (the one SQLSTATE -> status table), and `api.errors` answers that.
"""

from __future__ import annotations

from typing import Any

# The API contract's error codes by HTTP status (the ones private.raise_error defaults to, and
# the rest FastAPI needs).
CODES: dict[int, str] = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "TIMEOUT",
}


def code_for(status: int) -> str:
    """The API contract's error code for an HTTP status ("ERROR" for one it does not name)."""
    return CODES.get(status, "ERROR")


class DbrError(Exception):
    """A request that cannot be served, answered with `status` and the contract's error body."""

    status: int = 400
    code: str | None = None  # None: the code of `status`

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.code = code or self.code or code_for(self.status)
        self.details = details
        self.headers = headers


class NotFound(DbrError):
    """The thing does not exist, or the caller cannot see it (the two are not told apart)."""

    status = 404


class Forbidden(DbrError):
    """The caller may see the thing but not do this with it."""

    status = 403


class Conflict(DbrError):
    """The request contradicts the current state (e.g. booking a lead who opted out)."""

    status = 409
