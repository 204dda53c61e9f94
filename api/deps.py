"""Request dependencies: the caller (from the Supabase JWT), the per-user rate limit and a
database connection running as the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import AsyncConnectionPool

from dbr.auth import Caller, InvalidToken, verify_token
from dbr.db import as_caller, as_service
from dbr.errors import DbrError
from dbr.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="Supabase access token")


def settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def pool_dep(request: Request) -> AsyncConnectionPool:
    return request.app.state.pool


async def _enforce_rate_limit(pool: AsyncConnectionPool, subject: str, limit: int) -> None:
    async with as_service(pool) as conn:
        cur = await conn.execute(
            "select * from private.hit_api_rate_limit(%s, %s)", (subject, limit)
        )
        row = await cur.fetchone()
    if row and not row["allowed"]:
        retry = int(row["retry_after_seconds"])
        raise DbrError(
            "Too many requests; slow down.",
            status=429,
            details={"limit_per_minute": limit, "retry_after_seconds": retry},
            headers={"Retry-After": str(retry)},
        )


async def current_caller(
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    settings: Annotated[Settings, Depends(settings_dep)],
    pool: Annotated[AsyncConnectionPool, Depends(pool_dep)],
) -> Caller:
    if creds is None or creds.scheme.lower() != "bearer":
        raise DbrError(
            "Sign in first: a bearer token is required.",
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        caller = verify_token(settings, creds.credentials)
    except InvalidToken as exc:
        raise DbrError(
            "The access token is invalid or expired.",
            status=401,
            details={"reason": str(exc)},
            headers={"WWW-Authenticate": "Bearer"},
        ) from exc
    if caller.role == "anon":
        raise DbrError("Sign in first: an anonymous token is not enough.", status=401)
    subject = str(caller.user_id) if caller.user_id else "service_role"
    await _enforce_rate_limit(pool, f"user:{subject}", settings.api_rate_limit_per_minute)
    return caller


async def user_db(
    caller: Annotated[Caller, Depends(current_caller)],
    pool: Annotated[AsyncConnectionPool, Depends(pool_dep)],
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A connection inside one transaction running as the caller: RLS decides everything."""
    async with as_caller(pool, caller) as conn:
        yield conn


CallerDep = Annotated[Caller, Depends(current_caller)]
UserDb = Annotated[psycopg.AsyncConnection[Any], Depends(user_db)]
PoolDep = Annotated[AsyncConnectionPool, Depends(pool_dep)]
SettingsDep = Annotated[Settings, Depends(settings_dep)]
