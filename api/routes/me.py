"""Who the caller is: their user id, client and membership (role, permissions)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CallerDep, UserDb
from api.openapi import error_responses
from dbr.errors import DbrError

router = APIRouter(prefix="/api", tags=["users"])


@router.get("/me", responses=error_responses(403))
async def me(caller: CallerDep, db: UserDb) -> dict[str, Any]:
    cur = await db.execute(
        """select m.client_id, c.name as client_name, m.role, m.status, m.first_name, m.last_name,
                  m.email, m.can_view_all_leads, m.can_edit_lessons, m.can_push_to_live,
                  m.can_manage_users, m.allowed_dataset_ids
           from public.client_members m join public.clients c on c.id = m.client_id
           where m.user_id = auth.uid()"""
    )
    row = await cur.fetchone()
    if row is None:
        raise DbrError("You are not an active member of any client.", status=403)
    return {"user": {"id": str(caller.user_id), **row}}
