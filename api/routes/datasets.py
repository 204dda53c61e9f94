"""CSV upload and import: POST /api/datasets/upload and POST /api/datasets/map-and-import.

Both run as the caller, so RLS decides: a read-only member gets 403, another tenant's upload or
dataset is a 404. Upload streams the body to disk counting bytes (413 at the cap), checks the
content is CSV (415/400 otherwise, nothing stored), detects encoding and delimiter, counts rows
and suggests a mapping. Import runs the importer shared with `dbr import` in a worker thread.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter, Request
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CallerDep, PoolDep, SettingsDep
from api.openapi import error_responses
from dbr.datasets import queries
from dbr.datasets.errors import BadCsv, TooLarge
from dbr.datasets.importer import (
    CampaignSettings,
    ImportTarget,
    as_caller_on_new_connection,
    context_from_row,
    dataset_from_row,
    import_upload,
)
from dbr.datasets.multipart import UploadReceiver
from dbr.datasets.preview import build_preview
from dbr.db import as_caller
from dbr.storage import CSV_UPLOADS, get_storage

router = APIRouter(prefix="/api/datasets", tags=["datasets"])

# Multipart framing and the dataset_id field on top of the file itself.
_ENVELOPE_BYTES = 64 * 1024

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "dataset_id": {"type": "string", "format": "uuid"},
                    },
                }
            }
        },
    }
}


def _uuid_field(value: str | None, name: str) -> uuid.UUID | None:
    if value is None or not value.strip():
        return None
    try:
        return uuid.UUID(value.strip())
    except ValueError as exc:
        raise BadCsv(f"{name} is not a valid id.", details={"field": name}) from exc


@router.post(
    "/upload",
    status_code=201,
    openapi_extra=_UPLOAD_BODY,
    responses=error_responses(400, 403, 404, 413, 415),
    summary="Upload a CSV lead list and get a preview with a suggested column mapping",
)
async def upload(
    request: Request, caller: CallerDep, pool: PoolDep, settings: SettingsDep
) -> dict[str, Any]:
    # Who first: a read-only member is refused before a byte of the file is read.
    async with as_caller(pool, caller) as conn:
        ctx = context_from_row(await (await conn.execute(queries.CALLER)).fetchone())

    declared = request.headers.get("content-length")
    too_big = settings.max_upload_bytes + _ENVELOPE_BYTES
    if declared and declared.isdigit() and int(declared) > too_big:
        raise TooLarge(
            f"The file is larger than the {settings.max_upload_bytes // 2**20} MB limit.",
            details={"max_bytes": settings.max_upload_bytes},
        )

    storage = get_storage(settings)
    receiver = UploadReceiver(
        request.headers.get("content-type"), storage.incoming_dir(), settings.max_upload_bytes
    )
    try:
        async for chunk in request.stream():
            receiver.feed(chunk)
        received = receiver.finish()
        if received.path is None:
            raise BadCsv("No file: send the CSV in a form field named 'file'.")
        dataset_id = _uuid_field(received.fields.get("dataset_id"), "dataset_id")
        preview = await asyncio.to_thread(build_preview, received.path, ctx.region)

        upload_id = uuid.uuid4()
        key = f"{ctx.client_id}/{upload_id}.csv"
        url = storage.url(CSV_UPLOADS, key)
        columns = [c.as_json() for c in preview.columns]
        async with as_caller(pool, caller) as conn:
            if dataset_id is not None:
                row = await (await conn.execute(queries.DATASET, (dataset_id,))).fetchone()
                dataset_from_row(row, dataset_id)
            cur = await conn.execute(
                queries.INSERT_UPLOAD,
                {
                    "id": upload_id,
                    "dataset_id": dataset_id,
                    "filename": received.filename,
                    "url": url,
                    "size": received.size,
                    "encoding": preview.dialect.encoding,
                    "delimiter": preview.dialect.delimiter,
                    "header_line": preview.header_line,
                    "rows": preview.rows_detected,
                    "columns": Jsonb(columns),
                },
            )
            # The key is the database's (<client_id>/<id>.csv, set by a trigger), the same
            # as `key` above. Stored inside the transaction: if storing fails, the row is
            # rolled back.
            stored = await cur.fetchone()
            if stored is None or stored["storage_path"] != key:
                raise RuntimeError(f"upload {upload_id}: unexpected storage key")
            await asyncio.to_thread(storage.put_file, CSV_UPLOADS, key, received.path)
    finally:
        receiver.discard()

    return {
        "upload": {
            "id": str(upload_id),
            "filename": received.filename,
            "file_url": url,
            "rows_detected": preview.rows_detected,
            "columns": columns,
        }
    }


class ColumnMapping(BaseModel):
    """CSV column name for each lead field; phone_number and first_name are required."""

    model_config = ConfigDict(extra="forbid", strict=True)

    first_name: str | None = None
    last_name: str | None = None
    phone_number: str | None = None
    email: str | None = None
    postcode: str | None = None
    inquiry_date: str | None = None
    notes: str | None = None


class MapAndImportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    upload_id: uuid.UUID = Field(description="From POST /api/datasets/upload.")
    dataset_id: uuid.UUID
    column_mapping: ColumnMapping
    campaign_settings: CampaignSettings | None = None


@router.post(
    "/map-and-import",
    responses=error_responses(403, 404, 409),
    summary="Import an uploaded CSV into a dataset with a column mapping",
)
async def map_and_import(
    body: MapAndImportRequest, caller: CallerDep, settings: SettingsDep
) -> dict[str, Any]:
    target = ImportTarget(
        dataset_id=body.dataset_id,
        mapping=body.column_mapping.model_dump(),
        campaign_settings=body.campaign_settings,
        upload_id=body.upload_id,
        source="api",
    )
    storage = get_storage(settings)
    result = await asyncio.to_thread(
        as_caller_on_new_connection,
        settings.database_url,
        caller,
        lambda conn: import_upload(conn, storage, target),
    )
    return result.response()
