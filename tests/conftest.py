"""Shared fixtures: a throw-away database per test session (copied from a template built
from every migration), privileged and per-user connections, and the API over HTTP.

Tests live by domain in tests/<domain>/, each with its conftest.py for what only that domain
needs. Fixtures several domains use (the stand-ins, the edge functions server, worker
processes, `ai_settings`) are in tests/support/fixtures.py, registered here for every test;
helpers to import are in tests/support/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

from dbr.auth import mint_token
from dbr.dev import stack, testdb
from dbr.settings import Settings, get_settings

pytest_plugins = ("tests.support.fixtures",)


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def db_url(base_settings: Settings) -> Iterator[str]:
    cluster = stack.Cluster.local(base_settings)
    if not cluster.running:
        pytest.exit("PostgreSQL is not running: use `bin/dbr test` (it starts it).", returncode=2)
    name, url = testdb.create_test_database(base_settings, f"py{os.getpid()}")
    yield url
    stack.drop_database(stack.database_url(base_settings), name)


@pytest.fixture(scope="session")
def settings(base_settings: Settings, db_url: str) -> Settings:
    return base_settings.model_copy(update={"database_url": db_url})


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A privileged (postgres) autocommit connection to the test database."""
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture(scope="session")
def api(settings: Settings) -> Iterator[TestClient]:
    from api.main import create_app

    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def token_for(settings: Settings):
    def make(user_id: Any, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(settings, user_id=user_id, **kw)}"}

    return make
