"""PostgREST's error rules, so every door answers a database error the same way.

PostgREST (the front door of the design) turns a PostgreSQL error into an HTTP status and a
JSON body by fixed rules (docs.postgrest.org, references/errors, "HTTP Status Codes"):

- SQLSTATE ``PGRST`` is a custom error raised on purpose (``private.raise_error``): the
  status and headers come from the JSON in ``detail`` (``{"status": 404, "headers": {}}``),
  the body from the JSON in ``message`` (``{"code", "message", "details", "hint"}``).
- ``PTnnn`` answers status nnn.
- Any other SQLSTATE goes through a table (``P0001`` 400, other ``P0*`` 500, ``42501`` 403,
  or 401 for an anonymous request, ``23505``/``23503`` 409, everything unlisted 400 ...)
  and the body is ``{"code": SQLSTATE, "message", "details", "hint"}``.

`translate` implements those rules for a psycopg error; `contract_error` re-states the result in
the API contract's vocabulary (``{"error": {code, message, details}}`` with VALIDATION_ERROR,
UNAUTHORIZED, FORBIDDEN, NOT_FOUND, CONFLICT, RATE_LIMITED ...) for FastAPI and the CLI.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import psycopg

from dbr.errors import code_for

# PostgREST's table, exact codes first, then two-character classes (order as documented).
_EXACT: dict[str, int] = {
    "23503": 409,  # foreign_key_violation
    "23505": 409,  # unique_violation
    "25006": 405,  # read_only_sql_transaction
    "53400": 500,  # configuration_limit_exceeded
    "57P01": 503,  # admin_shutdown
    "P0001": 400,  # raise_exception, the default code of RAISE
    "42883": 404,  # undefined_function
    "42P01": 404,  # undefined_table
    "42P17": 500,  # infinite recursion
}
_CLASS: dict[str, int] = {
    "08": 503,  # connection exception
    "09": 500,  # triggered action exception
    "0L": 403,  # invalid grantor
    "0P": 403,  # invalid role specification
    "25": 500,  # invalid transaction state
    "28": 403,  # invalid authorization specification
    "2D": 500,  # invalid transaction termination
    "38": 500,  # external routine exception
    "39": 500,  # external routine invocation exception
    "3B": 500,  # savepoint exception
    "40": 500,  # transaction rollback
    "53": 503,  # insufficient resources
    "54": 500,  # program limit exceeded
    "55": 500,  # object not in prerequisite state
    "57": 500,  # operator intervention
    "58": 500,  # system error
    "F0": 500,  # configuration file error
    "HV": 500,  # foreign data wrapper error
    "P0": 500,  # PL/pgSQL error (no_data_found P0002, too_many_rows P0003, ...)
    "XX": 500,  # internal error
}


# A code in the contract's style (NOT_FOUND, RATE_LIMITED), as opposed to a SQLSTATE or PGRSTnnn.
_CONTRACT_WORD = re.compile(r"[A-Z]{2,}(?:_[A-Z]+)*")


@dataclass(frozen=True)
class PostgrestError:
    """What a PostgREST client receives: HTTP status, headers and the JSON body."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def code(self) -> str:
        return str(self.body.get("code") or "")

    @property
    def message(self) -> str:
        return str(self.body.get("message") or "")


def status_for(sqlstate: str | None, *, authed: bool = True) -> int:
    """PostgREST's HTTP status for a (non-PGRST) SQLSTATE."""
    if not sqlstate:
        return 500  # not a database error answer (connection lost, driver error)
    if sqlstate == "42501":
        return 403 if authed else 401
    if sqlstate in _EXACT:
        return _EXACT[sqlstate]
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    return _CLASS.get(sqlstate[:2], 400)


def _pgrst(message: str | None, detail: str | None) -> PostgrestError:
    try:
        body = json.loads(message or "")
        meta = json.loads(detail or "")
        status = int(meta["status"])
        if not isinstance(body, dict) or not isinstance(meta, dict):
            raise ValueError("not objects")
    except (ValueError, KeyError, TypeError):
        # PostgREST answers a malformed custom error with PGRST121, status 500.
        return PostgrestError(
            500,
            {
                "code": "PGRST121",
                "message": "Could not parse JSON in the RAISE SQLSTATE 'PGRST' error",
                "details": f"Invalid JSON value for MESSAGE: '{message}'",
                "hint": "MESSAGE must be a JSON object with obligatory keys: 'code', 'message'.",
            },
        )
    headers = {str(k): str(v) for k, v in (meta.get("headers") or {}).items()}
    full = {
        "code": body.get("code"),
        "message": body.get("message"),
        "details": body.get("details"),
        "hint": body.get("hint"),
    }
    return PostgrestError(status, full, headers)


def translate(exc: psycopg.Error, *, authed: bool = True) -> PostgrestError:
    """The status and body PostgREST would answer for `exc` (authed: the request had a
    non-anon JWT)."""
    diag = exc.diag
    if exc.sqlstate == "PGRST":
        return _pgrst(diag.message_primary, diag.message_detail)
    return PostgrestError(
        status_for(exc.sqlstate, authed=authed),
        {
            "code": exc.sqlstate,
            "message": diag.message_primary or str(exc),
            "details": diag.message_detail,
            "hint": diag.message_hint,
        },
    )


def contract_code(err: PostgrestError) -> str:
    """The API contract's error code: the custom error's own code when it is one of the
    contract's words, otherwise the contract's code for the status."""
    if _CONTRACT_WORD.fullmatch(err.code):
        return err.code
    return code_for(err.status)


def contract_error(err: PostgrestError) -> dict[str, Any]:
    """The API contract's `{"error": {code, message, details}}` for the same failure."""
    details = err.body.get("details")
    hint = err.body.get("hint")
    if hint:
        details = {"hint": hint} if details is None else {"details": details, "hint": hint}
    return {"error": {"code": contract_code(err), "message": err.message, "details": details}}
