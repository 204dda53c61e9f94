"""Invite -> accept -> active -> sign in through the real `supabase` client -> own client only;
suspend -> the same token is refused by the API and by RLS at once; re-invite resends; a member of
another client is 409; the last admin stays."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from supabase_auth.errors import AuthApiError

from dbr.auth import verify_token
from dbr.db import as_caller_sync
from dbr.dev.standins.auth import AuthStandin
from dbr.rpc import RpcError, call_rpc
from dbr.settings import Settings
from dbr.team import auth_admin
from tests.support import caller_for, make_client
from tests.team.conftest import PASSWORD, add_member

PERMS = {
    "can_view_all_leads": True,
    "can_edit_lessons": False,
    "can_push_to_live": False,
    "can_manage_users": False,
}


def sign_in(settings: Settings, email: str, password: str = PASSWORD) -> tuple[Any, str]:
    client = auth_admin.user_client(settings)
    answer = client.auth.sign_in_with_password({"email": email, "password": password})
    assert answer.session is not None
    return client, answer.session.access_token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def invite_body(email: str, role: str = "sales_rep", **kw: Any) -> dict[str, Any]:
    return {
        "email": email,
        "first_name": "Nia",
        "last_name": "New",
        "role": role,
        "permissions": kw.pop("permissions", PERMS),
        **kw,
    }


def member_row(db: psycopg.Connection[Any], user_id: Any) -> dict[str, Any]:
    row = db.execute(
        "select status, last_login_at, role from public.client_members where user_id = %s",
        (user_id,),
    ).fetchone()
    assert row is not None
    return row


def rls_clients(db_url: str, token: str, settings: Settings) -> list[Any]:
    """What an RLS read of `clients` returns for this token (as PostgREST would run it)."""
    with (
        psycopg.connect(db_url, autocommit=True) as conn,
        as_caller_sync(conn, verify_token(settings, token)) as c,
    ):
        return [r[0] for r in c.execute("select id from public.clients").fetchall()]


def test_invite_accept_sign_in_suspend(
    db: psycopg.Connection[Any],
    db_url: str,
    team_api: TestClient,
    team_settings: Settings,
    auth_standin: AuthStandin,
) -> None:
    acme = make_client(db, "Invite Acme")
    other = make_client(db, "Invite Other")
    admin_id, admin_email = add_member(db, acme)
    add_member(db, other)

    # The admin signs in through the supabase client, as a frontend does.
    _, admin_token = sign_in(team_settings, admin_email)
    email = f"nia-{uuid.uuid4().hex[:6]}@team.test"
    r = team_api.post("/api/users", json=invite_body(email), headers=bearer(admin_token))
    assert r.status_code == 201, r.text
    user = r.json()["user"]
    assert r.json()["invitation"] == "sent"
    assert (user["email"], user["role"], user["status"]) == (email, "sales_rep", "invited")
    assert user["permissions"] == PERMS
    invited_id = user["id"]

    meta = db.execute(
        "select raw_user_meta_data from auth.users where id = %s", (invited_id,)
    ).fetchone()
    assert meta["raw_user_meta_data"]["client_id"] == str(acme)
    assert meta["raw_user_meta_data"]["role"] == "sales_rep"

    # Not yet accepted: cannot sign in, and GET users lists them as invited.
    with pytest.raises(AuthApiError):
        auth_admin.user_client(team_settings).auth.sign_in_with_password(
            {"email": email, "password": "anything-at-all"}
        )
    listed = call_rpc(db, verify_token(team_settings, admin_token), "list_users", {})["users"]
    assert {u["email"]: u["status"] for u in listed}[email] == "invited"

    # Re-invite: the invitation goes again (a new token), same user, 200.
    r = team_api.post("/api/users", json=invite_body(email), headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    assert r.json()["invitation"] == "resent" and r.json()["user"]["id"] == invited_id
    mails = [m for m in auth_standin.emails if m.to == email]
    assert len(mails) == 2 and mails[0].token_hash != mails[1].token_hash

    # The old link no longer works; the new one does. Clicking it confirms the address, but the
    # membership only becomes active once a password is set.
    invitee = auth_admin.user_client(team_settings)
    with pytest.raises(AuthApiError):
        invitee.auth.verify_otp({"type": "invite", "token_hash": mails[0].token_hash})
    accepted = invitee.auth.verify_otp({"type": "invite", "email": email, "token": mails[1].token})
    assert accepted.session is not None and accepted.user is not None
    assert member_row(db, invited_id)["status"] == "invited"
    invitee.auth.update_user({"password": "a brand new password"})
    assert member_row(db, invited_id)["status"] == "active"

    # Sign in through the supabase client: last_login_at follows, /api/me and RLS see Acme only.
    client, token = sign_in(team_settings, email, "a brand new password")
    got = client.auth.get_user()
    assert got is not None and got.user.id == invited_id
    row = member_row(db, invited_id)
    assert row["last_login_at"] is not None
    me = team_api.get("/api/me", headers=bearer(token))
    assert me.status_code == 200 and me.json()["user"]["client_id"] == str(acme)
    assert rls_clients(db_url, token, team_settings) == [acme]

    # Suspend (DELETE users/[id]) as the admin: the invitee's token, still valid, is refused
    # at once.
    suspended = call_rpc(
        db, verify_token(team_settings, admin_token), "suspend_user", {"id": invited_id}
    )
    assert suspended["user"]["status"] == "suspended"
    assert team_api.get("/api/me", headers=bearer(token)).status_code == 403
    assert rls_clients(db_url, token, team_settings) == []
    with pytest.raises(RpcError) as refused:
        call_rpc(db, verify_token(team_settings, token), "get_client_settings", {})
    assert refused.value.error.status == 403

    # Sign-out revokes the session's refresh token (GoTrue: the access token lives on until exp).
    refresh = client.auth.get_session().refresh_token
    client.auth.sign_out()
    with pytest.raises(AuthApiError):
        auth_admin.user_client(team_settings).auth.refresh_session(refresh)

    # An active member cannot be re-invited; a member of another client is a clear 409 and no
    # e-mail goes out.
    before = len(auth_standin.emails)
    r = team_api.post("/api/users", json=invite_body(admin_email), headers=bearer(admin_token))
    assert r.status_code == 409 and r.json()["error"]["code"] == "CONFLICT"
    other_admin_email = db.execute(
        "select email from public.client_members where client_id = %s", (other,)
    ).fetchone()["email"]
    r = team_api.post(
        "/api/users", json=invite_body(other_admin_email), headers=bearer(admin_token)
    )
    assert r.status_code == 409, r.text
    assert "another client" in r.json()["error"]["message"]
    assert len(auth_standin.emails) == before
    assert admin_id


def test_invite_refusals(
    db: psycopg.Connection[Any],
    team_api: TestClient,
    team_settings: Settings,
    auth_standin: AuthStandin,
) -> None:
    acme = make_client(db, "Refusals Acme")
    add_member(db, acme)
    _, rep_email = add_member(db, acme, "sales_rep")
    _, mgr_email = add_member(
        db,
        acme,
        "manager",
        can_manage_users=True,
        can_view_all_leads=False,
        allowed_dataset_ids=[str(uuid.uuid4())],
    )
    before = len(auth_standin.emails)

    _, rep_token = sign_in(team_settings, rep_email)
    r = team_api.post("/api/users", json=invite_body("x1@team.test"), headers=bearer(rep_token))
    assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"

    # A user manager cannot invite above its own rights.
    _, mgr_token = sign_in(team_settings, mgr_email)
    for body, why in [
        (invite_body("x2@team.test", "admin"), "admin"),
        (invite_body("x3@team.test", permissions={**PERMS, "can_manage_users": True}), "admin"),
        (invite_body("x4@team.test"), "can_view_all_leads"),
        (
            invite_body("x5@team.test", permissions={**PERMS, "can_view_all_leads": False}),
            "datasets",
        ),
    ]:
        r = team_api.post("/api/users", json=body, headers=bearer(mgr_token))
        assert r.status_code == 403, (why, r.text)
        assert why in r.json()["error"]["message"]

    # Bad bodies: 400 naming the field; no e-mail for any refusal.
    _, admin_token = sign_in(
        team_settings,
        db.execute(
            "select email from public.client_members where client_id = %s and role = 'admin'",
            (acme,),
        ).fetchone()["email"],
    )
    r = team_api.post("/api/users", json=invite_body("not-an-email"), headers=bearer(admin_token))
    assert r.status_code == 400 and "email" in str(r.json()["error"]["details"])
    r = team_api.post(
        "/api/users", json=invite_body("x6@team.test", "owner"), headers=bearer(admin_token)
    )
    assert r.status_code == 400
    assert len(auth_standin.emails) == before


def test_last_admin_cannot_be_removed(db: psycopg.Connection[Any], db_url: str) -> None:
    acme = make_client(db, "Last admin")
    a1, _ = add_member(db, acme)
    a2, _ = add_member(db, acme)
    # Two admins demote each other at the same moment: one wins, the other gets 409.
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def demote(actor: uuid.UUID, target: uuid.UUID) -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            barrier.wait()
            try:
                call_rpc(
                    conn, caller_for(actor), "update_user", {"id": str(target), "role": "manager"}
                )
                results[str(actor)] = "ok"
            except RpcError as exc:
                results[str(actor)] = exc.error.status

    threads = [threading.Thread(target=demote, args=p) for p in ((a1, a2), (a2, a1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(map(str, results.values())) == ["403", "ok"] or sorted(
        map(str, results.values())
    ) == ["409", "ok"], results
    admins = db.execute(
        "select count(*) as n from public.client_members where client_id = %s"
        " and role = 'admin' and status = 'active'",
        (acme,),
    ).fetchone()["n"]
    assert admins == 1

    # Even the service role cannot suspend the last admin.
    last = db.execute(
        "select user_id from public.client_members where client_id = %s and role = 'admin'", (acme,)
    ).fetchone()["user_id"]
    with pytest.raises(psycopg.Error) as exc:
        db.execute(
            "update public.client_members set status = 'suspended' where user_id = %s", (last,)
        )
    assert "at least one active admin" in str(exc.value)


def test_resend_after_the_link_was_followed_sends_a_password_link(
    db: psycopg.Connection[Any],
    team_api: TestClient,
    team_settings: Settings,
    auth_standin: AuthStandin,
) -> None:
    acme = make_client(db, "Half accepted")
    _, admin_email = add_member(db, acme)
    _, admin_token = sign_in(team_settings, admin_email)
    email = f"half-{uuid.uuid4().hex[:6]}@team.test"
    r = team_api.post("/api/users", json=invite_body(email), headers=bearer(admin_token))
    assert r.status_code == 201, r.text
    invited_id = r.json()["user"]["id"]
    [mail] = [m for m in auth_standin.emails if m.to == email]
    # They follow the link (the address is confirmed) but never set a password.
    auth_admin.user_client(team_settings).auth.verify_otp(
        {"type": "invite", "token_hash": mail.token_hash}
    )
    assert member_row(db, invited_id)["status"] == "invited"

    r = team_api.post("/api/users", json=invite_body(email), headers=bearer(admin_token))
    assert r.status_code == 200 and r.json()["invitation"] == "resent", r.text
    [recovery] = [m for m in auth_standin.emails if m.to == email and m.kind == "recovery"]
    client = auth_admin.user_client(team_settings)
    client.auth.verify_otp({"type": "recovery", "email": email, "token": recovery.token})
    client.auth.update_user({"password": "finally a password"})
    assert member_row(db, invited_id)["status"] == "active"
    sign_in(team_settings, email, "finally a password")
