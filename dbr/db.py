"""Database access shared by the API, the workers and the CLI.

Every request a user makes runs in one transaction *as that user*: `role` and
`request.jwt.claims` are set transaction-locally, exactly as PostgREST does, so row level
security is the one authority. Connections are opened with autocommit so that
`conn.transaction()` is a real transaction and the `set_config(..., true)` calls end with it.

One way to call SQL: `call` (async) and `call_sync` run one SQL function by name with named
arguments and return its value; `call_as` runs it in a transaction of its own, as a caller
or (caller None) as the service:

    begin = await call(conn, "private.ai_reply_begin", p_conversation_id=cid, ...)
    job = await call_as(pool, caller, "private.ai_draft_job", p_job_id=job_id)

Arguments are bound by name (`p_x => %(p_x)s`), so their order and the defaults of the ones
left out are the function's business; a dict argument is sent as jsonb. Longer statements
live per domain in `dbr/<domain>/queries.py`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
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


def function_call(function: str, args: Mapping[str, Any]) -> tuple[sql.Composed, dict[str, Any]]:
    """`select schema.function(name => %(name)s, ...) as r` and its parameters."""
    parts = function.split(".")
    named = sql.SQL(", ").join(
        sql.SQL("{} => {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in args
    )
    query = sql.SQL("select {}({}) as r").format(sql.Identifier(*parts), named)
    params = {k: Jsonb(v) if isinstance(v, dict) else v for k, v in args.items()}
    return query, params


async def call(conn: psycopg.AsyncConnection[Any], function: str, /, **args: Any) -> Any:
    """The value SQL function `function` returns for these named arguments."""
    query, params = function_call(function, args)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        row = await cur.fetchone()
    return row["r"] if row else None


def call_sync(conn: psycopg.Connection[Any], function: str, /, **args: Any) -> Any:
    """`call` on a synchronous connection (the importer, the CLI, tests)."""
    query, params = function_call(function, args)
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query, params).fetchone()
    return row["r"] if row else None


async def call_as(
    pool: AsyncConnectionPool, caller: Caller | None, function: str, /, **args: Any
) -> Any:
    """`call` in a transaction of its own: as `caller` (RLS applies), or as the service."""
    if caller is None:
        async with as_service(pool) as conn:
            return await call(conn, function, **args)
    async with as_caller(pool, caller) as conn:
        return await call(conn, function, **args)
