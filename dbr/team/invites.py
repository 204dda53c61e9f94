"""Inviting a member (POST users): the database decides who may invite whom, Supabase Auth sends
the invitation, and the membership is written as the caller so RLS checks it a second time.

1. `private.invite_check` (as the caller): the right to manage users, a valid body, nothing
   above the caller's own rights, and whether the person is new, already invited (resend),
   already a member (409) or a member of another client (409). No e-mail goes out on a refusal.
2. `auth.admin.invite_user_by_email` through the `supabase` client with the service key, with the
   client, role and names in the invitation's metadata. Supabase Auth creates the user (or sends a
   pending invitation again).
3. For a new person, the membership row (`invited`) is inserted as the caller. It becomes
   `active` when the user accepts and sets a password (a trigger on `auth.users`).

Someone who followed the link but never set a password has a confirmed address, which Supabase
Auth will not invite again: the resend is then a password-recovery e-mail (a link to set one).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from supabase_auth.errors import AuthApiError, AuthError

from dbr.auth import Caller
from dbr.db import as_caller
from dbr.errors import DbrError
from dbr.settings import Settings
from dbr.team import auth_admin, queries

PERMISSIONS = ("can_view_all_leads", "can_edit_lessons", "can_push_to_live", "can_manage_users")


class InviteError(DbrError):
    """An invitation Supabase Auth refused or could not take."""

    status = 502


@dataclass(frozen=True)
class Invite:
    email: str
    first_name: str
    last_name: str
    role: str
    permissions: dict[str, bool]
    allowed_dataset_ids: list[uuid.UUID] | None = None


@dataclass(frozen=True)
class InviteResult:
    user: dict[str, Any]
    resent: bool


async def invite_member(
    pool: AsyncConnectionPool, caller: Caller, settings: Settings, invite: Invite
) -> InviteResult:
    email = invite.email.strip().lower()
    allowed = [str(i) for i in invite.allowed_dataset_ids] if invite.allowed_dataset_ids else None
    async with as_caller(pool, caller) as conn:
        row = await (
            await conn.execute(
                queries.INVITE_CHECK, (email, invite.role, Jsonb(invite.permissions), allowed)
            )
        ).fetchone()
    assert row is not None
    kind, client_id = row["kind"], row["client_id"]

    options: dict[str, Any] = {
        "data": {
            "client_id": str(client_id),
            "role": invite.role,
            "first_name": invite.first_name,
            "last_name": invite.last_name,
        }
    }
    if settings.invite_redirect_url:
        options["redirect_to"] = settings.invite_redirect_url
    client = await auth_admin.admin_client(settings)
    try:
        async with client.auth:  # closes its HTTP connections afterwards
            try:
                answer = await client.auth.admin.invite_user_by_email(email, options)  # type: ignore[arg-type]
            except AuthApiError as exc:
                if not (exc.status == 422 and kind == "resend"):
                    raise
                # They followed the invitation link but never set a password: Supabase Auth
                # will not invite a confirmed address again, so they get a link to set one.
                await client.auth.reset_password_for_email(email, _redirect(settings))
                return InviteResult(user=await _member(pool, caller, email), resent=True)
    except AuthApiError as exc:
        if exc.status == 422:
            raise DbrError(
                "This person already has an account; they cannot be invited again.",
                status=409,
                details={"email": email},
            ) from exc
        raise InviteError(f"Supabase Auth refused the invitation: {exc.message}") from exc
    except AuthError as exc:
        raise InviteError(f"Supabase Auth could not be reached: {exc.message}") from exc
    user_id = answer.user.id

    async with as_caller(pool, caller) as conn:
        if kind == "new":
            await conn.execute(
                queries.INSERT_INVITED_MEMBER,
                (
                    client_id,
                    user_id,
                    email,
                    invite.first_name,
                    invite.last_name,
                    invite.role,
                    *(bool(invite.permissions.get(p, False)) for p in PERMISSIONS),
                    allowed,
                ),
            )
        member = await (await conn.execute(queries.MEMBER_BY_USER, (user_id,))).fetchone()
    if member is None:
        raise DbrError("The invitation was sent but the membership is not visible.", status=500)
    return InviteResult(user=member["j"], resent=kind == "resend")


def _redirect(settings: Settings) -> dict[str, str]:
    return {"redirect_to": settings.invite_redirect_url} if settings.invite_redirect_url else {}


async def _member(pool: AsyncConnectionPool, caller: Caller, email: str) -> dict[str, Any]:
    async with as_caller(pool, caller) as conn:
        row = await (await conn.execute(queries.MEMBER_BY_EMAIL, (email,))).fetchone()
    if row is None:
        raise DbrError("The invitation was sent but the membership is not visible.", status=500)
    return row["j"]
