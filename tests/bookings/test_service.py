"""dbr.bookings.service as the AI worker uses it (service context, no acting user)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from dbr.auth import Caller
from dbr.bookings.errors import BookingForbidden, InvalidBookingTime, LeadNotFound, LeadOptedOut
from dbr.bookings.service import (
    book_for_lead,
    booking_fallback_message,
    report_booking_failure,
    upcoming_slots,
)
from dbr.db import async_pool
from dbr.providers.calcom import CalcomClient, CalcomError
from tests.support import caller_for, make_user
from tests.support.bookings import (
    at,
    lead_row,
    make_lead,
    make_tenant,
    next_weekday,
    notifications_for,
)

T = TypeVar("T")


def with_pool(db_url: str, fn: Callable[[Any], Awaitable[T]]) -> T:
    async def main() -> T:
        pool = async_pool(db_url, min_size=1, max_size=2)
        await pool.open()
        try:
            return await fn(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


def test_ai_books_a_call_and_a_retry_does_not_book_twice(
    db, db_url, calcom: CalcomClient, calcom_standin
):
    t = make_tenant(db)
    lead = make_lead(db, t.client_id, t.dataset_id, status="HOT")
    start = at(next_weekday(), 9, 30)

    async def twice(pool):
        first = await book_for_lead(pool, calcom, lead_id=lead, start_time=start)
        again = await book_for_lead(pool, calcom, lead_id=str(lead), start_time=start)
        return first, again

    first, again = with_pool(db_url, twice)
    assert first.created and not again.created
    assert first.id == again.id and first.record_id == again.record_id
    assert len(calcom_standin.bookings) == 1
    assert sum(1 for r in calcom_standin.requests if r.method == "POST") == 1
    row = lead_row(db, lead)
    assert row["cal_booking_id"] == first.id and row["manual_mode"]
    source = db.execute(
        "select source, booked_by from public.bookings where cal_booking_uid = %s", (first.id,)
    ).fetchone()
    assert source == {"source": "ai", "booked_by": None}


def test_calcom_error_is_raised_and_nothing_recorded(db, db_url, calcom, calcom_standin):
    t = make_tenant(db)
    lead = make_lead(db, t.client_id, t.dataset_id, status="WARM")
    calcom_standin.fail_next(429, code="ThrottlerException", message="Too many requests")

    with pytest.raises(CalcomError) as err:
        with_pool(
            db_url,
            lambda pool: book_for_lead(
                pool, calcom, lead_id=lead, start_time=at(next_weekday(), 10)
            ),
        )
    assert err.value.status == 429 and err.value.retryable
    assert lead_row(db, lead)["contact_status"] == "WARM"
    n = db.execute("select count(*) as n from public.bookings where lead_id = %s", (lead,))
    assert n.fetchone()["n"] == 0


def test_errors_for_unknown_lead_wrong_role_and_past_time(db, db_url, calcom, calcom_standin):
    t = make_tenant(db)
    lead = make_lead(db, t.client_id, t.dataset_id)
    viewer = make_user(db, t.client_id, "read_only")
    start = at(next_weekday(), 10)
    with pytest.raises(LeadNotFound):
        with_pool(
            db_url, lambda pool: book_for_lead(pool, calcom, lead_id=uuid.uuid4(), start_time=start)
        )
    as_viewer: Caller = caller_for(viewer)
    with pytest.raises(BookingForbidden):
        with_pool(
            db_url,
            lambda pool: book_for_lead(
                pool, calcom, lead_id=lead, start_time=start, acting_user=as_viewer
            ),
        )
    with pytest.raises(InvalidBookingTime):
        with_pool(
            db_url,
            lambda pool: book_for_lead(
                pool, calcom, lead_id=lead, start_time=start.replace(year=start.year - 1)
            ),
        )
    assert calcom_standin.bookings == {}


def test_upcoming_slots_for_the_agent_to_offer(db, db_url, calcom):
    t = make_tenant(db)
    slots = with_pool(
        db_url,
        lambda pool: upcoming_slots(pool, calcom, client_id=t.client_id, days=7, limit=4),
    )
    assert len(slots) == 4
    assert slots == sorted(slots, key=lambda s: s.start)
    assert all(s.start.weekday() < 5 and 9 <= s.start.hour < 17 for s in slots)


def test_a_failed_booking_is_reported_to_staff_with_a_polite_fallback(
    db, db_url, calcom, calcom_standin
):
    t = make_tenant(db)
    lead = make_lead(db, t.client_id, t.dataset_id)
    start = at(next_weekday(), 10)
    calcom_standin.fail_next(500, method="POST")

    async def attempt(pool):
        try:
            await book_for_lead(pool, calcom, lead_id=lead, start_time=start)
        except CalcomError as exc:
            return exc, await report_booking_failure(
                pool, lead_id=lead, error=exc, start_time=start
            )
        raise AssertionError("booking should have failed")

    error, notified = with_pool(db_url, attempt)
    assert notified == 1
    (note,) = notifications_for(db, t.client_id)
    assert note["title"] == "Booking failed" and "Please book it by hand" in note["message"]
    assert note["data"]["calcom_status"] == 500
    text = booking_fallback_message(error, first_name="Ann")
    assert text.startswith("Sorry Ann,") and "Someone from the team will text you" in text
    assert "booked" not in text
    assert not lead_row(db, lead)["call_booked"]


def test_a_lead_opting_out_while_calcom_books_is_not_booked_and_calcom_is_told(
    db, db_url, calcom: CalcomClient, calcom_standin
):
    t = make_tenant(db)
    lead = make_lead(db, t.client_id, t.dataset_id, status="HOT")
    phone = db.execute("select phone_number from public.leads where id = %s", (lead,)).fetchone()

    class StopWhileBooking(CalcomClient):
        """Cal.com answers the booking, and meanwhile the lead texts STOP."""

        async def create_booking(self, **kw: Any) -> Any:
            booking = await super().create_booking(**kw)
            db.execute(
                "select private.opt_out_number(%s, %s, 'Replied \"STOP\"', 'inbound_keyword')",
                (t.client_id, phone["phone_number"]),
            )
            return booking

    racing = StopWhileBooking(calcom.base_url, default_event_type_id=calcom.default_event_type_id)
    with pytest.raises(LeadOptedOut) as caught:
        with_pool(
            db_url,
            lambda pool: book_for_lead(
                pool, racing, lead_id=lead, start_time=at(next_weekday(), 10)
            ),
        )
    assert caught.value.status == 409
    assert [b["status"] for b in calcom_standin.bookings.values()] == ["cancelled"]
    row = lead_row(db, lead)
    assert not row["call_booked"] and row["contact_status"] == "OPTED_OUT"
    assert (
        db.execute(
            "select count(*) as n from public.bookings where lead_id = %s", (lead,)
        ).fetchone()["n"]
        == 0
    )
