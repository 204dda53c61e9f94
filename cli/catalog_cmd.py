"""`dbr catalog-diff`: compare the schema the migrations of a git revision build with the one
the working tree's migrations build, object by object (see dbr.dev.catalog)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from cli import app
from cli.stack_cmds import prepare_tools, start_database

if TYPE_CHECKING:
    pass


console = Console(stderr=True)


def _checkout_migrations(rev: str, into: Path) -> None:
    """supabase/config.toml and supabase/migrations as they are at `rev`."""
    from dbr.settings import ROOT

    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "supabase/migrations", "supabase/config.toml"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def _working_tree(into: Path) -> None:
    from dbr.settings import ROOT

    (into / "supabase").mkdir(parents=True)
    shutil.copy(ROOT / "supabase" / "config.toml", into / "supabase" / "config.toml")
    shutil.copytree(ROOT / "supabase" / "migrations", into / "supabase" / "migrations")


@app.command("catalog-diff")
def catalog_diff(
    rev: str = typer.Argument(..., help="Git revision whose migrations are the baseline."),
) -> None:
    """Build one database from the migrations at REV and one from the working tree and print
    every catalog difference (tables, columns, constraints, indexes, triggers, policies,
    grants, functions, comments, reference rows, ...); exit 1 when there is any."""
    from dbr.dev import catalog, stack
    from dbr.settings import get_settings

    settings = get_settings()
    prepare_tools()
    start_database()
    admin = stack.database_url(settings)
    tag = uuid.uuid4().hex[:8]
    snaps = []
    with tempfile.TemporaryDirectory(prefix="dbr_catalog_") as tmp:
        for label, fill in (
            ("old", lambda d: _checkout_migrations(rev, d)),
            ("new", _working_tree),
        ):
            workdir = Path(tmp) / label
            workdir.mkdir()
            fill(workdir)
            name = f"dbr_catalog_{label}_{tag}"
            try:
                url = catalog.build_database(settings, name, workdir)
                snap = catalog.snapshot_url(url)
            except subprocess.CalledProcessError as exc:
                console.print(f"[red]migrations at {label} failed[/]\n{exc.stdout}\n{exc.stderr}")
                raise typer.Exit(2) from exc
            finally:
                stack.drop_database(admin, name)
            snap["cron_jobs"] = snap["cron_jobs"] or catalog.scheduled_cron_jobs(
                workdir / "supabase" / "migrations"
            )
            snaps.append(snap)
    lines = catalog.diff(*snaps)
    for line in lines:
        print(line)
    counts = {section: len(v) for section, v in snaps[1].items()}
    summary = ", ".join(f"{n} {section}" for section, n in sorted(counts.items()))
    if lines:
        changed = sum(1 for line in lines if not line.startswith("    "))
        console.print(f"[red]{changed} differences[/] between {rev} and the working tree")
        console.print(f"compared: {summary}")
        raise typer.Exit(1)
    console.print(f"no differences between {rev} and the working tree (compared: {summary})")
