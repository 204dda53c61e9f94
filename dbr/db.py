"""Database access shared by the API, the workers and the CLI.

Every request a user makes runs in one transaction *as that user*: `role` and
`request.jwt.claims` are set transaction-locally, exactly as PostgREST does, so row level
security is the one authority. Connections are opened with autocommit so that
`conn.transaction()` is a real transaction and the `set_config(..., true)` calls end with it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from dbr.auth import Caller

_SET_CALLER = "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)"


def async_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> AsyncConnectionPool:
    return AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        kwargs={"autocommit": True, "row_factory": dict_row},
        open=False,
    )


def _caller_params(caller: Caller) -> tuple[str, str]:
    return caller.role, json.dumps(caller.claims)


@asynccontextmanager
async def as_caller(
    pool: AsyncConnectionPool, caller: Caller
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """One transaction run as `caller` (role + JWT claims), the way PostgREST runs it."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(_SET_CALLER, _caller_params(caller))
        yield conn


@contextmanager
def as_caller_sync(
    conn: psycopg.Connection[Any], caller: Caller
) -> Iterator[psycopg.Connection[Any]]:
    with conn.transaction():
        conn.execute(_SET_CALLER, _caller_params(caller))
        yield conn


@asynccontextmanager
async def as_service(pool: AsyncConnectionPool) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """One transaction with the pool's own (privileged) login, for trusted internal work."""
    async with pool.connection() as conn, conn.transaction():
        yield conn
