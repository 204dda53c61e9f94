"""Team fixtures: the Auth stand-in on an ephemeral port, the API pointed at it, and members
with passwords (so they sign in through the real `supabase` client)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from dbr.dev.standins.auth import AuthStandin
from dbr.settings import Settings
from tests.support import make_client

PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def auth_standin(settings: Settings, db_url: str) -> Iterator[AuthStandin]:
    with AuthStandin(database_url=db_url, settings=settings) as standin:
        yield standin


@pytest.fixture(scope="session")
def team_settings(settings: Settings, auth_standin: AuthStandin) -> Settings:
    return settings.model_copy(update={"auth_standin_port": auth_standin.port})


@pytest.fixture(scope="session")
def team_api(team_settings: Settings) -> Iterator[TestClient]:
    from api.main import create_app

    with TestClient(create_app(team_settings), raise_server_exceptions=False) as client:
        yield client


def add_member(
    conn: psycopg.Connection[Any],
    client_id: uuid.UUID,
    role: str = "admin",
    *,
    email: str | None = None,
    password: str | None = PASSWORD,
    status: str = "active",
    **perms: Any,
) -> tuple[uuid.UUID, str]:
    """An auth user (confirmed, with a password) and its membership; returns (id, email)."""
    user_id = uuid.uuid4()
    email = email or f"{role}-{user_id.hex[:8]}@team.test"
    conn.execute(
        "insert into auth.users (id, aud, role, email, encrypted_password, email_confirmed_at)"
        " values (%s, 'authenticated', 'authenticated', %s,"
        " extensions.crypt(%s, extensions.gen_salt('bf', 4)), now())",
        (user_id, email, password or ""),
    )
    values = {"can_view_all_leads": True, **perms}
    if role == "admin":
        values = {
            "can_edit_lessons": True,
            "can_push_to_live": True,
            "can_manage_users": True,
            **values,
        }
    cols = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    conn.execute(
        f"insert into public.client_members (client_id, user_id, role, status, email, {cols})"
        f" values (%s, %s, %s, %s, %s, {marks})",
        (client_id, user_id, role, status, email, *values.values()),
    )
    return user_id, email


@pytest.fixture
def tenant(db: psycopg.Connection[Any]) -> Callable[..., uuid.UUID]:
    def make(name: str = "Team client", **cols: Any) -> uuid.UUID:
        return make_client(db, name, **cols)

    return make
