"""Cal.com proxies: open slots for a day, and booking a call for a lead.

Both run as the caller: a lead the caller cannot see is a 404, a read_only member cannot
book (403), an opted-out lead cannot be booked (409 CONFLICT, Cal.com not called). Inputs
are strict and range-checked (400 VALIDATION_ERROR naming the field): `date` a YYYY-MM-DD
string from yesterday to MAX_DAYS_AHEAD days ahead in `timezone`, `start_time` an ISO 8601
string with offset, in the future and at most MAX_DAYS_AHEAD days ahead. Cal.com failures
surface as the API contract's error body: 503 when Cal.com is down or slow (try again), 409 when the
time was just taken, 502 when Cal.com refused the request.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    StrictStr,
    ValidationInfo,
    field_validator,
)

from api.deps import CallerDep, PoolDep
from api.openapi import ErrorBody
from dbr.bookings.service import MAX_DAYS_AHEAD, book_for_lead, slots_for_client
from dbr.db import as_caller
from dbr.errors import DbrError
from dbr.providers.calcom import CalcomClient, CalcomError, calcom_client, zone
from dbr.team.credentials import client_calcom

router = APIRouter(prefix="/api/calcom", tags=["calcom"])


async def calcom_dep(request: Request, caller: CallerDep, pool: PoolDep) -> CalcomClient:
    """The caller's client's own Cal.com account when it connected one, else the app's client
    (the stand-in when no CALCOM_API_KEY is set)."""
    state = request.app.state
    if getattr(state, "calcom", None) is None:
        state.calcom = calcom_client(state.settings)
    return await client_calcom(pool, state.settings, caller, state.calcom)


CalcomDep = Annotated[CalcomClient, Depends(calcom_dep)]


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}(:?\d{2})?)"
)


def _iso_date_text(value: Any) -> Any:
    """Only a JSON string in the contract's YYYY-MM-DD format is a date (not 0, not a datetime)."""
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ValueError("must be a date string in the format YYYY-MM-DD")
    return value


def _iso_datetime_text(value: Any) -> Any:
    """Only a JSON string in ISO 8601 with a time and an offset (or Z) is a time."""
    if not isinstance(value, str) or not _DATETIME.fullmatch(value):
        raise ValueError("must be an ISO 8601 date-time string with an offset or Z")
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date_text)]
IsoDateTime = Annotated[dt.datetime, BeforeValidator(_iso_datetime_text)]


class AvailabilityRequest(BaseModel):
    # Checked before `date`, whose range is counted in this time zone.
    timezone: StrictStr = Field(
        "Europe/London", description="IANA time zone of the day and of the answer."
    )
    date: IsoDate = Field(
        description=(
            "The day to look at, YYYY-MM-DD, in `timezone`: from yesterday to "
            f"{MAX_DAYS_AHEAD} days ahead (that zone's calendar)."
        )
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("date")
    @classmethod
    def _in_range(cls, value: dt.date, info: ValidationInfo) -> dt.date:
        tz = info.data.get("timezone") or "Europe/London"
        today = dt.datetime.now(zone(tz)).date()
        if value < today - dt.timedelta(days=1):
            raise ValueError(f"must not be before yesterday ({today - dt.timedelta(days=1)})")
        if value > today + dt.timedelta(days=MAX_DAYS_AHEAD):
            raise ValueError(f"must be at most {MAX_DAYS_AHEAD} days ahead")
        return value


class BookingRequest(BaseModel):
    lead_id: uuid.UUID
    start_time: IsoDateTime = Field(
        description=(
            "ISO 8601 with offset or Z; one of the open slots, in the future and at most "
            f"{MAX_DAYS_AHEAD} days ahead."
        )
    )
    notes: StrictStr | None = Field(None, max_length=2000)

    @field_validator("lead_id", mode="before")
    @classmethod
    def _uuid_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("must be a UUID string")
        return value

    @field_validator("start_time")
    @classmethod
    def _in_range(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("start_time needs a timezone offset or Z")
        now = dt.datetime.now(dt.UTC)
        if value <= now:
            raise ValueError("must be in the future")
        if value > now + dt.timedelta(days=MAX_DAYS_AHEAD):
            raise ValueError(f"must be at most {MAX_DAYS_AHEAD} days ahead")
        return value


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    described = {
        400: "The body is not valid (details name each field).",
        401: "No valid access token.",
        403: "Not an active member of a client, or the role may not book (read_only).",
        404: "The lead does not exist or the caller cannot see it.",
        409: "The time was just taken (SLOT_UNAVAILABLE) or the lead opted out (CONFLICT).",
        429: "Rate limited (Retry-After says when to try again).",
        502: "Cal.com refused the request (CALCOM_ERROR).",
        503: "Cal.com is down or slow (CALCOM_UNAVAILABLE, Retry-After) or not set up "
        "(CALCOM_NOT_CONFIGURED).",
    }
    return {s: {"model": ErrorBody, "description": described[s]} for s in statuses}


def calcom_failure(exc: CalcomError) -> DbrError:
    """The API contract's error body for a Cal.com failure (never a fabricated success)."""
    details = {"provider": "calcom", "status": exc.status, "code": exc.code}
    if exc.code == "not_configured":
        return DbrError(exc.message, status=503, code="CALCOM_NOT_CONFIGURED", details=details)
    if exc.slot_unavailable:
        return DbrError(
            "That time is no longer available; pick another slot.",
            status=409,
            code="SLOT_UNAVAILABLE",
            details={**details, "reason": exc.message},
        )
    if exc.retryable:
        return DbrError(
            "Cal.com is not available right now; try again in a moment.",
            status=503,
            code="CALCOM_UNAVAILABLE",
            details=details,
            headers={"Retry-After": "30"},
        )
    return DbrError(
        "Cal.com refused the request.",
        status=502,
        code="CALCOM_ERROR",
        details={**details, "reason": exc.message},
    )


@router.post("/check-availability", responses=_responses(400, 401, 403, 429, 502, 503))
async def check_availability(
    body: AvailabilityRequest, caller: CallerDep, pool: PoolDep, calcom: CalcomDep
) -> dict[str, Any]:
    """Open slots on a day: `{"slots": [{"time", "duration"}]}` (times in `timezone`)."""
    async with as_caller(pool, caller) as conn:
        row = await (await conn.execute("select private.current_client_id() as id")).fetchone()
    client_id = row["id"] if row else None
    if client_id is None:
        raise DbrError("You are not an active member of any client.", status=403)
    try:
        slots = await slots_for_client(
            pool, calcom, client_id=client_id, day=body.date, time_zone=body.timezone
        )
    except CalcomError as exc:
        raise calcom_failure(exc) from exc
    return {"slots": [{"time": s.start.isoformat(), "duration": s.duration_minutes} for s in slots]}


@router.post("/create-booking", responses=_responses(400, 401, 403, 404, 409, 429, 502, 503))
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
    except CalcomError as exc:
        raise calcom_failure(exc) from exc
    return {"booking": booking.to_contract()}
