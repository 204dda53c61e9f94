"""Liveness and readiness."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import PoolDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["reachable", "unreachable"]
    latest_migration: str | None
    error: str | None = None


@router.get(
    "/health",
    response_model=Health,
    response_model_exclude_none=True,
    responses={503: {"model": Health, "description": "The database is unreachable (degraded)."}},
)
async def health(pool: PoolDep) -> JSONResponse:
    """Database reachability and the latest applied migration."""
    try:
        async with pool.connection(timeout=3) as conn:
            cur = await conn.execute(
                "select max(version) as v from supabase_migrations.schema_migrations"
            )
            row = await cur.fetchone()
        return JSONResponse(
            {"status": "ok", "database": "reachable", "latest_migration": row["v"] if row else None}
        )
    except Exception as exc:  # report, never raise: this is what monitors poll
        return JSONResponse(
            {
                "status": "degraded",
                "database": "unreachable",
                "latest_migration": None,
                "error": exc.__class__.__name__,
            },
            status_code=503,
        )
