"""Call a public RPC exactly as PostgREST's `POST /rpc/<name>` does, without PostgREST.

What PostgREST does for such a request, and so what `call_rpc` does:

1. one transaction, `role` = the JWT's role and `request.jwt.claims` = its claims
   (`dbr.db.as_caller_sync`, the helper the API uses), plus `request.method` / `request.path`;
   READ ONLY when the function is stable or immutable, as PostgREST runs those;
2. the `db_pre_request` function, when the `authenticator` role names one
   (`alter role authenticator set pgrst.db_pre_request = '...'`), runs first;
3. the function is chosen by name among the exposed schema's functions whose argument names
   cover the JSON body's keys (and whose arguments without defaults are all given); none is
   PGRST202 (404), several PGRST203 (300);
4. the body is bound to the arguments by their declared types, as PostgREST binds it
   (`json_to_record($1) as x(arg type, ...)`), each given argument passed by name, so the
   others take their defaults;
5. the result is returned as JSON; an error is answered by PostgREST's rules (`dbr.postgrest`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from dbr.auth import Caller
from dbr.db import as_caller_sync
from dbr.errors import DbrError
from dbr.postgrest import PostgrestError, contract_error, translate

SCHEMA = "public"  # PostgREST's db-schemas on Supabase


class RpcError(DbrError):
    """The request failed; `error` is what a PostgREST client would receive (status and
    PostgREST's body), `code`/`message`/`details` the same failure in the API contract's
    words."""

    def __init__(self, error: PostgrestError) -> None:
        body = contract_error(error)["error"]
        super().__init__(
            body["message"],
            status=error.status,
            code=body["code"],
            details=body["details"],
            headers=error.headers or None,
        )
        self.error = error

    def __str__(self) -> str:
        return f"HTTP {self.error.status}: {self.error.message}"


@dataclass(frozen=True)
class _Function:
    name: str
    args: list[tuple[str, str]]  # (name, declared type) of the input arguments, in order
    required: set[str]  # arguments without a default
    returns_set: bool
    read_only: bool  # stable or immutable: PostgREST runs it in a READ ONLY transaction


def _functions(conn: psycopg.Connection[Any], name: str) -> list[_Function]:
    rows = conn.execute(
        """
        select p.proname, p.proretset, p.pronargs, p.pronargdefaults,
          p.provolatile in ('s', 'i') as read_only,
          array(
            select format_type(t.oid, null)
            from unnest(p.proargtypes) with ordinality a(oid, n) join pg_type t on t.oid = a.oid
            order by a.n
          ) as types,
          array(
            select a.name
            from unnest(coalesce(p.proargnames, array[]::text[]),
                        coalesce(p.proargmodes, array[]::"char"[])) with ordinality a(name, mode, n)
            where a.mode is null or a.mode in ('i', 'b', 'v')
            order by a.n
          ) as names
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = %s and p.proname = %s and p.prokind = 'f'
        """,
        (SCHEMA, name),
    ).fetchall()
    out = []
    for row in rows:
        r = row if isinstance(row, dict) else dict(zip(_COLS, row, strict=True))
        names = list(r["names"]) + [""] * (r["pronargs"] - len(r["names"]))
        args = list(zip(names[: r["pronargs"]], r["types"], strict=True))
        required = {n for n, _ in args[: r["pronargs"] - r["pronargdefaults"]]}
        out.append(_Function(r["proname"], args, required, r["proretset"], r["read_only"]))
    return out


_COLS = ("proname", "proretset", "pronargs", "pronargdefaults", "read_only", "types", "names")


def _not_found(name: str, keys: list[str]) -> RpcError:
    params = ", ".join(sorted(keys))
    return RpcError(
        PostgrestError(
            404,
            {
                "code": "PGRST202",
                "message": f"Could not find the function {SCHEMA}.{name}({params})"
                " in the schema cache",
                "details": f"Searched for the function {SCHEMA}.{name} with parameters {params} "
                "or with a single unnamed json/jsonb parameter, but no matches were found in "
                "the schema cache.",
                "hint": None,
            },
        )
    )


def _choose(functions: list[_Function], name: str, body: dict[str, Any]) -> _Function:
    keys = set(body)
    matches = [f for f in functions if keys <= {n for n, _ in f.args} and f.required <= keys]
    if not matches:
        raise _not_found(name, list(keys))
    if len(matches) > 1:
        raise RpcError(
            PostgrestError(
                300,
                {
                    "code": "PGRST203",
                    "message": f"Could not choose the best candidate function between: {name}",
                    "details": None,
                    "hint": "Try renaming the parameters or the function itself in the database "
                    "so function overloading can be resolved",
                },
            )
        )
    return matches[0]


def pre_request_function(conn: psycopg.Connection[Any]) -> str | None:
    """The function the authenticator role names in `pgrst.db_pre_request`, if any."""
    row = conn.execute(
        """
        select substr(c, length('pgrst.db_pre_request=') + 1) as fn
        from pg_db_role_setting s
        join pg_roles r on r.oid = s.setrole
        cross join unnest(s.setconfig) c
        where r.rolname = 'authenticator' and s.setdatabase in (0, (
          select oid from pg_database where datname = current_database()))
          and c like 'pgrst.db\\_pre\\_request=%'
        order by s.setdatabase desc
        limit 1
        """
    ).fetchone()
    if not row:
        return None
    fn = row["fn"] if isinstance(row, dict) else row[0]
    return fn.strip() or None


def _qualified(name: str) -> sql.Composable:
    return sql.SQL(".").join(sql.Identifier(part) for part in name.split("."))


def call_rpc(conn: psycopg.Connection[Any], caller: Caller, name: str, body: dict[str, Any]) -> Any:
    """POST /rpc/`name` with JSON `body` as `caller`; returns the JSON result or raises
    RpcError carrying PostgREST's status and body. `conn` must be in autocommit mode."""
    if not isinstance(body, dict):
        raise RpcError(
            PostgrestError(
                400,
                {"code": "PGRST102", "message": "Invalid body", "details": None, "hint": None},
            )
        )
    # PostgREST reads its configuration and schema cache as the authenticator, not per user.
    pre = pre_request_function(conn)
    fn = _choose(_functions(conn, name), name, body)
    given = [(n, t) for n, t in fn.args if n in body]
    call = sql.SQL("{}.{}({})").format(
        sql.Identifier(SCHEMA),
        sql.Identifier(fn.name),
        sql.SQL(", ").join(
            sql.SQL("{} => x.{}").format(sql.Identifier(n), sql.Identifier(n)) for n, _ in given
        ),
    )
    record = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in given
    )
    source = (
        sql.SQL("from json_to_record(%s::json) as x({})").format(record) if given else sql.SQL("")
    )
    if fn.returns_set:
        query = sql.SQL(
            "select coalesce(json_agg(r), '[]'::json) as r from (select * from {} {}) r"
        ).format(call, source)
    else:
        query = sql.SQL("select to_json({}) as r {}").format(call, source)
    try:
        with as_caller_sync(conn, caller):
            if fn.read_only:
                conn.execute("set transaction read only")
            conn.execute(
                "select set_config('request.method', 'POST', true),"
                " set_config('request.path', %s, true),"
                " set_config('request.headers', '{}', true)",
                (f"/rpc/{name}",),
            )
            if pre:
                conn.execute(sql.SQL("select {}()").format(_qualified(pre)))
            row = conn.execute(query, (json.dumps(body),) if given else None).fetchone()
    except psycopg.Error as exc:
        raise RpcError(translate(exc, authed=caller.role != "anon")) from exc
    if row is None:
        return None
    return row["r"] if isinstance(row, dict) else row[0]


def pick(value: Any, path: str) -> Any:
    """`path` ("dataset.id", "leads.0.id") inside a JSON value; KeyError when absent."""
    for part in path.split("."):
        if isinstance(value, list):
            value = value[int(part)]
        elif isinstance(value, dict):
            value = value[part]
        else:
            raise KeyError(part)
    return value
