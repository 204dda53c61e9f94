"""The double "Hot lead", through the real AI booking flow: the lead shows interest (status
HOT, sentiment POSITIVE: "Hot lead" fires), accepts a slot (the booking makes the status
CALL_BOOKED, then the AI's assessment makes the sentiment HOT: the trigger fires again, since
the status is no longer HOT). Each person must hear about it once."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from dbr.ai.context import slot_label
from tests.support.ai import ai_messages, inbound, lead, make_lead, make_world, run_jobs

LONDON = ZoneInfo("Europe/London")


def test_a_lead_that_books_after_turning_hot_notifies_each_person_once(
    db, db_url, ai_settings, claude, cal
):
    world = make_world(db)
    lead_id = make_lead(db, world)
    inbound(db, world, lead_id, "Yes I'm interested, when could we talk?")
    run_jobs(db_url, ai_settings, claude=claude, cal=cal)
    assert lead(db, lead_id)["status"] == "HOT"
    (offer,) = ai_messages(db, lead_id)
    wanted = datetime.fromisoformat(offer["ai_metadata"]["offered_slots"][0].replace("Z", "+00:00"))
    inbound(db, world, lead_id, f"Could we do {slot_label(wanted, LONDON)}?")
    run_jobs(db_url, ai_settings, claude=claude, cal=cal)

    row = lead(db, lead_id)
    # The second firing's condition: booked, and the sentiment became HOT afterwards.
    assert row["status"] == "CALL_BOOKED" and row["sentiment"] == "HOT"
    per_person = db.execute(
        "select user_id, count(*) as n from public.notifications"
        " where client_id = %s and event = 'hot_lead' group by user_id",
        (world.client_id,),
    ).fetchall()
    assert per_person and {r["n"] for r in per_person} == {1}
    booked = db.execute(
        "select count(*) as n from public.notifications where client_id = %s and event = 'booking'",
        (world.client_id,),
    ).fetchone()["n"]
    assert booked == len(per_person), "the booking itself is still told, once each"
