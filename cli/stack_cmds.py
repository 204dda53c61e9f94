"""Local stack commands: up, stop, reset, status, token, psql."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from cli import app

if TYPE_CHECKING:
    from dbr.dev import stack


console = Console(stderr=True)


def _step(msg: str) -> None:
    console.print(f"[bold cyan]>[/] {msg}")


def prepare_tools() -> None:
    """Install missing Debian packages and the npm-delivered tools (Supabase CLI, Deno)."""
    from dbr.dev import stack
    from dbr.settings import get_settings

    settings = get_settings()
    installed = stack.ensure_apt_packages()
    if installed:
        _step(f"installed Debian packages: {', '.join(installed)}")
    if stack.ensure_node_tools(settings):
        _step("installed the Supabase CLI and Deno into .tools/")


def start_database() -> stack.Cluster:
    from dbr.dev import stack
    from dbr.settings import get_settings

    settings = get_settings()
    cluster = stack.Cluster.local(settings)
    if cluster.init():
        _step(f"created a PostgreSQL cluster in {cluster.data_dir}")
    if cluster.start():
        _step(f"started PostgreSQL on 127.0.0.1:{cluster.port}")
    return cluster


def apply_schema(with_seed: bool = True) -> str:
    from dbr.dev import stack
    from dbr.settings import get_settings

    settings = get_settings()
    url = stack.database_url(settings)
    stack.bootstrap(url)
    stale = stack.stale_migrations(settings, url)
    if stale:
        # Until a first release, migrations may still be edited in place: a local database
        # built from older files must be rebuilt rather than half-migrated.
        console.print(
            "[red]The local database was built from migrations that have changed since "
            f"(or misses ones added before the newest it has): {', '.join(stale)}.[/]\n"
            "Rebuild it (this drops local data): bin/dbr reset --yes"
        )
        raise typer.Exit(1)
    out = stack.migrate(settings, url)
    stack.record_migrations(settings)
    if "Applying migration" in out:
        _step("applied migrations")
    if with_seed:
        stack.seed(url)
    return url


@app.command()
def up() -> None:
    """Install what is missing, start the database, migrate, seed and start every service."""
    from dbr.dev import stack
    from dbr.dev.services import service_env, services
    from dbr.settings import get_settings

    t0 = time.monotonic()
    started_at = datetime.now(UTC)
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
    _wait_for_scheduled_jobs(url, started_at)
    dt = time.monotonic() - t0
    console.print(f"\n[bold green]Stack is up[/] in {dt:.1f}s")
    console.print(f"  API         http://{settings.api_host}:{settings.api_port}  (docs at /docs)")
    console.print(f"  Database    {url}")
    console.print("  Token       bin/dbr token --email admin@acme.test")
    console.print("  Logs        .local/log/   Stop: bin/dbr stop")


def _wait_for_scheduled_jobs(url: str, started_at: datetime) -> None:
    """Scheduled work must be seen to run: wait for each every-minute pg_cron job's first
    successful run (skipped when all of them succeeded within the last minute)."""
    from dbr.dev import stack

    now = datetime.now(UTC)
    jobs = [j for j in stack.cron_jobs(url) if j.active and j.every_minute]
    if all(
        j.last_status == "succeeded" and j.last_start and (now - j.last_start).total_seconds() < 60
        for j in jobs
    ):
        return
    _step(f"waiting for the first run of {len(jobs)} every-minute pg_cron jobs (up to a minute)")
    try:
        stack.wait_for_cron(url, started_at)
    except stack.StackError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    _step("every scheduled job ran and succeeded")


@app.command()
def stop() -> None:
    """Stop every service and the database."""
    from dbr.dev import stack
    from dbr.dev.services import services
    from dbr.settings import get_settings

    settings = get_settings()
    for svc in reversed(services(settings)):
        if stack.stop_service(settings, svc.name):
            _step(f"stopped {svc.name}")
    if stack.Cluster.local(settings).stop():
        _step("stopped PostgreSQL")


@app.command()
def reset(yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation.")) -> None:
    """Drop the local database and rebuild it from migrations and seed (services restart)."""
    from dbr.dev import stack
    from dbr.settings import get_settings

    if not yes and not typer.confirm("Drop all local data and rebuild?"):
        raise typer.Abort()
    settings = get_settings()
    stop()
    stack.Cluster.local(settings).destroy()
    _step("removed the local cluster")
    up()


@app.command()
def status() -> None:
    """Show what is running and each scheduled job's last run; exit 1 when something is wrong."""
    import psycopg

    from dbr.dev import stack
    from dbr.dev.services import services
    from dbr.settings import get_settings

    settings = get_settings()
    cluster = stack.Cluster.local(settings)
    url = stack.database_url(settings)
    problems: list[str] = []
    table = Table("component", "state", "detail")
    db_state = "running" if cluster.running else ("stopped" if cluster.initialised else "absent")
    detail = ""
    jobs: list[stack.CronJob] = []
    if cluster.running:
        try:
            detail = f"latest migration {stack.latest_migration(url)}"
            jobs = stack.cron_jobs(url)
        except psycopg.Error as exc:
            detail = f"not migrated ({exc.__class__.__name__})"
            problems.append("the database is not migrated")
    table.add_row("postgres", db_state, detail)
    for svc in services(settings):
        pid = stack.service_pid(settings, svc.name)
        table.add_row(
            svc.name, "running" if pid else "stopped", f"pid {pid}, port {svc.port}" if pid else ""
        )
        if cluster.running and not pid:
            problems.append(f"{svc.name} is not running")
    Console().print(table)

    if jobs:
        now = datetime.now(UTC)
        cron = Table("scheduled job", "schedule", "last run", "status", "problem")
        for job in jobs:
            problem = job.problem(now)
            if problem:
                problems.append(f"pg_cron job {job.name} {problem}")
            cron.add_row(
                job.name,
                job.schedule,
                f"{job.last_start:%m-%d %H:%M:%S}" if job.last_start else "never",
                job.last_status or "-",
                f"[red]{problem}[/]" if problem else "",
            )
        Console().print(cron)
    for problem in problems:
        console.print(f"[red]problem:[/] {problem}")
    if problems:
        raise typer.Exit(1)


@app.command()
def url(
    what: str = typer.Argument(
        "api",
        help="api | db | functions | twilio | anthropic | calcom | email | auth (local stand-ins)",
    ),
) -> None:
    """Print the local URL of a part of the stack (the ports come from the settings)."""
    from dbr.dev import stack
    from dbr.settings import get_settings

    settings = get_settings()
    urls = {
        "api": f"http://{settings.api_host}:{settings.api_port}",
        "db": stack.database_url(settings),
        "functions": f"http://127.0.0.1:{settings.functions_port}/functions/v1",
        "twilio": f"http://127.0.0.1:{settings.twilio_standin_port}",
        "anthropic": f"http://127.0.0.1:{settings.anthropic_standin_port}",
        "calcom": f"http://127.0.0.1:{settings.calcom_standin_port}",
        "email": f"http://127.0.0.1:{settings.email_standin_port}",
        "auth": f"http://127.0.0.1:{settings.auth_standin_port}",
    }
    if what not in urls:
        console.print(f"[red]unknown part {what!r}; one of: {', '.join(urls)}[/]")
        raise typer.Exit(2)
    print(urls[what])


@app.command()
def token(
    email: str = typer.Option(..., "--email", help="E-mail of a user in auth.users."),
    ttl: int = typer.Option(3600, help="Lifetime in seconds."),
) -> None:
    """Print a JWT for a local user, signed with the local JWT secret."""
    import psycopg

    from dbr.auth import mint_token
    from dbr.dev import stack
    from dbr.settings import get_settings

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
    from dbr.dev import stack
    from dbr.settings import get_settings

    url = stack.database_url(get_settings())
    os.execvp("psql", ["psql", url])
