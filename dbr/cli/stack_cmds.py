"""Local stack commands: up, stop, reset, status, token, psql."""

from __future__ import annotations

import os
import time

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from dbr import stack
from dbr.auth import mint_token
from dbr.cli import app
from dbr.services import service_env, services
from dbr.settings import get_settings

console = Console(stderr=True)


def _step(msg: str) -> None:
    console.print(f"[bold cyan]>[/] {msg}")


def prepare_tools() -> None:
    """Install missing Debian packages and the npm-delivered tools (Supabase CLI, Deno)."""
    settings = get_settings()
    installed = stack.ensure_apt_packages()
    if installed:
        _step(f"installed Debian packages: {', '.join(installed)}")
    if stack.ensure_node_tools(settings):
        _step("installed the Supabase CLI and Deno into .tools/")


def start_database() -> stack.Cluster:
    settings = get_settings()
    cluster = stack.Cluster.local(settings)
    if cluster.init():
        _step(f"created a PostgreSQL cluster in {cluster.data_dir}")
    if cluster.start():
        _step(f"started PostgreSQL on 127.0.0.1:{cluster.port}")
    return cluster


def apply_schema(with_seed: bool = True) -> str:
    settings = get_settings()
    url = stack.database_url(settings)
    stack.bootstrap(url)
    out = stack.migrate(settings, url)
    if "Applying migration" in out:
        _step("applied migrations")
    if with_seed:
        stack.seed(url)
    return url


@app.command()
def up() -> None:
    """Install what is missing, start the database, migrate, seed and start every service."""
    t0 = time.monotonic()
    settings = get_settings()
    prepare_tools()
    start_database()
    url = apply_schema()
    env = service_env(settings)
    for svc in services(settings):
        if stack.start_service(settings, svc, env):
            _step(f"started {svc.name}")
        if svc.port and not stack.wait_for_port(svc.port):
            log = settings.local_dir / "log" / f"{svc.name}.log"
            console.print(f"[red]{svc.name} did not open port {svc.port}; see {log}[/]")
            raise typer.Exit(1)
    dt = time.monotonic() - t0
    console.print(f"\n[bold green]Stack is up[/] in {dt:.1f}s")
    console.print(f"  API         http://{settings.api_host}:{settings.api_port}  (docs at /docs)")
    console.print(f"  Database    {url}")
    console.print("  Token       bin/dbr token --email admin@acme.test")
    console.print("  Logs        .local/log/   Stop: bin/dbr stop")


@app.command()
def stop() -> None:
    """Stop every service and the database."""
    settings = get_settings()
    for svc in reversed(services(settings)):
        if stack.stop_service(settings, svc.name):
            _step(f"stopped {svc.name}")
    if stack.Cluster.local(settings).stop():
        _step("stopped PostgreSQL")


@app.command()
def reset(yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation.")) -> None:
    """Drop the local database and rebuild it from migrations and seed (services restart)."""
    if not yes and not typer.confirm("Drop all local data and rebuild?"):
        raise typer.Abort()
    settings = get_settings()
    stop()
    stack.Cluster.local(settings).destroy()
    _step("removed the local cluster")
    up()


@app.command()
def status() -> None:
    """Show what is running."""
    settings = get_settings()
    cluster = stack.Cluster.local(settings)
    table = Table("component", "state", "detail")
    db_state = "running" if cluster.running else ("stopped" if cluster.initialised else "absent")
    detail = ""
    if cluster.running:
        try:
            detail = f"latest migration {stack.latest_migration(stack.database_url(settings))}"
        except psycopg.Error as exc:
            detail = f"not migrated ({exc.__class__.__name__})"
    table.add_row("postgres", db_state, detail)
    for svc in services(settings):
        pid = stack.service_pid(settings, svc.name)
        table.add_row(
            svc.name, "running" if pid else "stopped", f"pid {pid}, port {svc.port}" if pid else ""
        )
    Console().print(table)


@app.command()
def token(
    email: str = typer.Option(..., "--email", help="E-mail of a user in auth.users."),
    ttl: int = typer.Option(3600, help="Lifetime in seconds."),
) -> None:
    """Print a JWT for a local user, signed with the local JWT secret."""
    settings = get_settings()
    with psycopg.connect(stack.database_url(settings)) as conn:
        row = conn.execute(
            "select id from auth.users where lower(email) = lower(%s)", (email,)
        ).fetchone()
    if not row:
        console.print(f"[red]no user with e-mail {email}[/]")
        raise typer.Exit(1)
    print(mint_token(settings, user_id=row[0], email=email, ttl_seconds=ttl))


@app.command()
def psql() -> None:
    """Open psql on the local database."""
    url = stack.database_url(get_settings())
    os.execvp("psql", ["psql", url])
