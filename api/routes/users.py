"""POST /api/users: invite a member through Supabase Auth's admin API (contract shape).

The other user routes are RPCs served by PostgREST: `list_users` (GET users), `update_user`
(PUT users/[id]) and `suspend_user` (DELETE users/[id]).
"""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from api.deps import CallerDep, PoolDep, SettingsDep
from api.openapi import error_responses
from dbr.team.invites import Invite, invite_member

router = APIRouter(prefix="/api", tags=["users"])


# An address with one @ and a dot after it; names without control characters (NUL included,
# which PostgreSQL text cannot hold).
_EMAIL = r"^[^\s@\x00-\x1f\x7f]+@[^\s@\x00-\x1f\x7f]+\.[^\s@\x00-\x1f\x7f]+$"
_NAME = r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$"


class Permissions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    can_view_all_leads: StrictBool = False
    can_edit_lessons: StrictBool = False
    can_push_to_live: StrictBool = False
    can_manage_users: StrictBool = False


class InviteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320, pattern=_EMAIL)
    first_name: str = Field(min_length=1, max_length=100, pattern=_NAME)
    last_name: str = Field(min_length=1, max_length=100, pattern=_NAME)
    role: Literal["admin", "manager", "sales_rep", "read_only"]
    permissions: Permissions
    allowed_dataset_ids: list[uuid.UUID] | None = Field(default=None, max_length=1000)


class InvitedUser(BaseModel):
    id: uuid.UUID
    first_name: str | None
    last_name: str | None
    email: str
    role: str
    status: str
    last_login_at: str | None
    created_at: str
    permissions: dict[str, bool]
    allowed_dataset_ids: list[uuid.UUID] | None


class InviteAnswer(BaseModel):
    user: InvitedUser
    invitation: Literal["sent", "resent"]


@router.post(
    "/users",
    status_code=201,
    response_model=InviteAnswer,
    responses={200: {"description": "A pending invitation was sent again"}}
    | error_responses(400, 401, 403, 409, 429, 502),
)
async def invite_user(
    body: InviteBody, caller: CallerDep, pool: PoolDep, settings: SettingsDep, response: Response
) -> InviteAnswer:
    """Invite a member (admins and members with can_manage_users): Supabase Auth e-mails the
    invitation; the member is `invited` until they accept and set a password. Inviting someone
    still invited sends the invitation again (200); a member of this or another client is 409."""
    result = await invite_member(
        pool,
        caller,
        settings,
        Invite(
            email=body.email,
            first_name=body.first_name,
            last_name=body.last_name,
            role=body.role,
            permissions=body.permissions.model_dump(),
            allowed_dataset_ids=body.allowed_dataset_ids,
        ),
    )
    if result.resent:
        response.status_code = 200
    return InviteAnswer.model_validate(
        {"user": result.user, "invitation": "resent" if result.resent else "sent"}
    )
