"""POST /api/analytics/export (contract shape), polling it, and local signed downloads.

POST records the export as the caller (`private.request_export`: member, dataset visible,
at most 3 in flight) and its `exports.build` job, then waits for a worker to build the file,
up to `export_wait_seconds` (20 s by default): built by then, it answers 200 with the
contract's `{export: {id, filename, download_url, expires_at, rows}}` (plus `status`); still
being built, 202 with the same object (`status` pending or running, no link yet) and a
`Location` to poll: GET /api/analytics/export/{id} answers the export as it is now, with a
fresh signed link once it is ready. The link expires with the file, 24 hours after it was
built. The file holds exactly the rows RLS lets the caller see (the worker reads them as the
caller).

GET /api/exports/files/{key}: where local signed links point (the local storage backend has
no file server of its own). No bearer token, as with Supabase's signed URLs: the HMAC token
is the permission. A tampered link (other file, other expiry, other token) is 403, an
expired one 410; a file the purge deleted is 404.
"""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict

from api.deps import CallerDep, PoolDep, SettingsDep
from api.openapi import error_responses
from dbr.auth import Caller
from dbr.db import as_caller, as_service, call_as
from dbr.errors import DbrError, Forbidden, NotFound
from dbr.exports import queries
from dbr.exports.service import CONTENT_TYPES, download_url, public_view
from dbr.storage import EXPORTS, LocalStorage, StorageError, get_storage

router = APIRouter(tags=["exports"])

POLL_SECONDS = 0.2
_IN_PROGRESS = ("pending", "running")


class ExportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    export_type: Literal["leads", "conversations", "lessons", "analytics_summary"]
    dataset_id: uuid.UUID | None = None
    time_range: Literal["today", "week", "month", "all"] | None = None
    format: Literal["csv", "xlsx"]


async def _export(pool: Any, caller: Caller, export_id: str) -> dict[str, Any] | None:
    async with as_caller(pool, caller) as conn:
        row = await (await conn.execute(queries.EXPORT, (export_id,))).fetchone()
    return row["r"] if row else None


def _answer(settings: Any, export: dict[str, Any], response: Response) -> dict[str, Any]:
    if export["status"] in _IN_PROGRESS:
        response.status_code = 202
        response.headers["Location"] = f"/api/analytics/export/{export['id']}"
        response.headers["Retry-After"] = "2"
    return public_view(export, download_url(settings, get_storage(settings), export))


@router.post(
    "/api/analytics/export",
    responses={
        202: {
            "description": "Still being built: poll the Location (GET) for the link.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **error_responses(403, 404, 429, 503),
    },
)
async def create_export(
    body: ExportBody, caller: CallerDep, pool: PoolDep, settings: SettingsDep, response: Response
) -> dict[str, Any]:
    """Export leads, conversations, lessons or the analytics summary as CSV or XLSX: a signed
    download link valid for 24 hours (202 and a Location to poll when it takes longer)."""
    export: dict[str, Any] = await call_as(
        pool,
        caller,
        "private.request_export",
        export_type=body.export_type,
        dataset_id=body.dataset_id,
        time_range=body.time_range,
        format=body.format,
    )
    deadline = time.monotonic() + settings.export_wait_seconds
    while export["status"] in _IN_PROGRESS and time.monotonic() < deadline:
        await asyncio.sleep(POLL_SECONDS)
        export = await _export(pool, caller, export["id"]) or export
    if export["status"] == "failed":
        raise DbrError(
            "The export could not be built; try again shortly.",
            status=503,
            details={"export_id": export["id"], "reason": export.get("error")},
        )
    return _answer(settings, export, response)


@router.get(
    "/api/analytics/export/{export_id}",
    responses={
        202: {
            "description": "Still being built: poll again after Retry-After.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **error_responses(404),
    },
)
async def get_export(
    export_id: uuid.UUID,
    caller: CallerDep,
    pool: PoolDep,
    settings: SettingsDep,
    response: Response,
) -> dict[str, Any]:
    """An export as it is now (its own, or any of the client's for an admin), with a fresh
    signed link while the file is downloadable."""
    export = await _export(pool, caller, str(export_id))
    if export is None:
        raise NotFound("export not found", details={"export_id": str(export_id)})
    return _answer(settings, export, response)


@router.get(
    "/api/exports/files/{key:path}",
    response_class=FileResponse,
    responses={
        200: {"description": "The file.", "content": {k: {} for k in CONTENT_TYPES.values()}},
        **error_responses(403, 404, 410),
    },
)
async def download(
    key: str,
    settings: SettingsDep,
    pool: PoolDep,
    expires: int = Query(..., description="Unix time the link expires"),
    token: str = Query(..., min_length=1, max_length=128),
) -> FileResponse:
    """A local signed download link (local storage backend only)."""
    storage = get_storage(settings)
    if not isinstance(storage, LocalStorage):
        raise NotFound("Downloads are served by Supabase Storage on this deployment.")
    try:
        expected = storage.sign(EXPORTS, key, expires)
    except StorageError as exc:
        raise Forbidden("This download link is not valid.") from exc
    if not hmac.compare_digest(expected.encode(), token.encode()):  # altered file, expiry, token
        raise Forbidden("This download link is not valid.")
    if expires < time.time():
        raise DbrError(
            "This download link has expired; ask for a new export.", status=410, code="EXPIRED"
        )
    async with as_service(pool) as conn:
        row = await (await conn.execute(queries.FILE, (key,))).fetchone()
    if row is None or row["status"] != "ready" or not storage.exists(EXPORTS, key):
        raise NotFound("This export's file no longer exists.")
    path = storage.root / EXPORTS / key
    return FileResponse(path, media_type=CONTENT_TYPES[row["format"]], filename=row["filename"])
