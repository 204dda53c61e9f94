"""The lead importer shared by `POST /api/datasets/map-and-import` and `dbr import`.

One transaction, run as the importing user (RLS decides what they may touch):
1. stream the file record by record and normalise each row in Python (phonenumbers, dates,
   names), collecting row errors with the line number a person sees in the file;
2. COPY the good rows into a temporary staging table while reading (the server parses the
   COPY stream on its own core while Python normalises the next rows);
3. move them with ONE set-based `insert ... select distinct on (phone) ... on conflict
   (dataset_id, phone_number) do nothing`: duplicates within the file and against leads
   already in the dataset are skipped by the unique constraint, so concurrent imports into
   one dataset never create a duplicate, and the statement-level stats triggers on leads
   fire once for the whole batch;
4. save campaign settings and the import record.

Memory stays flat in file size: nothing is held per row (dedupe happens in SQL) and the
normalisation caches are bounded.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from dbr.auth import Caller
from dbr.datasets import queries
from dbr.datasets.dialect import Dialect, iter_records, open_text
from dbr.datasets.errors import DatasetNotFound, ImportForbidden, MappingError
from dbr.datasets.mapping import validate_mapping
from dbr.datasets.preview import read_header
from dbr.datasets.rows import STAGE_COLUMNS, IssueLog, RowBuilder
from dbr.db import as_caller_sync
from dbr.storage import CSV_UPLOADS, Storage

PROGRESS_EVERY = 20_000
T = TypeVar("T")

Progress = Callable[[int, int], None]
"""Called as progress(rows read, bytes read) every PROGRESS_EVERY rows and at the end."""


class CampaignSettings(BaseModel):
    """The API contract's campaign settings; defaults as the contract's (send M1 at once, M2
    48 h later, M3 96 h after M2, AI answers after 60 s). Ranges match the campaigns table.
    Strict: a string or a boolean is refused, not read as a number."""

    model_config = ConfigDict(extra="forbid", strict=True)

    m1_delay_hours: float = Field(0, ge=0, le=8760)
    m2_delay_hours: float = Field(48, ge=0, le=8760)
    m3_delay_hours: float = Field(96, ge=0, le=8760)
    ai_response_delay_seconds: int = Field(60, ge=0, le=86400)


@dataclass
class ImportTarget:
    dataset_id: uuid.UUID
    mapping: Mapping[str, str | None]
    campaign_settings: CampaignSettings | None = None
    upload_id: uuid.UUID | None = None
    source: str = "api"
    filename: str | None = None


@dataclass
class ImportResult:
    dataset_id: uuid.UUID
    total_rows: int = 0
    successful: int = 0
    failed: int = 0
    duplicates: int = 0
    errors: IssueLog = field(default_factory=IssueLog)
    warnings: IssueLog = field(default_factory=IssueLog)
    notices: list[dict[str, Any]] = field(default_factory=list)
    import_id: uuid.UUID | None = None
    seconds: float = 0.0
    stage_seconds: float = 0.0  # read, normalise and COPY to the staging table
    move_seconds: float = 0.0  # the one insert ... select into leads (triggers included)
    fast_phones: int = 0
    slow_phones: int = 0

    def warning_list(self) -> list[dict[str, Any]]:
        out = list(self.notices)
        if self.errors.truncated:
            out.append(
                {
                    "row": None,
                    "reason": f"{self.errors.count} rows failed; the first "
                    f"{len(self.errors.items)} are listed",
                }
            )
        if self.warnings.truncated:
            out.append(
                {
                    "row": None,
                    "reason": f"{self.warnings.count} warnings; the first "
                    f"{len(self.warnings.items)} are listed",
                }
            )
        return out + self.warnings.items

    def response(self) -> dict[str, Any]:
        """The API contract's response, plus `warnings` (values dropped from imported leads)."""
        return {
            "success": True,
            "imported": {
                "total_rows": self.total_rows,
                "successful": self.successful,
                "failed": self.failed,
                "duplicates": self.duplicates,
            },
            "dataset_id": str(self.dataset_id),
            "errors": self.errors.items,
            "warnings": self.warning_list(),
        }


@dataclass(frozen=True)
class CallerContext:
    client_id: uuid.UUID
    region: str
    can_manage_datasets: bool


def caller_context(conn: psycopg.Connection[Any], *, write: bool = True) -> CallerContext:
    """Who is importing: refuses non-members (403) and, for writes, read-only members and
    members that see only their assigned leads."""
    return context_from_row(conn.execute(queries.CALLER).fetchone(), write=write)


def context_from_row(row: Any, *, write: bool = True) -> CallerContext:
    if row is None:
        raise ImportForbidden("You are not an active member of any client.")
    client_id, region = row["id"], row["default_region"]
    can_write, can_manage, assigned_only = row["can_write"], row["can_manage"], row["assigned_only"]
    if write and not can_write:
        raise ImportForbidden("Your role is read-only: you cannot upload or import leads.")
    if write and assigned_only:
        # Without can_view_all_leads or a dataset list a member sees only the leads assigned
        # to it, so the leads of a list it imported would be invisible to it.
        raise ImportForbidden(
            "You see only the leads assigned to you, so you cannot upload or import a list; "
            "ask an admin or manager."
        )
    return CallerContext(client_id, region or "GB", bool(can_manage))


def visible_dataset(conn: psycopg.Connection[Any], dataset_id: uuid.UUID) -> str:
    """The dataset's campaign status; 404 when the caller cannot see it (or it is gone)."""
    return dataset_from_row(conn.execute(queries.DATASET, (dataset_id,)).fetchone(), dataset_id)


def dataset_from_row(row: Any, dataset_id: uuid.UUID) -> str:
    if row is None:
        raise DatasetNotFound("Dataset not found.", details={"dataset_id": str(dataset_id)})
    return str(row["campaign_status"])


_COPY = f"copy pg_temp.lead_import_stage ({', '.join(STAGE_COLUMNS)}) from stdin"


def import_rows(
    conn: psycopg.Connection[Any],
    path: Path,
    dialect: Dialect,
    target: ImportTarget,
    *,
    progress: Progress | None = None,
) -> ImportResult:
    """Imports the file at `path` into the target dataset. `conn` must be inside a
    transaction running as the importing user (see dbr.db.as_caller_sync)."""
    t0 = time.monotonic()
    ctx = caller_context(conn)
    visible_dataset(conn, target.dataset_id)
    started = conn.execute("select now() as now").fetchone()
    result = ImportResult(target.dataset_id)

    with open_text(path, dialect, strict=False) as text:
        records = iter_records(text, dialect)
        _, columns = read_header(records, ctx.region)
        mapping = validate_mapping(target.mapping, columns)
        build = RowBuilder(columns, mapping, ctx.region, result.errors, result.warnings)
        raw = text.buffer
        conn.execute(queries.STAGE_DDL)
        rows = 0
        with conn.cursor().copy(_COPY) as copy:
            write = copy.write_row
            for line, cells in records:
                rows += 1
                staged = build(line, cells)
                if staged is not None:
                    write(staged)
                if progress is not None and rows % PROGRESS_EVERY == 0:
                    progress(rows, raw.tell())
        if progress is not None:
            progress(rows, raw.tell())

    t1 = time.monotonic()
    # The distinct-on sort of a large file fits in memory instead of spilling to disk.
    conn.execute("set local work_mem = '128MB'")
    suppressed = _skip_suppressed(conn, ctx, result)
    cur = conn.execute(queries.MOVE, {"client_id": ctx.client_id, "dataset_id": target.dataset_id})
    inserted = int(cur.fetchone()["inserted"])
    result.stage_seconds = t1 - t0
    result.move_seconds = time.monotonic() - t1

    result.total_rows = rows
    result.failed = result.errors.count
    result.successful = inserted
    result.duplicates = build.staged - suppressed - inserted
    result.fast_phones, result.slow_phones = build.phone_stats

    _save_campaign_settings(conn, ctx, target, result)
    result.seconds = time.monotonic() - t0
    rec = conn.execute(
        queries.RECORD_IMPORT,
        {
            "dataset_id": target.dataset_id,
            "upload_id": target.upload_id,
            "source": target.source,
            "filename": (target.filename or "")[:255] or None,
            "mapping": Jsonb(mapping),
            "settings": Jsonb(target.campaign_settings.model_dump())
            if target.campaign_settings
            else None,
            "total": result.total_rows,
            "ok": result.successful,
            "failed": result.failed,
            "dups": result.duplicates,
            "warning_count": result.warnings.count,
            "errors": Jsonb(result.errors.items),
            "warnings": Jsonb(result.warning_list()),
            "started": started["now"] if started else None,
        },
    ).fetchone()
    result.import_id = rec["id"] if rec else None
    return result


def _skip_suppressed(
    conn: psycopg.Connection[Any], ctx: CallerContext, result: ImportResult
) -> int:
    """Drops staged rows whose number the client suppressed, one row error per line (the
    errors stay in file order); returns how many rows were dropped."""
    rows = conn.execute(queries.SKIP_SUPPRESSED, {"client_id": ctx.client_id}).fetchall()
    if not rows:
        return 0
    for line, phone in sorted((r["line"], r["phone_number"]) for r in rows):
        result.errors.add(
            line, f"{phone} has opted out (it is on the suppression list): not imported"
        )
    result.errors.items.sort(key=lambda e: (e["row"] is None, e["row"] or 0))
    return len(rows)


def _save_campaign_settings(
    conn: psycopg.Connection[Any], ctx: CallerContext, target: ImportTarget, result: ImportResult
) -> None:
    """Stores the campaign settings (admins and managers only: the campaigns table's rule);
    without settings, makes sure the dataset has its default settings row."""
    settings = target.campaign_settings
    if not ctx.can_manage_datasets:
        if settings is not None:
            result.notices.append(
                {
                    "row": None,
                    "field": "campaign_settings",
                    "reason": "campaign settings were not saved: only admins and managers "
                    "change them (the leads were imported)",
                }
            )
        return
    if settings is None:
        conn.execute(queries.ENSURE_SETTINGS, {"dataset_id": target.dataset_id})
        return
    conn.execute(
        queries.SAVE_SETTINGS,
        {
            "dataset_id": target.dataset_id,
            "m1": settings.m1_delay_hours,
            "m2": settings.m2_delay_hours,
            "m3": settings.m3_delay_hours,
            "ai": settings.ai_response_delay_seconds,
        },
    )


def load_upload(conn: psycopg.Connection[Any], upload_id: uuid.UUID) -> dict[str, Any]:
    """The caller's view of an upload (RLS): 404 for another tenant's or an unknown id."""
    cur = conn.cursor(row_factory=dict_row)
    row = cur.execute(
        queries.UPLOAD,
        (upload_id,),
    ).fetchone()
    if row is None:
        raise DatasetNotFound("Upload not found.", details={"upload_id": str(upload_id)})
    return row


def _own_storage_key(ctx: CallerContext, upload: Mapping[str, Any]) -> str:
    """The upload's object key, refused (403, nothing read) unless it is one object directly
    under the caller's `<client_id>/` prefix: the file is opened with service rights, so the
    row alone must never decide which client's file is read."""
    key = str(upload["storage_path"] or "")
    prefix, _, name = key.partition("/")
    if (
        prefix != str(ctx.client_id)
        or not name
        or "/" in name
        or "\\" in name
        or name in {".", ".."}
    ):
        raise ImportForbidden(
            "This upload's file is not stored under your client; upload the file again.",
            details={"upload_id": str(upload["id"])},
        )
    return key


def import_upload(
    conn: psycopg.Connection[Any],
    storage: Storage,
    target: ImportTarget,
    *,
    progress: Progress | None = None,
) -> ImportResult:
    """map-and-import: the stored upload `target.upload_id` into `target.dataset_id`."""
    ctx = caller_context(conn)
    assert target.upload_id is not None
    upload = load_upload(conn, target.upload_id)
    visible_dataset(conn, target.dataset_id)
    if upload["dataset_id"] is not None and upload["dataset_id"] != target.dataset_id:
        raise MappingError(
            "This upload was attached to another dataset; import it there or upload it again.",
            details={"upload_dataset_id": str(upload["dataset_id"])},
        )
    # Validate against the stored preview first: a bad mapping fails before any reading.
    validate_mapping(target.mapping, [c["name"] for c in upload["columns"]])
    target.filename = target.filename or upload["filename"]
    key = _own_storage_key(ctx, upload)
    dialect = Dialect(upload["encoding"], upload["delimiter"])
    with storage.open(CSV_UPLOADS, key) as path:
        return import_rows(conn, path, dialect, target, progress=progress)


def as_caller_on_new_connection(
    database_url: str, caller: Caller, work: Callable[[psycopg.Connection[Any]], T]
) -> T:
    """Runs `work` in one transaction as `caller` on a connection of its own (imports run in
    a worker thread, outside the API's async pool, and can take a while)."""
    with (
        psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn,
        as_caller_sync(conn, caller),
    ):
        return work(conn)
