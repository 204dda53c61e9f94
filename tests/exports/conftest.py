"""Fixtures for the export tests: an API whose storage is a temporary directory, a tenant
world (two datasets, members of each kind, another client)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from dbr.settings import Settings
from tests.exports.support import World, make_world


@pytest.fixture(scope="session")
def export_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return settings.model_copy(
        update={
            "storage_backend": "local",
            "storage_dir": tmp_path_factory.mktemp("export-storage"),
            "api_rate_limit_per_minute": 100_000,
            "export_wait_seconds": 20.0,
            "public_api_url": "http://testserver",
        }
    )


@pytest.fixture(scope="session")
def export_api(export_settings: Settings) -> Iterator[TestClient]:
    from api.main import create_app

    with TestClient(create_app(export_settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def world(db: psycopg.Connection[Any]) -> World:
    # Exports in flight are limited per member; start every test with none left over.
    db.execute("delete from private.jobs where kind like 'exports.%'")
    return make_world(db)
