"""The calcom-webhook edge function (served by Deno against the test database) receiving the
stand-in's signed deliveries: created, cancelled, rescheduled, duplicates, bad signatures."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest

from dbr.dev.standins.calcom import NO_SECRET_SIGNATURE, CalcomStandin, sign
from dbr.providers.calcom import STANDIN_EVENT_TYPE_ID, Attendee, CalcomClient
from tests.support.bookings import (
    WEBHOOK_SECRET,
    at,
    lead_row,
    make_lead,
    make_tenant,
    next_weekday,
    notifications_for,
)


@pytest.fixture
def signed_standin(edge_function):
    """The stand-in delivering webhooks to the edge function, signed with the shared secret."""
    with CalcomStandin(webhook_url=edge_function.url, webhook_secret=WEBHOOK_SECRET) as standin:
        yield standin


@pytest.fixture
def booking_api(api, signed_standin):
    api.app.state.calcom = CalcomClient(
        signed_standin.base_url, default_event_type_id=STANDIN_EVENT_TYPE_ID
    )
    yield api
    api.app.state.calcom = None


def events_for(db, uid: str) -> list[dict[str, Any]]:
    return db.execute(
        "select trigger_event, result from private.calcom_webhook_events where booking_uid = %s"
        " order by id",
        (uid,),
    ).fetchall()


def bookings_of(db, lead) -> list[dict[str, Any]]:
    return db.execute(
        """select cal_booking_uid as uid, status::text, source, start_time, rescheduled_from_uid,
                  rescheduled_to_uid
           from public.bookings where lead_id = %s order by created_at""",
        (lead,),
    ).fetchall()


def titles(db, client_id) -> list[str]:
    return [n["title"] for n in notifications_for(db, client_id)]


def book_through_api(booking_api, token_for, tenant, lead, start) -> str:
    resp = booking_api.post(
        "/api/calcom/create-booking",
        json={"lead_id": str(lead), "start_time": start.isoformat()},
        headers=token_for(tenant.admin),
    )
    assert resp.status_code == 200, resp.text
    return resp.json()["booking"]["id"]


def test_full_flow_book_then_created_webhook_changes_nothing_more(
    booking_api, signed_standin, db, token_for
):
    t = make_tenant(db)
    lead = make_lead(db, t.client_id, t.dataset_id, status="HOT")
    uid = book_through_api(booking_api, token_for, t, lead, at(next_weekday(), 10))
    (delivery,) = signed_standin.wait_for_deliveries(1)
    assert delivery.trigger_event == "BOOKING_CREATED" and delivery.status == 200
    result = json.loads(delivery.response)["result"]
    assert result["status"] in ("already_recorded", "recorded")  # the API or the webhook first
    assert [b["uid"] for b in bookings_of(db, lead)] == [uid]
    assert bookings_of(db, lead)[0]["source"] == "api"
    assert titles(db, t.client_id) == ["Call booked"]
    assert lead_row(db, lead)["contact_status"] == "CALL_BOOKED"


def test_cancelled_on_calcom_unbooks_the_lead_and_restores_its_status(
    booking_api, signed_standin, db, token_for
):
    t = make_tenant(db)
    lead = make_lead(db, t.client_id, t.dataset_id, status="WARM")
    uid = book_through_api(booking_api, token_for, t, lead, at(next_weekday(), 11))
    signed_standin.wait_for_deliveries(1)
    signed_standin.cancel(uid, reason="Found another supplier")
    deliveries = signed_standin.wait_for_deliveries(2)
    assert deliveries[1].trigger_event == "BOOKING_CANCELLED" and deliveries[1].status == 200
    row = lead_row(db, lead)
    assert row["contact_status"] == "WARM"
    assert not row["call_booked"] and row["cal_booking_id"] is None
    assert row["call_booked_time"] is None
    assert row["manual_mode"]  # staff decide whether the AI takes over again
    assert bookings_of(db, lead)[0]["status"] == "cancelled"
    notes = notifications_for(db, t.client_id)
    assert [n["title"] for n in notes] == ["Call booked", "Call cancelled"]
    assert "Found another supplier" in notes[1]["message"]


def test_rescheduled_on_calcom_moves_the_call_to_the_new_booking(
    booking_api, signed_standin, db, token_for
):
    t = make_tenant(db)
    lead = make_lead(db, t.client_id, t.dataset_id, status="HOT")
    day = next_weekday()
    old_uid = book_through_api(booking_api, token_for, t, lead, at(day, 10))
    signed_standin.wait_for_deliveries(1)
    new = signed_standin.reschedule(old_uid, at(day, 16))
    deliveries = signed_standin.wait_for_deliveries(2)
    assert deliveries[1].trigger_event == "BOOKING_RESCHEDULED" and deliveries[1].status == 200
    row = lead_row(db, lead)
    assert row["cal_booking_id"] == new["uid"] != old_uid
    assert row["call_booked_time"] == at(day, 16) and row["call_booked"]
    assert row["contact_status"] == "CALL_BOOKED"
    old, moved = bookings_of(db, lead)
    assert (old["status"], old["rescheduled_to_uid"]) == ("rescheduled", new["uid"])
    assert (moved["status"], moved["rescheduled_from_uid"]) == ("accepted", old_uid)
    assert titles(db, t.client_id) == ["Call booked", "Call rescheduled"]

    # Cancelling the moved call afterwards restores the status from before the first booking.
    signed_standin.cancel(new["uid"])
    signed_standin.wait_for_deliveries(3)
    assert lead_row(db, lead)["contact_status"] == "HOT"


def test_booked_directly_on_calcom_is_recorded_from_the_webhook(signed_standin, db):
    t = make_tenant(db)
    lead = make_lead(db, t.client_id, t.dataset_id, status="REPLIED")
    cal = CalcomClient(signed_standin.base_url)
    start = at(next_weekday(), 13)
    booking = asyncio.run(
        cal.create_booking(
            event_type_id=STANDIN_EVENT_TYPE_ID,
            start=start,
            attendee=Attendee("Jane Doe", "jane@example.test"),
            metadata={"lead_id": str(lead)},
        )
    )
    (delivery,) = signed_standin.wait_for_deliveries(1)
    assert json.loads(delivery.response)["result"]["status"] == "recorded"
    row = lead_row(db, lead)
    assert row["cal_booking_id"] == booking.uid and row["call_booked_time"] == start
    assert row["manual_mode"] and row["contact_status"] == "CALL_BOOKED"
    assert bookings_of(db, lead)[0]["source"] == "webhook"


def test_duplicate_delivery_has_one_effect(signed_standin, edge_function, db):
    t = make_tenant(db)
    lead = make_lead(db, t.client_id, t.dataset_id)
    standin = CalcomStandin()  # only used to build a realistic event body
    booking = {
        "id": 77,
        "uid": "dup-" + uuid.uuid4().hex,
        "title": "Discovery call",
        "start": at(next_weekday(), 9).isoformat(),
        "end": at(next_weekday(), 9, 30).isoformat(),
        "eventTypeId": STANDIN_EVENT_TYPE_ID,
        "metadata": {"lead_id": str(lead)},
        "attendees": [{"name": "Jane", "email": "jane@example.test", "timeZone": "Europe/London"}],
        "bookingFieldsResponses": {},
        "location": "https://video.test/x",
        "meetingUrl": "https://video.test/x",
    }
    body = json.dumps(standin.webhook_event("BOOKING_CREATED", booking)).encode()
    first = edge_function.post(body, sign(body, WEBHOOK_SECRET))
    second = edge_function.post(body, sign(body, WEBHOOK_SECRET))
    assert first.status_code == second.status_code == 200
    assert first.json()["result"]["status"] == "recorded"
    assert second.json()["result"]["status"] == "duplicate"
    assert len(bookings_of(db, lead)) == 1
    assert [e["trigger_event"] for e in events_for(db, booking["uid"])] == ["BOOKING_CREATED"]
    assert titles(db, t.client_id) == ["Call booked"]


def test_bad_signature_is_403_and_nothing_is_stored(edge_function, db):
    t = make_tenant(db)
    lead = make_lead(db, t.client_id, t.dataset_id)
    uid = "forged-" + uuid.uuid4().hex
    event = {
        "triggerEvent": "BOOKING_CREATED",
        "payload": {
            "uid": uid,
            "startTime": at(next_weekday(), 9).isoformat(),
            "endTime": at(next_weekday(), 9, 30).isoformat(),
            "metadata": {"lead_id": str(lead)},
        },
    }
    resp = edge_function.post_event(event, secret="not-the-secret")
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "FORBIDDEN"
    body = json.dumps(event).encode()
    tampered = edge_function.post(body + b" ", sign(body, WEBHOOK_SECRET))
    assert tampered.status_code == 403
    assert edge_function.post(body, None).status_code == 403
    assert events_for(db, uid) == [] and bookings_of(db, lead) == []
    assert not lead_row(db, lead)["call_booked"]


def test_calcom_without_a_secret_sends_the_placeholder_and_is_refused(edge_function, db):
    t = make_tenant(db)
    lead = make_lead(db, t.client_id, t.dataset_id)
    with CalcomStandin(webhook_url=edge_function.url, webhook_secret=None) as unsigned:
        cal = CalcomClient(unsigned.base_url)
        booking = asyncio.run(
            cal.create_booking(
                event_type_id=STANDIN_EVENT_TYPE_ID,
                start=at(next_weekday(), 12),
                attendee=Attendee("Jane Doe", "jane@example.test"),
                metadata={"lead_id": str(lead)},
            )
        )
        (delivery,) = unsigned.wait_for_deliveries(1)
    assert delivery.signature == NO_SECRET_SIGNATURE
    assert delivery.status == 403
    assert json.loads(delivery.response)["error"]["details"]["reason"] == "no_secret_placeholder"
    assert events_for(db, booking.uid) == [] and bookings_of(db, lead) == []


def test_cancellation_overtaking_creation_leaves_the_lead_unbooked(edge_function, db):
    t = make_tenant(db)
    lead = make_lead(db, t.client_id, t.dataset_id, status="HOT")
    uid = "late-" + uuid.uuid4().hex
    start = at(next_weekday(), 10)
    payload = {
        "uid": uid,
        "bookingId": 9,
        "eventTypeId": STANDIN_EVENT_TYPE_ID,
        "startTime": start.isoformat(),
        "endTime": (start + timedelta(minutes=30)).isoformat(),
        "metadata": {"lead_id": str(lead)},
    }
    cancelled = edge_function.post_event({"triggerEvent": "BOOKING_CANCELLED", "payload": payload})
    assert cancelled.json()["result"]["status"] == "recorded"
    created = edge_function.post_event({"triggerEvent": "BOOKING_CREATED", "payload": payload})
    assert created.json()["result"]["status"] == "already_recorded"
    row = lead_row(db, lead)
    assert not row["call_booked"] and row["contact_status"] == "HOT"


def test_unknown_lead_and_unsupported_events_are_acknowledged_and_ignored(edge_function, db):
    unknown = edge_function.post_event(
        {
            "triggerEvent": "BOOKING_CREATED",
            "payload": {
                "uid": "u-" + uuid.uuid4().hex,
                "startTime": "2030-01-07T10:00:00Z",
                "endTime": "2030-01-07T10:30:00Z",
                "metadata": {"lead_id": str(uuid.uuid4())},
            },
        }
    )
    assert unknown.status_code == 200
    assert unknown.json()["result"]["reason"] == "unknown_lead"
    ping = edge_function.post_event({"triggerEvent": "PING", "payload": {}})
    assert ping.status_code == 200 and ping.json()["result"]["status"] == "ok"
    other = edge_function.post_event({"triggerEvent": "MEETING_ENDED", "payload": {"uid": "x"}})
    assert other.json()["result"]["reason"] == "unsupported_event"
    malformed = edge_function.post_event({"triggerEvent": "BOOKING_CREATED", "payload": {}})
    assert malformed.status_code == 400


# ------------------------------------------------------------ out-of-order deliveries


def _event(trigger: str, lead, uid: str, start, previous: tuple[str, Any] | None = None):
    payload: dict[str, Any] = {
        "uid": uid,
        "eventTypeId": STANDIN_EVENT_TYPE_ID,
        "startTime": start.isoformat(),
        "endTime": (start + timedelta(minutes=30)).isoformat(),
        "metadata": {"lead_id": str(lead)},
    }
    if previous is not None:
        old_uid, old_start = previous
        payload |= {
            "rescheduleUid": old_uid,
            "rescheduleStartTime": old_start.isoformat(),
            "rescheduleEndTime": (old_start + timedelta(minutes=30)).isoformat(),
        }
    return {"triggerEvent": trigger, "payload": payload}


def _story(name: str, lead, day) -> tuple[list[dict[str, Any]], str | None, Any]:
    """What really happened on Cal.com, as the webhook events it sends, and the call that
    stands at the end (uid, start) - or (None, None) when none does."""
    a, b, c = (f"{name}-{x}-{uuid.uuid4().hex[:8]}" for x in "abc")
    t1, t2, t3 = at(day, 10), at(day, 14), at(day, 16, 30)
    created = _event("BOOKING_CREATED", lead, a, t1)
    moved = _event("BOOKING_RESCHEDULED", lead, b, t2, (a, t1))
    if name == "reschedule":
        return [created, moved], b, t2
    if name == "reschedule-twice":
        return [created, moved, _event("BOOKING_RESCHEDULED", lead, c, t3, (b, t2))], c, t3
    if name == "reschedule-then-cancel":
        return [created, moved, _event("BOOKING_CANCELLED", lead, b, t2)], None, None
    assert name == "cancel"
    return [created, _event("BOOKING_CANCELLED", lead, a, t1)], None, None


STORIES = ("reschedule", "reschedule-twice", "reschedule-then-cancel", "cancel")


@pytest.mark.parametrize("story", STORIES)
def test_any_delivery_order_with_duplicates_converges_to_one_call_at_the_latest_time(db, story):
    t = make_tenant(db)
    day = next_weekday()
    n_events = len(_story(story, uuid.uuid4(), day)[0])
    for order in itertools.permutations(range(n_events)):
        lead = make_lead(db, t.client_id, t.dataset_id, status="HOT")
        events, final_uid, final_start = _story(story, lead, day)
        # Every delivery in this order, then all of them again (Cal.com retries).
        for i in [*order, *reversed(order)]:
            db.execute("select private.ingest_calcom_webhook(%s::jsonb)", (json.dumps(events[i]),))
        active = [b for b in bookings_of(db, lead) if b["status"] == "accepted"]
        row = lead_row(db, lead)
        where = f"{story}, order {order}"
        if final_uid is None:
            assert active == [], where
            assert not row["call_booked"] and row["cal_booking_id"] is None, where
            assert row["call_booked_time"] is None and row["contact_status"] == "HOT", where
        else:
            assert [b["uid"] for b in active] == [final_uid], where
            assert row["call_booked"] and row["cal_booking_id"] == final_uid, where
            assert row["call_booked_time"] == final_start, where
            assert row["contact_status"] == "CALL_BOOKED", where
            assert active[0]["start_time"] == final_start, where


def test_reschedule_delivered_before_the_creation_leaves_one_booking(edge_function, db):
    t = make_tenant(db)
    lead = make_lead(db, t.client_id, t.dataset_id, status="WARM")
    (created, moved), new_uid, new_start = _story("reschedule", lead, next_weekday())
    assert edge_function.post_event(moved).status_code == 200
    late = edge_function.post_event(created)
    assert late.status_code == 200 and late.json()["result"]["status"] == "already_recorded"
    stored = {b["uid"]: b["status"] for b in bookings_of(db, lead)}
    assert stored == {created["payload"]["uid"]: "rescheduled", new_uid: "accepted"}
    row = lead_row(db, lead)
    assert (row["cal_booking_id"], row["call_booked_time"]) == (new_uid, new_start)


def test_a_signed_booking_with_a_nul_or_lone_surrogate_is_recorded_not_refused(edge_function, db):
    t = make_tenant(db)
    lead = make_lead(db, t.client_id, t.dataset_id, status="HOT")
    event = _event("BOOKING_CREATED", lead, "odd-" + uuid.uuid4().hex, at(next_weekday(), 11))
    event["payload"]["additionalNotes"] = "Call me\x00 after 5"
    # json.dumps writes both as \u escapes, as Cal.com's JSON would.
    body = json.dumps(event).replace("after 5", "after 5 \\ud800").encode()
    resp = edge_function.post(body, sign(body, WEBHOOK_SECRET))
    assert resp.status_code == 200, resp.text
    assert resp.json()["result"]["status"] == "recorded"
    stored = db.execute(
        "select notes from public.bookings where cal_booking_uid = %s",
        (event["payload"]["uid"],),
    ).fetchone()
    assert stored["notes"] == "Call me\ufffd after 5 \ufffd"
    assert lead_row(db, lead)["call_booked"]


def test_a_booking_ending_before_it_starts_is_refused_with_400_not_retried(edge_function, db):
    # record_booking refuses it with private.raise_error (SQLSTATE PGRST, status 400): the
    # edge function answers 400 (Cal.com does not retry) and books nothing.
    t = make_tenant(db)
    lead = make_lead(db, t.client_id, t.dataset_id, status="HOT")
    start = at(next_weekday(), 10)
    resp = edge_function.post_event(
        {
            "triggerEvent": "BOOKING_CREATED",
            "payload": {
                "uid": "backwards-" + uuid.uuid4().hex,
                "eventTypeId": STANDIN_EVENT_TYPE_ID,
                "startTime": start.isoformat(),
                "endTime": (start - timedelta(minutes=30)).isoformat(),
                "metadata": {"lead_id": str(lead)},
            },
        }
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == "VALIDATION_ERROR"
    assert not lead_row(db, lead)["call_booked"]
