"""Helpers for the upload/import tests: a tenant with one member per role and a dataset,
uploading and importing through the API, the messy CSV fixtures."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from dbr.auth import mint_token
from dbr.settings import Settings
from tests.support import make_client, make_user

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "csv"
UPLOAD_CAP = 256 * 1024


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@dataclass
class Tenant:
    client_id: uuid.UUID
    admin: uuid.UUID
    manager: uuid.UUID
    sales_rep: uuid.UUID
    read_only: uuid.UUID
    dataset_id: uuid.UUID
    settings: Settings

    def headers(self, user: uuid.UUID | None = None) -> dict[str, str]:
        token = mint_token(self.settings, user_id=user or self.admin)
        return {"Authorization": f"Bearer {token}"}

    def new_dataset(self, db: psycopg.Connection[Any], name: str = "More leads") -> uuid.UUID:
        return make_dataset(db, self.client_id, name)


def make_dataset(db: psycopg.Connection[Any], client_id: uuid.UUID, name: str) -> uuid.UUID:
    row = db.execute(
        "insert into public.datasets (client_id, name) values (%s, %s) returning id",
        (client_id, name),
    ).fetchone()
    return row["id"]


def make_tenant(
    db: psycopg.Connection[Any], settings: Settings, region: str = "GB", name: str = "Acme"
) -> Tenant:
    client = make_client(db, name, default_region=region)
    return Tenant(
        client_id=client,
        admin=make_user(db, client, "admin"),
        manager=make_user(db, client, "manager"),
        sales_rep=make_user(db, client, "sales_rep"),
        read_only=make_user(db, client, "read_only"),
        dataset_id=make_dataset(db, client, "Old list"),
        settings=settings,
    )


def upload(
    api: TestClient,
    tenant: Tenant,
    content: bytes | str,
    *,
    filename: str = "leads.csv",
    user: uuid.UUID | None = None,
    dataset_id: uuid.UUID | str | None = None,
) -> Any:
    if isinstance(content, str):
        content = fixture_bytes(content)
    data = {"dataset_id": str(dataset_id)} if dataset_id is not None else {}
    return api.post(
        "/api/datasets/upload",
        files={"file": (filename, content, "text/csv")},
        data=data,
        headers=tenant.headers(user),
    )


def stored_files(settings: Settings) -> list[Path]:
    """Every object in the csv_uploads bucket plus anything left in the incoming area."""
    root = settings.storage_dir
    return [p for p in root.rglob("*") if p.is_file()]


def import_upload(
    api: TestClient,
    tenant: Tenant,
    upload_id: str,
    mapping: dict[str, str | None],
    *,
    dataset_id: uuid.UUID | None = None,
    user: uuid.UUID | None = None,
    campaign_settings: dict[str, Any] | None = None,
) -> Any:
    body: dict[str, Any] = {
        "upload_id": upload_id,
        "dataset_id": str(dataset_id or tenant.dataset_id),
        "column_mapping": mapping,
    }
    if campaign_settings is not None:
        body["campaign_settings"] = campaign_settings
    return api.post("/api/datasets/map-and-import", json=body, headers=tenant.headers(user))


def suggested(upload_body: dict[str, Any]) -> dict[str, str]:
    """field -> column from an upload response's suggestions."""
    return {
        c["suggested_mapping"]: c["name"]
        for c in upload_body["upload"]["columns"]
        if c["suggested_mapping"]
    }
