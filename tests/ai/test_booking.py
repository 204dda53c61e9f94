"""The AI books calls through the Cal.com stand-in: it offers real open slots, books the one
the lead accepts, confirms it, and never confirms a booking that does not exist."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dbr.ai.context import slot_label
from tests.support.ai import (
    ai_messages,
    claude_client,
    inbound,
    lead,
    make_lead,
    make_world,
    notifications,
    run_jobs,
)

LONDON = ZoneInfo("Europe/London")


def _offer(db, db_url, ai_settings, claude, cal) -> tuple[Any, Any, list[str]]:
    world = make_world(db)
    lead_id = make_lead(db, world)
    inbound(db, world, lead_id, "Yes I'm interested, when could we talk?")
    (outcome,) = run_jobs(db_url, ai_settings, claude=claude, cal=cal)
    assert outcome.result["status"] == "sent"
    (offer,) = ai_messages(db, lead_id)
    slots = offer["ai_metadata"]["offered_slots"]
    return world, lead_id, slots


def test_interest_gets_real_open_slots(db, db_url, ai_settings, claude, cal):
    _, lead_id, slots = _offer(db, db_url, ai_settings, claude, cal)
    assert slots and all(s.endswith("Z") for s in slots)
    (offer,) = ai_messages(db, lead_id)
    first = datetime.fromisoformat(slots[0].replace("Z", "+00:00"))
    assert slot_label(first, LONDON) in offer["content"]
    assert offer["ai_metadata"]["booking_intent"] == "offer_slots"
    assert "<available_slots" in claude.requests[-1].user_text
    assert any(r.path == "/v2/slots" for r in cal.requests)
    row = lead(db, lead_id)
    assert row["status"] == "HOT" and row["sentiment"] == "POSITIVE"


def test_accepting_a_named_slot_books_it_and_confirms(db, db_url, ai_settings, claude, cal):
    world, lead_id, slots = _offer(db, db_url, ai_settings, claude, cal)
    wanted = datetime.fromisoformat(slots[1].replace("Z", "+00:00"))
    inbound(db, world, lead_id, f"Could we do {slot_label(wanted, LONDON)}?")
    (outcome,) = run_jobs(db_url, ai_settings, claude=claude, cal=cal)
    assert outcome.result["status"] == "sent"

    (booking,) = cal.bookings.values()
    assert booking["metadata"]["lead_id"] == str(lead_id)
    assert datetime.fromisoformat(booking["start"].replace("Z", "+00:00")) == wanted
    row = lead(db, lead_id)
    assert row["call_booked"] and row["status"] == "CALL_BOOKED" and row["manual_mode"]
    assert row["cal_booking_id"] == booking["uid"]
    _, confirmation = ai_messages(db, lead_id)
    # A system message: booking switched manual mode on, which holds back ai_response sends.
    assert confirmation["category"] == "system" and confirmation["ai_generated"]
    assert confirmation["ai_metadata"]["booking"]["booking_id"] == booking["uid"]
    assert slot_label(wanted, LONDON) in confirmation["content"]


def test_calcom_failure_sends_a_polite_fallback_not_a_booking(db, db_url, ai_settings, claude, cal):
    world, lead_id, _ = _offer(db, db_url, ai_settings, claude, cal)
    inbound(db, world, lead_id, "Yes that works")
    cal.fail_next(500, method="POST", path_prefix="/v2/bookings")
    (outcome,) = run_jobs(db_url, ai_settings, claude=claude, cal=cal)
    assert outcome.result["status"] == "sent"
    assert cal.bookings == {}
    _, fallback = ai_messages(db, lead_id)
    assert "couldn't lock that time in" in fallback["content"]
    assert "booked" not in fallback["content"]
    assert fallback["ai_metadata"]["booking_error"]


def test_a_slot_taken_meanwhile_is_told_to_the_lead_as_taken(db, db_url, ai_settings, claude, cal):
    world, lead_id, _ = _offer(db, db_url, ai_settings, claude, cal)
    inbound(db, world, lead_id, "Yes that works")
    cal.fail_next(
        400,
        method="POST",
        path_prefix="/v2/bookings",
        message="User either already has booking at this time or is not available",
    )
    (outcome,) = run_jobs(db_url, ai_settings, claude=claude, cal=cal)
    assert outcome.result["status"] == "sent"
    _, fallback = ai_messages(db, lead_id)
    assert "that time has just been taken" in fallback["content"]
    assert "booked" not in fallback["content"]
    row = lead(db, lead_id)
    assert not row["call_booked"] and row["conversation_status"] == "needs_human"
    assert "Booking failed: please confirm a time with the lead" in notifications(
        db, world.client_id
    )


class _InventSlot:
    """A model that insists on a time nobody offered."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.messages = self

    async def create(self, **kw: Any) -> Any:
        message = await self._inner.messages.create(**kw)
        for block in message.content:
            if block.type == "tool_use":
                block.input.update(booking_intent="book", chosen_slot="2031-01-06T10:00:00Z")
        return message


def test_a_slot_that_was_not_offered_is_never_booked(db, db_url, ai_settings, claude, cal):
    world, lead_id, _ = _offer(db, db_url, ai_settings, claude, cal)
    inbound(db, world, lead_id, "Yes that works")
    db.execute("update private.jobs set max_attempts = 1 where kind = 'ai.reply'")
    (outcome,) = run_jobs(
        db_url, ai_settings, claude=claude, cal=cal, anthropic=_InventSlot(claude_client(claude))
    )
    assert outcome.status == "dead" and "was not offered" in outcome.error
    assert cal.bookings == {} and len(ai_messages(db, lead_id)) == 1
    assert not lead(db, lead_id)["call_booked"]


def test_suggest_mode_does_not_book_by_itself(db, db_url, ai_settings, claude, cal):
    world, lead_id, _ = _offer(db, db_url, ai_settings, claude, cal)
    db.execute("update public.conversations set ai_mode = 'suggest' where lead_id = %s", (lead_id,))
    inbound(db, world, lead_id, "Yes that works")
    (outcome,) = run_jobs(db_url, ai_settings, claude=claude, cal=cal)
    assert outcome.result["status"] == "drafted"
    assert cal.bookings == {}
    draft = ai_messages(db, lead_id, status="draft")[0]
    assert draft["ai_metadata"]["booking_pending"]
    assert draft["ai_reasoning"].startswith("Not booked yet")
