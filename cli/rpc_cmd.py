"""`dbr rpc NAME --as EMAIL [JSON]`: call a public RPC as a user, exactly as PostgREST would."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from cli import app

if TYPE_CHECKING:
    pass


console = Console(stderr=True)


def _body(raw: str) -> Any:
    text = sys.stdin.read() if raw == "-" else raw
    try:
        return json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        console.print(f"[red]the body is not JSON: {exc}[/]")
        raise typer.Exit(2) from exc


def _raw(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@app.command()
def rpc(
    name: str = typer.Argument(..., help="Function in schema public, e.g. start_campaign."),
    body: str = typer.Argument(
        "{}", help="JSON body (the API contract's request keys); - reads stdin."
    ),
    as_email: str = typer.Option(..., "--as", help="E-mail of the user making the call."),
    get: str | None = typer.Option(
        None, "--get", help="Print only this field of the result, raw (e.g. dataset.id)."
    ),
) -> None:
    """Call public.NAME as a user, as PostgREST's POST /rest/v1/rpc/NAME would: role
    authenticated with the user's JWT claims, the pre-request hook, named arguments from the
    JSON keys. Prints the JSON result; on an error prints `HTTP <status>` and PostgREST's
    body to stderr and exits 1."""
    import psycopg
    from psycopg.rows import dict_row

    from dbr.auth import mint_token, verify_token
    from dbr.rpc import RpcError, call_rpc, pick
    from dbr.settings import get_settings

    settings = get_settings()
    payload = _body(body)
    with psycopg.connect(settings.database_url, autocommit=True, row_factory=dict_row) as conn:
        row = conn.execute(
            "select id, email from auth.users where lower(email) = lower(%s)", (as_email,)
        ).fetchone()
        if not row:
            console.print(f"[red]no user with e-mail {as_email}[/]")
            raise typer.Exit(1)
        # The claims PostgREST would decode from this user's access token.
        caller = verify_token(settings, mint_token(settings, user_id=row["id"], email=row["email"]))
        try:
            result = call_rpc(conn, caller, name, payload)
        except RpcError as exc:
            print(f"HTTP {exc.error.status}", file=sys.stderr)
            print(json.dumps(exc.error.body), file=sys.stderr)
            raise typer.Exit(1) from exc
    if get:
        try:
            print(_raw(pick(result, get)))
        except (KeyError, IndexError, ValueError) as exc:
            console.print(f"[red]no field {get} in the result[/]")
            raise typer.Exit(1) from exc
        return
    print(json.dumps(result, indent=2))
