"""`dbr gen-types`: the frontend's TypeScript types of the public schema, regenerated."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console

from cli import app
from cli.stack_cmds import prepare_tools, start_database

if TYPE_CHECKING:
    pass


console = Console(stderr=True)


@app.command("gen-types")
def gen_types(
    check: bool = typer.Option(
        False, "--check", help="Do not write: exit 1 when the committed file is stale."
    ),
) -> None:
    """Regenerate supabase/types/database.ts (supabase gen types typescript) from the migrations."""
    from dbr.dev import typegen
    from dbr.settings import ROOT, get_settings

    settings = get_settings()
    prepare_tools()
    start_database()
    rel = typegen.TYPES_FILE.relative_to(ROOT)
    if check:
        if typegen.stale(settings):
            console.print(f"[red]types are stale: run bin/dbr gen-types[/] ({rel})")
            raise typer.Exit(1)
        console.print(f"{rel} is up to date")
        return
    changed = typegen.write(settings)
    console.print(f"{'wrote' if changed else 'unchanged:'} {rel}")
