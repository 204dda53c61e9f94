"""Building, handing out and purging export files.

An export is requested as the member (`private.request_export`, called by the API as the
caller), which records it and enqueues an `exports.build` job. `build_export` (the job's
body, run by a worker in a thread: the writers are CPU-bound) reads the rows **as the member
who asked**, with the client's time zone, so RLS alone decides what is in the file; it
streams them to a temporary file beside the storage, stores that in the `exports` bucket
under `<client_id>/<export id>.<format>` and marks the export ready for 24 hours.
`download_url` signs a link that expires with the file: Supabase Storage's signed URL on a
hosted project, an HMAC-signed link to the API's download route locally. `purge_expired`
(the `exports.purge` job, enqueued by pg_cron) deletes the files past their expiry.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg.rows import dict_row

from dbr.auth import Caller
from dbr.db import as_caller_sync, call_sync
from dbr.exports import queries, summary
from dbr.exports.writers import write_csv, write_xlsx
from dbr.settings import Settings
from dbr.storage import EXPORTS, LocalStorage, Storage

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_TEMP_PREFIX = ".export-"


def caller_of(user_id: str | uuid.UUID) -> Caller:
    """The member who asked for an export, as PostgREST would present it."""
    claims = {"sub": str(user_id), "role": "authenticated", "aud": "authenticated"}
    return Caller(user_id=uuid.UUID(str(user_id)), role="authenticated", claims=claims)


class ExportGone(Exception):
    """The export cannot be built any more: its requester was deleted, suspended or left."""


def write_rows(conn: psycopg.Connection[Any], export: dict[str, Any], path: Path) -> int:
    """Writes the export's file to `path` on `conn` (running as the requester); returns rows."""
    params = {
        "dataset_id": export.get("dataset_id"),
        "since": export.get("since"),
        "time_range": export.get("time_range"),
    }
    if export["export_type"] == "analytics_summary":
        return summary.write_summary(conn, params, export["format"], path)
    query, sheet = queries.ROWS[export["export_type"]]
    if export["format"] == "csv":
        return write_csv(conn, query, params, path)
    return write_xlsx(conn, query, params, path, sheet)


def build_export(settings: Settings, storage: Storage, export_id: str) -> dict[str, Any] | None:
    """Builds and stores one export; returns it (as export_json), or None when it was settled
    already (a second delivery of its job). Raises on failure: the job is retried."""
    with psycopg.connect(settings.database_url, autocommit=True, row_factory=dict_row) as conn:
        export = call_sync(conn, "private.begin_export", export_id=export_id)
        if export is None:
            return None
        if not export.get("requested_by"):
            raise ExportGone("the member who asked for this export no longer exists")
        fd, tmp = tempfile.mkstemp(
            dir=storage.incoming_dir(), prefix=_TEMP_PREFIX, suffix="." + export["format"]
        )
        os.close(fd)
        path = Path(tmp)
        try:
            with as_caller_sync(conn, caller_of(export["requested_by"])) as c:
                member = c.execute(queries.STILL_MEMBER, (export["client_id"],)).fetchone()
                if not (member and member["ok"]):
                    raise ExportGone("the member who asked for this export is no longer active")
                c.execute("select set_config('timezone', %s, true)", (export["timezone"],))
                rows = write_rows(c, export, path)
            storage.put_file(EXPORTS, export["storage_path"], path, CONTENT_TYPES[export["format"]])
            done = call_sync(
                conn,
                "private.finish_export",
                export_id=export_id,
                row_count=rows,
                size_bytes=path.stat().st_size,
                valid_for=timedelta(hours=settings.export_ttl_hours),
            )
        finally:
            path.unlink(missing_ok=True)
    return done


def fail_export(settings: Settings, export_id: str, error: str) -> None:
    """Records that the export could not be built (its job's last attempt failed)."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        call_sync(conn, "private.fail_export", export_id=export_id, error=error)


def purge_expired(settings: Settings, storage: Storage, batch: int = 500) -> int:
    """Deletes the files of expired exports (and builders' temporary files left by a crash
    a day ago or more); returns how many exports were purged."""
    purged = 0
    with psycopg.connect(settings.database_url, autocommit=True, row_factory=dict_row) as conn:
        while True:
            rows = conn.execute(queries.EXPIRED, (batch,)).fetchall()
            for row in rows:
                storage.delete(EXPORTS, row["storage_path"])
            if rows:
                ids = [r["export_id"] for r in rows]
                purged += call_sync(conn, "private.mark_exports_purged", export_ids=ids) or 0
            if len(rows) < batch:
                break
    stale = time.time() - 86400
    for leftover in storage.incoming_dir().glob(_TEMP_PREFIX + "*"):
        if leftover.stat().st_mtime < stale:
            leftover.unlink(missing_ok=True)
    return purged


def _expiry(export: dict[str, Any]) -> float:
    value = export["expires_at"]
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.timestamp()


def download_url(settings: Settings, storage: Storage, export: dict[str, Any]) -> str | None:
    """A signed link to a ready export's file, valid until the file expires (None otherwise)."""
    if export.get("status") != "ready" or not export.get("expires_at"):
        return None
    expires = int(_expiry(export))
    if expires <= time.time():
        return None
    key = export["storage_path"]
    if isinstance(storage, LocalStorage):
        token = storage.sign(EXPORTS, key, expires)
        return (
            f"{settings.public_api_url.rstrip('/')}/api/exports/files/{quote(key)}"
            f"?expires={expires}&token={token}"
        )
    return storage.signed_url(
        EXPORTS, key, max(1, expires - int(time.time())), download=export["filename"]
    )


def public_view(export: dict[str, Any], url: str | None) -> dict[str, Any]:
    """The API contract's export object ({id, filename, download_url, expires_at, rows}) and
    what a poller needs beside it (status, error, what was asked for)."""
    shown = {k: v for k, v in export.items() if k != "storage_path"}
    return {"export": {**shown, "download_url": url}}
