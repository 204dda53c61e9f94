"""Fixtures for the upload/import tests: an API whose storage is a temporary directory with a
small upload cap, and a fresh tenant."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from dbr.settings import Settings
from tests.imports.support import UPLOAD_CAP, Tenant, make_tenant


@pytest.fixture(scope="session")
def import_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return settings.model_copy(
        update={
            "storage_backend": "local",
            "storage_dir": tmp_path_factory.mktemp("storage"),
            "max_upload_bytes": UPLOAD_CAP,
            "api_rate_limit_per_minute": 100_000,
        }
    )


@pytest.fixture(scope="session")
def import_api(import_settings: Settings) -> Iterator[TestClient]:
    from api.main import create_app

    with TestClient(create_app(import_settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def tenant(db: psycopg.Connection[Any], import_settings: Settings) -> Tenant:
    return make_tenant(db, import_settings)
