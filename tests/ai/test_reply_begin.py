"""ai_reply_begin hands the worker what booking a call needs in the same round trip as the
context (the client's Cal.com settings, the lead's booking facts), and the AI books with them
instead of reading the lead and the client again."""

from __future__ import annotations

import asyncio
import uuid

from psycopg.types.json import Jsonb

from dbr.bookings.service import BookingLead, book_for_lead
from dbr.db import async_pool, call_sync
from tests.support.ai import conversation_of, inbound, make_lead, make_world
from tests.support.bookings import at, next_weekday

CALCOM = {"event_type_id": 1001, "booking_page_url": "https://cal.example.test/acme"}


def _latest_inbound(db, conversation_id: uuid.UUID) -> uuid.UUID:
    return db.execute(
        "select id from public.messages where conversation_id = %s and direction = 'inbound'"
        " order by created_at desc, id desc limit 1",
        (conversation_id,),
    ).fetchone()["id"]


def _begin(db, world, lead_id):
    inbound(db, world, lead_id, "Yes I'm interested, when could we talk?")
    conversation_id = conversation_of(db, lead_id)
    return call_sync(
        db,
        "private.ai_reply_begin",
        p_conversation_id=conversation_id,
        p_inbound_message_id=_latest_inbound(db, conversation_id),
    )


def test_reply_begin_returns_the_calcom_settings_and_the_leads_booking_facts(db):
    world = make_world(db, calcom=CALCOM)
    lead_id = make_lead(db, world, first_name="Ana")
    db.execute("update public.leads set email = 'ana@example.test' where id = %s", (lead_id,))

    begin = _begin(db, world, lead_id)

    assert begin["action"] == "generate"
    assert begin["calcom"] == CALCOM
    facts = begin["booking"]
    assert facts["lead_id"] == str(lead_id)
    assert facts["client_id"] == str(world.client_id)
    assert (facts["first_name"], facts["last_name"]) == ("Ana", "Taylor")
    assert facts["email"] == "ana@example.test"
    assert facts["call_booked"] is False and facts["cal_booking_id"] is None
    assert facts["time_zone"] == "Europe/London"


def test_a_client_without_calcom_settings_gets_an_empty_object(db):
    world = make_world(db)
    begin = _begin(db, world, make_lead(db, world))
    assert begin["calcom"] == {}


def test_the_ai_books_with_the_facts_it_was_given_without_reading_the_lead_again(
    db, db_url, calcom, calcom_standin
):
    world = make_world(db, calcom=CALCOM)
    lead_id = make_lead(db, world, first_name="Ana")
    facts = _begin(db, world, lead_id)["booking"]
    # What the worker was told at begin, not what the table says now: the facts are used.
    given = BookingLead.from_facts({**facts, "first_name": "Given"}, CALCOM)
    db.execute(
        "update public.clients set settings = settings || %s where id = %s",
        (Jsonb({"calcom": {"booking_page_url": "https://other.example.test"}}), world.client_id),
    )
    start = at(next_weekday(), 10, 0)

    async def book():
        pool = async_pool(db_url, min_size=1, max_size=2)
        await pool.open()
        try:
            return await book_for_lead(pool, calcom, lead_id=lead_id, start_time=start, lead=given)
        finally:
            await pool.close()

    booking = asyncio.run(book())

    assert calcom_standin.bookings[booking.id]["attendees"][0]["name"] == "Given Taylor"
    assert booking.booking_url == f"https://cal.example.test/acme/{booking.id}"
    row = db.execute(
        "select call_booked, cal_booking_id from public.leads where id = %s", (lead_id,)
    ).fetchone()
    assert row == {"call_booked": True, "cal_booking_id": booking.id}
