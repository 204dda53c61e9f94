"""POST /api/messages/ai-generate: an AI draft for staff to preview (contract shape).

The route asks the database (as the caller, so visibility and role are checked there) for the
cached draft of the conversation's current state; if there is none it gets an `ai.draft` job
id (shared by concurrent callers) and waits for a worker's result, up to a timeout (504).
The draft is stored as a message with status `draft`, visible in the conversation; approve it
with the `ai_send` RPC (messages/ai-send).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, StrictBool

from api.deps import CallerDep, PoolDep
from api.openapi import error_responses
from dbr.db import call_as
from dbr.errors import DbrError

router = APIRouter(prefix="/api/messages", tags=["messages"])

DRAFT_TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 0.15


class GenerateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lead_id: uuid.UUID
    conversation_id: uuid.UUID
    force_regenerate: StrictBool = False


def _shape(draft: dict[str, Any]) -> dict[str, Any]:
    return {
        "generated_message": {
            "content": draft.get("content") or "",
            "confidence": float(draft.get("confidence") or 0.0),
            "reasoning": draft.get("reasoning") or "",
            "lessons_applied": list(draft.get("lessons_applied") or []),
        },
        "preview": True,
        # Not in the API contract's body, but needed to approve this draft with messages/ai-send.
        "draft_message_id": draft.get("message_id"),
    }


@router.post("/ai-generate", responses=error_responses(403, 404, 503, 504))
async def ai_generate(body: GenerateBody, caller: CallerDep, pool: PoolDep) -> dict[str, Any]:
    """Generate (or return the cached) AI reply draft for a conversation, without sending it."""
    # Each call is its own short transaction (call_as): the job must be committed before a
    # worker can see it, and no transaction stays open while we wait.
    requested = await call_as(
        pool,
        caller,
        "private.request_ai_draft",
        p_lead_id=body.lead_id,
        p_conversation_id=body.conversation_id,
        p_force=body.force_regenerate,
    )
    if requested["cached"]:
        return _shape(requested["generated_message"])
    job_id = requested["job_id"]
    deadline = time.monotonic() + DRAFT_TIMEOUT_SECONDS
    while True:
        job = await call_as(pool, caller, "private.ai_draft_job", p_job_id=job_id)
        if job is None:
            raise DbrError(
                "The draft request was not found.", status=404, details={"job_id": job_id}
            )
        if job["status"] == "done" and job["result"]:
            return _shape(job["result"])
        if job["status"] in ("dead", "canceled"):
            raise DbrError(
                "The AI could not write a draft right now; try again shortly.",
                status=503,
                details={"job_id": job_id, "reason": job.get("last_error")},
            )
        if time.monotonic() >= deadline:
            raise DbrError(
                "The AI draft is taking longer than expected; try again in a moment.",
                status=504,
                details={"job_id": job_id, "timeout_seconds": DRAFT_TIMEOUT_SECONDS},
            )
        await asyncio.sleep(POLL_SECONDS)
