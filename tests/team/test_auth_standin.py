"""The Auth stand-in's refusals, as GoTrue answers them, through the real `supabase` client; and
`dbr up` starting it only when no Supabase project is configured."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest
from supabase_auth.errors import AuthApiError

from dbr.dev.services import services
from dbr.dev.standins.auth import AuthStandin
from dbr.settings import Settings
from dbr.team import auth_admin
from tests.support import make_client
from tests.team.conftest import PASSWORD, add_member


def test_refusals_have_gotrues_codes(
    db: psycopg.Connection[Any], team_settings: Settings, auth_standin: AuthStandin
) -> None:
    _, email = add_member(db, make_client(db, "Standin refusals"))
    client = auth_admin.user_client(team_settings)
    with pytest.raises(AuthApiError) as wrong:
        client.auth.sign_in_with_password({"email": email, "password": "not it"})
    assert (wrong.value.status, wrong.value.code) == (400, "invalid_credentials")

    # A user's token is not an admin's: GoTrue refuses admin calls with it.
    session = client.auth.sign_in_with_password({"email": email, "password": PASSWORD}).session
    assert session is not None
    r = httpx.post(
        f"{auth_standin.origin}/auth/v1/invite",
        json={"email": "someone@team.test"},
        headers={"Authorization": f"Bearer {session.access_token}"},
    )
    assert r.status_code == 403 and r.json()["error_code"] == "not_admin"
    assert r.headers["X-Supabase-Api-Version"] == "2024-01-01"

    # A forged token is refused by /user.
    with pytest.raises(AuthApiError):
        client.auth.get_user("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.bad")

    # An unconfirmed (invited) user cannot sign in, even with the right password.
    db.execute(
        "update auth.users set email_confirmed_at = null where lower(email) = lower(%s)", (email,)
    )
    with pytest.raises(AuthApiError) as unconfirmed:
        auth_admin.user_client(team_settings).auth.sign_in_with_password(
            {"email": email, "password": PASSWORD}
        )
    assert unconfirmed.value.code == "email_not_confirmed"


def test_admin_create_user_and_password_sign_in(team_settings: Settings) -> None:
    import asyncio

    async def create() -> str:
        admin = await auth_admin.admin_client(team_settings)
        made = await admin.auth.admin.create_user(
            {"email": "made@team.test", "password": "pass-word-1", "email_confirm": True}
        )
        return made.user.id

    user_id = asyncio.run(create())
    got = auth_admin.user_client(team_settings).auth.sign_in_with_password(
        {"email": "made@team.test", "password": "pass-word-1"}
    )
    assert got.user is not None and got.user.id == user_id


def test_dbr_up_starts_the_auth_standin_only_without_a_project(settings: Settings) -> None:
    local = {s.name for s in services(settings.model_copy(update={"supabase_url": None}))}
    hosted = {
        s.name
        for s in services(
            settings.model_copy(
                update={"supabase_url": "https://x.supabase.co", "supabase_service_role_key": "k"}
            )
        )
    }
    assert "auth-standin" in local and "auth-standin" not in hosted
