"""The Cal.com client against the stand-in: pinned API versions, slots, bookings, failures."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from dbr.dev.standins.calcom import NO_SECRET_SIGNATURE, CalcomStandin, sign
from dbr.providers.calcom import (
    BOOKINGS_API_VERSION,
    SLOTS_API_VERSION,
    STANDIN_EVENT_TYPE_ID,
    Attendee,
    CalcomClient,
    CalcomError,
    calcom_client,
)
from tests.support.bookings import at, next_weekday

JANE = Attendee(name="Jane Doe", email="jane@example.test", time_zone="Europe/London")


def run(coro):
    return asyncio.run(coro)


def test_slots_for_a_day_in_the_requested_timezone(calcom: CalcomClient):
    day = next_weekday()
    slots = run(calcom.slots_for_day(event_type_id=STANDIN_EVENT_TYPE_ID, day=day))
    assert slots, "the stand-in host works weekdays 09:00-17:00"
    assert all(s.start.date() == day and s.duration_minutes == 30 for s in slots)
    assert slots[0].start == at(day, 9)
    ny = run(
        calcom.slots_for_day(
            event_type_id=STANDIN_EVENT_TYPE_ID, day=day, time_zone="America/New_York"
        )
    )
    # London's 09:00-17:00 is the morning of the same day in New York: same instants, NY clock.
    assert {s.start for s in ny} == {s.start for s in slots}
    assert ny[0].start.utcoffset() != slots[0].start.utcoffset()


def test_every_call_pins_the_endpoint_api_version(
    calcom: CalcomClient, calcom_standin: CalcomStandin
):
    day = next_weekday()
    run(calcom.slots_for_day(event_type_id=STANDIN_EVENT_TYPE_ID, day=day))
    booking = run(
        calcom.create_booking(
            event_type_id=STANDIN_EVENT_TYPE_ID,
            start=at(day, 10),
            attendee=JANE,
            metadata={"k": "v"},
        )
    )
    run(calcom.get_booking(booking.uid))
    moved = run(calcom.reschedule_booking(booking.uid, start=at(day, 11)))
    run(calcom.cancel_booking(moved.uid, reason="no longer needed"))
    seen = [(r.method, r.path, r.headers.get("cal-api-version")) for r in calcom_standin.requests]
    assert len(seen) == 5
    for method, path, version in seen:
        expected = SLOTS_API_VERSION if path.startswith("/v2/slots") else BOOKINGS_API_VERSION
        assert version == expected, (method, path)


def test_unpinned_calls_are_refused_like_an_older_endpoint_version(calcom_standin: CalcomStandin):
    day = next_weekday().isoformat()
    slots = httpx.get(
        f"{calcom_standin.base_url}/slots",
        params={"eventTypeId": STANDIN_EVENT_TYPE_ID, "start": day, "end": day},
    )
    assert slots.status_code == 404
    old = httpx.get(
        f"{calcom_standin.base_url}/slots",
        params={"eventTypeId": STANDIN_EVENT_TYPE_ID, "start": day, "end": day},
        headers={"cal-api-version": BOOKINGS_API_VERSION},
    )
    assert old.status_code == 404
    booking = httpx.post(
        f"{calcom_standin.base_url}/bookings",
        json={"start": f"{day}T10:00:00Z", "eventTypeId": STANDIN_EVENT_TYPE_ID},
    )
    assert booking.status_code == 400
    assert booking.json()["status"] == "error"
    assert calcom_standin.bookings == {}


def test_booking_a_taken_slot_is_refused_as_unavailable(calcom: CalcomClient):
    start = at(next_weekday(), 14)
    first = run(
        calcom.create_booking(
            event_type_id=STANDIN_EVENT_TYPE_ID,
            start=start,
            attendee=JANE,
            metadata={"lead_id": "1"},
        )
    )
    assert first.start == start and first.metadata == {"lead_id": "1"}
    with pytest.raises(CalcomError) as err:
        run(calcom.create_booking(event_type_id=STANDIN_EVENT_TYPE_ID, start=start, attendee=JANE))
    assert err.value.status == 400 and err.value.slot_unavailable and not err.value.retryable
    slots = run(calcom.slots_for_day(event_type_id=STANDIN_EVENT_TYPE_ID, day=start.date()))
    assert start not in {s.start for s in slots}


def test_server_errors_and_timeouts_are_retryable_errors(calcom: CalcomClient, calcom_standin):
    calcom_standin.fail_next(503, path_prefix="/v2/slots")
    with pytest.raises(CalcomError) as err:
        run(calcom.slots_for_day(event_type_id=STANDIN_EVENT_TYPE_ID, day=next_weekday()))
    assert (err.value.status, err.value.code) == (503, "ServiceUnavailableException")
    assert err.value.retryable

    slow = CalcomClient(calcom_standin.base_url, timeout=0.2)
    calcom_standin.fail_next(500, delay=1.0)
    with pytest.raises(CalcomError) as err:
        run(slow.slots_for_day(event_type_id=STANDIN_EVENT_TYPE_ID, day=next_weekday()))
    assert err.value.code == "timeout" and err.value.retryable


def test_unknown_event_type_and_wrong_key_are_not_retryable(calcom_standin: CalcomStandin):
    keyed = CalcomStandin(api_key="cal_live_right").start()
    try:
        wrong = CalcomClient(keyed.base_url, "cal_live_wrong")
        with pytest.raises(CalcomError) as err:
            run(wrong.slots_for_day(event_type_id=STANDIN_EVENT_TYPE_ID, day=next_weekday()))
        assert err.value.status == 401 and not err.value.retryable
        assert keyed.requests[0].headers["authorization"] == "Bearer cal_live_wrong"
    finally:
        keyed.stop()
    with pytest.raises(CalcomError) as err:
        run(
            CalcomClient(calcom_standin.base_url).slots_for_day(
                event_type_id=999, day=next_weekday()
            )
        )
    assert err.value.status == 404


def test_factory_uses_the_standin_without_a_key(settings):
    local = calcom_client(settings.model_copy(update={"calcom_api_key": None}))
    standin = f"http://127.0.0.1:{settings.calcom_standin_port}/v2"
    assert local.is_standin and local.base_url == standin
    assert local.default_event_type_id == STANDIN_EVENT_TYPE_ID
    real = calcom_client(settings.model_copy(update={"calcom_api_key": "cal_live_x"}))
    assert real.base_url == "https://api.cal.com/v2" and not real.is_standin
    assert real.default_event_type_id is None
    assert real.booking_url("abc") == "https://app.cal.com/booking/abc"


def test_webhook_signature_is_hmac_of_the_body_or_the_placeholder():
    body = b'{"triggerEvent":"PING"}'
    assert sign(body, "s3cret") == sign(body, "s3cret") != sign(body + b" ", "s3cret")
    assert len(sign(body, "s3cret")) == 64
    assert sign(body, None) == NO_SECRET_SIGNATURE
