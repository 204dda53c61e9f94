"""POST /api/sophie/analyze-message, analyze-conversation and detect-patterns.

Each route asks the database, as the caller, to enqueue the work (access, role and the
client's Sophie budget are checked there: 404 / 403 / 429), then waits for the worker's
result up to a timeout (504; the job keeps running and its insights still arrive on the
`sophie_insights` feed). PostgREST cannot wait on a job, hence FastAPI; the same enqueue
RPCs (`analyze_message`, `analyze_conversation`, `detect_patterns`) are callable directly by
a frontend that prefers to follow the feed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CallerDep, PoolDep
from api.openapi import error_responses
from dbr.auth import Caller
from dbr.db import as_caller, call_as
from dbr.errors import DbrError

router = APIRouter(prefix="/api/sophie", tags=["sophie"])

ANALYSIS_TIMEOUT_SECONDS = 45.0
PATTERNS_TIMEOUT_SECONDS = 120.0
POLL_SECONDS = 0.2


class AnalyzeMessageBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: uuid.UUID


class AnalyzeConversationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: uuid.UUID


class DetectPatternsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset_id: uuid.UUID
    min_occurrences: int = Field(default=10, ge=2, le=100_000)


async def _one(pool: Any, caller: Caller, query: str, *params: Any) -> Any:
    # Short transactions: the job must be committed before a worker can see it.
    async with as_caller(pool, caller) as conn:
        row = await (await conn.execute(query, params)).fetchone()
    return row["r"] if row else None


async def _wait(pool: Any, caller: Caller, job_id: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = await call_as(pool, caller, "private.sophie_job_json", p_job_id=job_id)
        if job is None:
            raise DbrError("The analysis was not found.", status=404, details={"job_id": job_id})
        if job["status"] == "done" and job["result"] is not None:
            return job["result"]
        if job["status"] in ("dead", "canceled"):
            raise DbrError(
                "Sophie could not finish this right now; try again shortly.",
                status=503,
                details={"job_id": job_id, "reason": job.get("last_error")},
            )
        if time.monotonic() >= deadline:
            raise DbrError(
                "Sophie is taking longer than expected; her findings will appear in the "
                "insights feed when ready.",
                status=504,
                details={"job_id": job_id, "timeout_seconds": timeout},
            )
        await asyncio.sleep(POLL_SECONDS)


async def _analysis_response(pool: Any, caller: Caller, result: dict[str, Any]) -> dict[str, Any]:
    if result.get("status") != "stored":
        raise DbrError(
            "There was nothing to analyse.",
            status=404,
            details={"reason": result.get("reason")},
        )
    # The stored insights as the caller may see them (RLS), in the GET sophie/insights shape.
    insights = await _one(
        pool,
        caller,
        "select coalesce(jsonb_agg(private.insight_json(i) order by i.severity, i.created_at),"
        " '[]'::jsonb) as r from public.sophie_insights i where i.analysis_id = %s",
        uuid.UUID(result["analysis_id"]),
    )
    review = result.get("review") or {}
    return {
        "analysis": {
            "id": result["analysis_id"],
            "scope": result.get("scope"),
            "quality_score": result.get("quality_score"),
            "summary": review.get("summary"),
            "findings": result.get("findings"),
            "insights_created": result.get("stored"),
            "duplicates": result.get("duplicates"),
            "suppressed": result.get("suppressed"),
            "usage": result.get("usage"),
            "cost_usd": result.get("cost_usd"),
        },
        "insights": insights,
    }


@router.post("/analyze-message", responses=error_responses(403, 404, 429, 503, 504))
async def analyze_message(
    body: AnalyzeMessageBody, caller: CallerDep, pool: PoolDep
) -> dict[str, Any]:
    """Sophie reviews one message now and answers with her findings."""
    job = await call_as(pool, caller, "private.analyze_message", p_message_id=body.message_id)
    result = await _wait(pool, caller, job["job_id"], ANALYSIS_TIMEOUT_SECONDS)
    return await _analysis_response(pool, caller, result)


@router.post("/analyze-conversation", responses=error_responses(403, 404, 429, 503, 504))
async def analyze_conversation(
    body: AnalyzeConversationBody, caller: CallerDep, pool: PoolDep
) -> dict[str, Any]:
    """Sophie reviews a whole conversation now and answers with her findings."""
    job = await call_as(
        pool, caller, "private.analyze_conversation", p_conversation_id=body.conversation_id
    )
    result = await _wait(pool, caller, job["job_id"], ANALYSIS_TIMEOUT_SECONDS)
    return await _analysis_response(pool, caller, result)


@router.post("/detect-patterns", responses=error_responses(400, 403, 404, 429, 503, 504))
async def detect_patterns(
    body: DetectPatternsBody, caller: CallerDep, pool: PoolDep
) -> dict[str, Any]:
    """Pattern recognition over a dataset's conversations: {patterns: [...]}."""
    job = await call_as(
        pool,
        caller,
        "private.request_pattern_detection",
        p_dataset_id=body.dataset_id,
        p_min_occurrences=body.min_occurrences,
    )
    result = await _wait(pool, caller, job["job_id"], PATTERNS_TIMEOUT_SECONDS)
    return {
        "patterns": result.get("patterns") or [],
        "insights_created": result.get("insights_created", 0),
    }
