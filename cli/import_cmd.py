"""`dbr import FILE --dataset ID`: the map-and-import code path from the command line.

Runs as a real member of the dataset's client (RLS applies exactly as through the API): the
user given with --as-email, else the client's first admin. Without --map the suggested
mapping of the upload preview is used.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from cli import app

if TYPE_CHECKING:
    import psycopg

    from dbr.auth import Caller
    from dbr.datasets.importer import ImportResult
    from dbr.datasets.preview import Preview


console = Console(stderr=True)


def _parse_maps(maps: list[str]) -> dict[str, str]:
    """--map 'Mobile No=phone_number' (column=field; the last '=' splits)."""
    from dbr.datasets.mapping import FIELDS

    mapping: dict[str, str] = {}
    for item in maps:
        col, sep, field = item.rpartition("=")
        field = field.strip()
        if not sep or not col.strip():
            raise typer.BadParameter(f"{item!r}: use --map 'Column name=field'")
        if field not in FIELDS:
            raise typer.BadParameter(f"{item!r}: field must be one of {', '.join(FIELDS)}")
        mapping[field] = col.strip()
    return mapping


def _resolve_user(conn: psycopg.Connection[Any], dataset: uuid.UUID, email: str | None) -> Caller:
    from dbr.auth import Caller

    if email:
        row = conn.execute(
            """select u.id, u.email from auth.users u
               join public.client_members m on m.user_id = u.id and m.status = 'active'
               where lower(u.email) = lower(%s)""",
            (email,),
        ).fetchone()
        if row is None:
            raise typer.BadParameter(
                f"no active member with email {email!r}", param_hint="--as-email"
            )
    else:
        row = conn.execute(
            """select m.user_id as id, m.email from public.datasets d
               join public.client_members m on m.client_id = d.client_id
               where d.id = %s and m.role = 'admin' and m.status = 'active'
               order by m.created_at, m.user_id limit 1""",
            (dataset,),
        ).fetchone()
        if row is None:
            raise typer.BadParameter(
                "dataset not found, or its client has no active admin (use --as-email)",
                param_hint="--dataset",
            )
    claims = {"sub": str(row["id"]), "role": "authenticated", "aud": "authenticated"}
    if row["email"]:
        claims["email"] = row["email"]
    console.print(f"Importing as [bold]{row['email']}[/]")
    return Caller(user_id=row["id"], role="authenticated", claims=claims)


def _region(conn: psycopg.Connection[Any], dataset: uuid.UUID) -> str:
    row = conn.execute(
        """select c.default_region from public.datasets d join public.clients c
           on c.id = d.client_id where d.id = %s""",
        (dataset,),
    ).fetchone()
    return row["default_region"] if row else "GB"


def _show_preview(preview: Preview, mapping: dict[str, str]) -> None:
    from dbr.datasets.mapping import FIELDS

    d = preview.dialect
    console.print(
        f"Detected {d.encoding}, {d.delimiter_name}-separated, "
        f"{preview.rows_detected:,} data rows (header on line {preview.header_line})"
    )
    table = Table("field", "column", "sample values")
    samples = {c.name: c.sample_values for c in preview.columns}
    for field in FIELDS:
        col = mapping.get(field)
        if col:
            table.add_row(field, col, " | ".join(samples.get(col, [])))
    console.print(table)


def _show_result(result: ImportResult, show_errors: int) -> None:
    table = Table("total rows", "imported", "failed", "duplicates", "seconds", "rows/s")
    rate = result.total_rows / result.seconds if result.seconds else 0
    table.add_row(
        f"{result.total_rows:,}",
        f"{result.successful:,}",
        f"{result.failed:,}",
        f"{result.duplicates:,}",
        f"{result.seconds:.1f}",
        f"{rate:,.0f}",
    )
    console.print(table)
    for err in result.errors.items[:show_errors]:
        console.print(f"  [red]row {err['row']}[/]: {err['reason']}")
    if result.errors.count > show_errors:
        console.print(f"  ... {result.errors.count - show_errors:,} more row errors")
    for w in result.warning_list()[:show_errors]:
        where = f"row {w['row']}" if w.get("row") else "note"
        console.print(f"  [yellow]{where}[/]: {w['reason']}")


@app.command("import")
def import_file(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    dataset: uuid.UUID = typer.Option(..., "--dataset", help="Dataset id to import into."),
    maps: list[str] = typer.Option(
        [], "--map", help="Column mapping 'Column name=field' (repeat); default: suggested."
    ),
    as_email: str | None = typer.Option(
        None, "--as-email", help="Run as this member (default: the client's first admin)."
    ),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Default: SUPABASE_DB_URL / settings.database_url."
    ),
    show_errors: int = typer.Option(20, help="How many row errors and warnings to print."),
) -> None:
    """Import a CSV lead list into a dataset (same importer as POST map-and-import)."""
    import psycopg
    from psycopg.rows import dict_row

    from dbr.datasets.errors import DatasetError
    from dbr.datasets.importer import ImportTarget, as_caller_on_new_connection
    from dbr.datasets.importer import import_rows as run_import
    from dbr.datasets.preview import build_preview
    from dbr.postgrest import translate
    from dbr.settings import get_settings

    url = database_url or get_settings().database_url
    explicit = _parse_maps(maps)
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        caller = _resolve_user(conn, dataset, as_email)
        region = _region(conn, dataset)
    try:
        with console.status("Reading the file (encoding, delimiter, rows)..."):
            preview = build_preview(file, region)
        mapping = explicit or {
            c.suggested_mapping: c.name for c in preview.columns if c.suggested_mapping
        }
        _show_preview(preview, mapping)
        target = ImportTarget(dataset_id=dataset, mapping=mapping, source="cli", filename=file.name)
        with Progress(
            TextColumn("[bold]importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("import", total=max(preview.rows_detected, 1), rate="")

            def progress(rows: int, _bytes: int) -> None:
                speed = bar.tasks[task].speed
                bar.update(task, completed=rows, rate=f"{speed:,.0f} rows/s" if speed else "")

            result = as_caller_on_new_connection(
                url,
                caller,
                lambda c: run_import(c, file, preview.dialect, target, progress=progress),
            )
    except DatasetError as exc:
        console.print(f"[red]{exc.message}[/]")
        if exc.details:
            console.print(exc.details)
        raise typer.Exit(1) from exc
    except psycopg.Error as exc:
        console.print(f"[red]The database refused the import: {translate(exc).message}[/]")
        raise typer.Exit(1) from exc
    _show_result(result, show_errors)
