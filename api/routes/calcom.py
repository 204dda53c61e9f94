"""Cal.com proxies: open slots for a day, and booking a call for a lead.

Both run as the caller: a lead the caller cannot see is a 404, a read_only member cannot
book (403). Cal.com failures surface as the seed's error body: 503 when Cal.com is down or
slow (try again), 409 when the time was just taken, 502 when Cal.com refused the request.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, field_validator

from api.deps import CallerDep, PoolDep
from api.errors import ApiError
from dbr.bookings import BookingError, book_for_lead, slots_for_client
from dbr.db import as_caller
from dbr.providers.calcom import CalcomClient, CalcomError, calcom_client, zone

router = APIRouter(prefix="/api/calcom", tags=["calcom"])


def calcom_dep(request: Request) -> CalcomClient:
    """The app's Cal.com client (the stand-in when no CALCOM_API_KEY is set)."""
    state = request.app.state
    if getattr(state, "calcom", None) is None:
        state.calcom = calcom_client(state.settings)
    return state.calcom


CalcomDep = Annotated[CalcomClient, Depends(calcom_dep)]


class AvailabilityRequest(BaseModel):
    date: dt.date = Field(description="The day to look at, YYYY-MM-DD (in `timezone`).")
    timezone: str = Field("Europe/London", description="IANA time zone of the day and answer.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value


class BookingRequest(BaseModel):
    lead_id: uuid.UUID
    start_time: dt.datetime = Field(description="ISO 8601 with offset or Z; one of the open slots.")
    notes: str | None = Field(None, max_length=2000)

    @field_validator("start_time")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("start_time needs a timezone offset or Z")
        return value


def calcom_failure(exc: CalcomError) -> ApiError:
    """The seed's error body for a Cal.com failure (never a fabricated success)."""
    details = {"provider": "calcom", "status": exc.status, "code": exc.code}
    if exc.code == "not_configured":
        return ApiError(503, exc.message, code="CALCOM_NOT_CONFIGURED", details=details)
    if exc.slot_unavailable:
        return ApiError(
            409,
            "That time is no longer available; pick another slot.",
            code="SLOT_UNAVAILABLE",
            details={**details, "reason": exc.message},
        )
    if exc.retryable:
        return ApiError(
            503,
            "Cal.com is not available right now; try again in a moment.",
            code="CALCOM_UNAVAILABLE",
            details=details,
            headers={"Retry-After": "30"},
        )
    return ApiError(
        502,
        "Cal.com refused the request.",
        code="CALCOM_ERROR",
        details={**details, "reason": exc.message},
    )


@router.post("/check-availability")
async def check_availability(
    body: AvailabilityRequest, caller: CallerDep, pool: PoolDep, calcom: CalcomDep
) -> dict[str, Any]:
    """Open slots on a day: `{"slots": [{"time", "duration"}]}` (times in `timezone`)."""
    async with as_caller(pool, caller) as conn:
        row = await (await conn.execute("select private.current_client_id() as id")).fetchone()
    client_id = row["id"] if row else None
    if client_id is None:
        raise ApiError(403, "You are not an active member of any client.")
    try:
        slots = await slots_for_client(
            pool, calcom, client_id=client_id, day=body.date, time_zone=body.timezone
        )
    except CalcomError as exc:
        raise calcom_failure(exc) from exc
    return {"slots": [{"time": s.start.isoformat(), "duration": s.duration_minutes} for s in slots]}


@router.post("/create-booking")
async def create_booking(
    body: BookingRequest, caller: CallerDep, pool: PoolDep, calcom: CalcomDep
) -> dict[str, Any]:
    """Books a call for a lead and records it (lead CALL_BOOKED, manual mode, staff told)."""
    try:
        booking = await book_for_lead(
            pool,
            calcom,
            lead_id=body.lead_id,
            start_time=body.start_time,
            notes=body.notes,
            acting_user=caller,
        )
    except BookingError as exc:
        raise ApiError(exc.status, exc.message, details=exc.details) from exc
    except CalcomError as exc:
        raise calcom_failure(exc) from exc
    return {"booking": booking.to_seed()}
