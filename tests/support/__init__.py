"""Test helpers every domain uses: tenants, users with roles, acting as a user the way
PostgREST does, waiting for a condition and a free local port.

Domain builders live beside them (`tests.support.outreach`, `.ai`, `.bookings`); the shared
fixtures (stand-ins, edge functions server, worker processes) in `tests.support.fixtures`,
which the root conftest registers so every `tests/<domain>/` can use them by name."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from dbr.auth import Caller
from dbr.db import as_caller_sync
from dbr.postgrest import PostgrestError, translate


def make_client(conn: psycopg.Connection[Any], name: str = "Client", **cols: Any) -> uuid.UUID:
    fields = {"name": name, **cols}
    keys = ", ".join(fields)
    marks = ", ".join(["%s"] * len(fields))
    row = conn.execute(
        f"insert into public.clients ({keys}) values ({marks}) returning id", list(fields.values())
    ).fetchone()
    return row["id"]


def make_user(
    conn: psycopg.Connection[Any],
    client_id: uuid.UUID | None,
    role: str = "admin",
    *,
    status: str = "active",
    email: str | None = None,
    **perms: Any,
) -> uuid.UUID:
    user_id = uuid.uuid4()
    email = email or f"{role}-{user_id.hex[:8]}@example.test"
    conn.execute(
        "insert into auth.users (id, aud, role, email)"
        " values (%s, 'authenticated', 'authenticated', %s)",
        (user_id, email),
    )
    if client_id is not None:
        defaults = {"can_view_all_leads": True}
        defaults.update(perms)
        cols = ", ".join(defaults)
        marks = ", ".join(["%s"] * len(defaults))
        conn.execute(
            f"insert into public.client_members (client_id, user_id, role, status, email, {cols}) "
            f"values (%s, %s, %s, %s, %s, {marks})",
            (client_id, user_id, role, status, email, *defaults.values()),
        )
    return user_id


def caller_for(user_id: uuid.UUID, email: str | None = None) -> Caller:
    claims = {"sub": str(user_id), "role": "authenticated", "aud": "authenticated"}
    if email:
        claims["email"] = email
    return Caller(user_id=user_id, role="authenticated", claims=claims)


@contextmanager
def acting_as(
    conn: psycopg.Connection[Any], user_id: uuid.UUID
) -> Iterator[psycopg.Connection[Any]]:
    """One transaction run as `user_id` (role authenticated + JWT claims)."""
    with as_caller_sync(conn, caller_for(user_id)) as c:
        yield c


def refusal(
    conn: psycopg.Connection[Any], user_id: uuid.UUID, sql: str, *params: Any
) -> PostgrestError:
    """Runs `sql` as `user_id` (as PostgREST runs a request) and returns what a PostgREST
    client receives for the error it raises: HTTP status and body, by PostgREST's rules."""
    try:
        with acting_as(conn, user_id) as c:
            c.execute(sql, params)
    except psycopg.Error as exc:
        return translate(exc, authed=True)
    raise AssertionError(f"no error from {sql!r}")


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Polls `check` until it returns something truthy (returned) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:.0f}s")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
