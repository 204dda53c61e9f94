"""Booking a call for a lead through Cal.com, shared by the API (staff) and the AI worker.

    booking = await book_for_lead(pool, calcom, lead_id=lead_id, start_time=slot.start)
    slots = await slots_for_client(pool, calcom, client_id=client_id, day=date(2026, 12, 1))

`book_for_lead` checks the lead (as `acting_user` when given, so RLS decides what a person
may book; in service context for the AI), books the time at Cal.com with metadata
{"lead_id": ...}, then records it through `private.record_booking` (lead call_booked,
call_booked_time, cal_booking_id, status CALL_BOOKED, manual mode on, staff notified).
Recording is idempotent on the Cal.com booking uid: the BOOKING_CREATED webhook for the same
booking changes nothing. When Cal.com fails, `CalcomError` propagates and nothing is recorded.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from dbr.auth import Caller
from dbr.bookings import queries
from dbr.bookings.errors import (
    BookingForbidden,
    InvalidBookingTime,
    LeadNotFound,
    LeadOptedOut,
)
from dbr.db import as_caller, as_service, call_as
from dbr.postgrest import contract_error, translate
from dbr.providers.calcom import (
    Attendee,
    CalcomBooking,
    CalcomClient,
    CalcomError,
    Slot,
    zone,
)

log = logging.getLogger("dbr.bookings.service")

DEFAULT_TIMEZONE = "Europe/London"
# Cal.com requires an attendee email; SMS leads often have none. A reserved (.invalid) domain
# makes sure Cal.com's emails to the attendee go nowhere.
PLACEHOLDER_EMAIL_DOMAIN = "sms-lead.invalid"
# How far ahead a day may be looked at or a call booked (docs/api-map.md, "Cal.com rules").
MAX_DAYS_AHEAD = 365


async def _opted_out(pool: AsyncConnectionPool, lead_id: uuid.UUID) -> bool:
    return bool(await call_as(pool, None, "private.lead_is_opted_out", p_lead_id=lead_id))


def _refused_as_opted_out(exc: psycopg.Error) -> bool:
    """record_booking's 409 for an opted-out lead, read by PostgREST's rules (dbr.postgrest)."""
    err = translate(exc, authed=False)
    details = contract_error(err)["error"]["details"]
    return err.status == 409 and isinstance(details, dict) and details.get("reason") == "opted_out"


@dataclass(frozen=True)
class Booking:
    """A recorded booking. `id` is Cal.com's booking uid (the API contract's booking id)."""

    id: str
    record_id: uuid.UUID
    lead_id: uuid.UUID
    start_time: datetime
    end_time: datetime
    booking_url: str | None
    created: bool  # False when this booking was already recorded (a replay)

    def to_contract(self) -> dict[str, Any]:
        """The API contract's `booking` object of calcom/create-booking."""
        return {
            "id": self.id,
            "start_time": self.start_time.astimezone(UTC).isoformat(),
            "end_time": self.end_time.astimezone(UTC).isoformat(),
            "booking_url": self.booking_url,
            "lead_updated": True,
        }


@dataclass(frozen=True)
class BookingLead:
    """What booking a call needs to know about the lead and its client's Cal.com settings."""

    id: uuid.UUID
    client_id: uuid.UUID
    name: str
    email: str | None
    phone_number: str
    time_zone: str
    cal_booking_id: str | None
    call_booked: bool
    call_booked_time: datetime | None
    calcom: dict[str, Any]

    @classmethod
    def from_facts(cls, facts: dict[str, Any], calcom: dict[str, Any] | None) -> BookingLead:
        """From ai_reply_begin's `booking` facts and `calcom` settings (read with the context,
        so the AI's booking does not read the lead and the client again)."""
        return cls._from({**facts, "id": facts["lead_id"]}, calcom or {})

    @classmethod
    def _from(cls, row: dict[str, Any], calcom: dict[str, Any]) -> BookingLead:
        name = " ".join(p for p in (row["first_name"], row["last_name"]) if p)
        call_time = row["call_booked_time"]
        return cls(
            id=uuid.UUID(str(row["id"])),
            client_id=uuid.UUID(str(row["client_id"])),
            name=name or row["phone_number"],
            email=row["email"],
            phone_number=row["phone_number"],
            time_zone=row["time_zone"] or DEFAULT_TIMEZONE,
            cal_booking_id=row["cal_booking_id"],
            call_booked=bool(row["call_booked"]),
            call_booked_time=datetime.fromisoformat(call_time)
            if isinstance(call_time, str)
            else call_time,
            calcom=calcom,
        )


async def _load_lead(
    conn: AsyncConnection[Any], lead_id: uuid.UUID, *, check_write: bool
) -> BookingLead:
    row = await (await conn.execute(queries.LEAD, (lead_id,))).fetchone()
    if row is None:
        raise LeadNotFound("Lead not found.", details={"lead_id": str(lead_id)})
    if check_write and not row["can_write"]:
        raise BookingForbidden("Your role cannot book calls for leads.")
    return BookingLead._from(row, row["calcom"] or {})


def event_type_for(calcom_settings: dict[str, Any], client: CalcomClient) -> int:
    """The event type this client books leads into; CalcomError(not_configured) if none."""
    value = calcom_settings.get("event_type_id") or client.default_event_type_id
    if not value:
        raise CalcomError(
            "Cal.com is not set up for this account: set settings.calcom.event_type_id.",
            code="not_configured",
        )
    return int(value)


async def _client_calcom_settings(pool: AsyncConnectionPool, client_id: uuid.UUID) -> dict:
    return await call_as(pool, None, "private.calcom_settings", p_client_id=client_id) or {}


async def slots_for_client(
    pool: AsyncConnectionPool,
    client: CalcomClient,
    *,
    client_id: uuid.UUID,
    day: date,
    time_zone: str = DEFAULT_TIMEZONE,
) -> list[Slot]:
    """Open slots on a local day for the client's event type (caller checked membership)."""
    settings = await _client_calcom_settings(pool, client_id)
    return await client.slots_for_day(
        event_type_id=event_type_for(settings, client), day=day, time_zone=time_zone
    )


async def upcoming_slots(
    pool: AsyncConnectionPool,
    client: CalcomClient,
    *,
    client_id: uuid.UUID,
    time_zone: str = DEFAULT_TIMEZONE,
    days: int = 3,
    limit: int = 6,
    now: datetime | None = None,
    calcom_settings: dict[str, Any] | None = None,
) -> list[Slot]:
    """The next open slots over the coming `days` (for the AI agent to offer), at most `limit`.
    `calcom_settings`: the client's, when the caller already has them (ai_reply_begin)."""
    zone(time_zone)
    settings = (
        calcom_settings
        if calcom_settings is not None
        else await _client_calcom_settings(pool, client_id)
    )
    start = (now or datetime.now(UTC)) + timedelta(minutes=30)
    slots = await client.get_slots(
        event_type_id=event_type_for(settings, client),
        start=start,
        end=start + timedelta(days=days),
        time_zone=time_zone,
    )
    return slots[:limit]


async def book_for_lead(
    pool: AsyncConnectionPool,
    client: CalcomClient,
    *,
    lead_id: uuid.UUID | str,
    start_time: datetime,
    notes: str | None = None,
    acting_user: Caller | None = None,
    lead: BookingLead | None = None,
) -> Booking:
    """Books a call for a lead at `start_time` (aware) and records it on the lead.

    Raises LeadNotFound (404: absent or not visible to `acting_user`), BookingForbidden (403:
    read_only), InvalidBookingTime (400), LeadOptedOut (409: STOP or suppressed; Cal.com is not
    called, and a booking that raced with the opt-out is cancelled there), or CalcomError
    (Cal.com refused or failed: nothing was recorded; `.retryable` says whether trying later
    may help). `lead`: the lead's facts when the service caller already has them (the AI
    worker, from ai_reply_begin); a person's request always reads the lead as that person.
    """
    lead_id = uuid.UUID(str(lead_id))
    if start_time.tzinfo is None:
        raise InvalidBookingTime("start_time needs a timezone (ISO 8601 with offset or Z).")
    if start_time <= datetime.now(UTC):
        raise InvalidBookingTime("start_time is in the past.")
    if start_time > datetime.now(UTC) + timedelta(days=MAX_DAYS_AHEAD):
        raise InvalidBookingTime(f"start_time is more than {MAX_DAYS_AHEAD} days ahead.")

    if acting_user is not None:
        async with as_caller(pool, acting_user) as conn:
            lead = await _load_lead(conn, lead_id, check_write=True)
    elif lead is None or lead.id != lead_id:
        async with as_service(pool) as conn:
            lead = await _load_lead(conn, lead_id, check_write=False)

    if await _opted_out(pool, lead.id):
        raise LeadOptedOut(lead.id)  # refused before Cal.com is called at all

    existing = await _same_booking(pool, lead, start_time)
    if existing is not None:
        return existing  # a retried request for the call already booked: do not book twice

    event_type_id = event_type_for(lead.calcom, client)
    attendee = Attendee(
        name=lead.name,
        email=lead.email or f"lead-{lead.id.hex}@{PLACEHOLDER_EMAIL_DOMAIN}",
        time_zone=lead.time_zone,
        phone_number=lead.phone_number,
    )
    # The network call happens outside any database transaction.
    cal = await client.create_booking(
        event_type_id=event_type_id,
        start=start_time,
        attendee=attendee,
        metadata={"lead_id": str(lead.id)},
        notes=notes,
    )
    page = lead.calcom.get("booking_page_url")
    booking_url = f"{page.rstrip('/')}/{cal.uid}" if page else client.booking_url(cal.uid)
    details = {
        "cal_booking_id": cal.id,
        "event_type_id": cal.event_type_id or event_type_id,
        "title": cal.title,
        "attendees": cal.attendees,
        "location": cal.location,
    }
    try:
        result = await _record(pool, lead, cal, acting_user, booking_url, notes, details)
    except psycopg.Error as exc:
        if not _refused_as_opted_out(exc):
            raise
        # The lead opted out while Cal.com was booking: take the booking back.
        try:
            await client.cancel_booking(cal.uid, reason="The lead has opted out of contact.")
        except CalcomError:
            log.exception(
                "could not cancel Cal.com booking %s of opted-out lead %s", cal.uid, lead.id
            )
        raise LeadOptedOut(lead.id) from exc
    log.info("booked %s for lead %s (created=%s)", cal.uid, lead.id, result["created"])
    return Booking(
        id=cal.uid,
        record_id=uuid.UUID(result["booking_id"]),
        lead_id=lead.id,
        start_time=cal.start,
        end_time=cal.end,
        booking_url=result.get("booking_url") or booking_url,
        created=bool(result["created"]),
    )


async def _record(
    pool: AsyncConnectionPool,
    lead: BookingLead,
    cal: CalcomBooking,
    acting_user: Caller | None,
    booking_url: str | None,
    notes: str | None,
    details: dict[str, Any],
) -> dict[str, Any]:
    return await call_as(
        pool,
        None,
        "private.record_booking",
        p_lead_id=lead.id,
        p_booking_uid=cal.uid,
        p_start_time=cal.start,
        p_end_time=cal.end,
        p_source="api" if acting_user is not None else "ai",
        p_booked_by=acting_user.user_id if acting_user is not None else None,
        p_booking_url=booking_url,
        p_notes=notes,
        p_details=Jsonb(details, dumps=lambda v: json.dumps(v, default=str)),
    )


def booking_fallback_message(error: Exception, *, first_name: str = "there") -> str:
    """The one SMS for a lead whose accepted time could not be booked (Cal.com refused or
    failed, or the booking was refused): it never claims a booking was made and says a person
    will follow up. The AI agent sends it instead of its confirmation."""
    if isinstance(error, CalcomError) and error.slot_unavailable:
        return (
            f"Sorry {first_name}, that time has just been taken. Someone from the team will "
            "text you shortly to find another time that suits."
        )
    return (
        f"Sorry {first_name}, I couldn't lock that time in just now. Someone from the team "
        "will text you shortly to confirm a time that suits."
    )


async def report_booking_failure(
    pool: AsyncConnectionPool,
    *,
    lead_id: uuid.UUID | str,
    error: CalcomError,
    start_time: datetime | None = None,
) -> int:
    """Tells the lead's staff that a booking attempt failed (immediate in-app notification);
    returns the notifications created. For the AI agent after a CalcomError."""
    async with as_service(pool) as conn:
        row = await (
            await conn.execute(
                queries.NOTIFY_BOOKING_FAILED,
                (
                    start_time,
                    error.message[:200],
                    start_time,
                    error.status,
                    error.code,
                    uuid.UUID(str(lead_id)),
                ),
            )
        ).fetchone()
    return int(row["n"]) if row else 0


async def _same_booking(
    pool: AsyncConnectionPool, lead: BookingLead, start_time: datetime
) -> Booking | None:
    if not (lead.call_booked and lead.cal_booking_id and lead.call_booked_time == start_time):
        return None
    async with as_service(pool) as conn:
        row = await (
            await conn.execute(
                queries.ACCEPTED_BOOKING,
                (lead.cal_booking_id,),
            )
        ).fetchone()
    if row is None:
        return None
    return Booking(
        id=row["cal_booking_uid"],
        record_id=row["id"],
        lead_id=lead.id,
        start_time=row["start_time"],
        end_time=row["end_time"],
        booking_url=row["booking_url"],
        created=False,
    )
