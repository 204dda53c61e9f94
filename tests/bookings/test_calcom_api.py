"""calcom/check-availability and calcom/create-booking through the HTTP API, against the
Cal.com stand-in."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dbr.bookings.service import MAX_DAYS_AHEAD
from dbr.dev.standins.calcom import CalcomStandin, EventType
from dbr.providers.calcom import (
    BOOKINGS_API_VERSION,
    SLOTS_API_VERSION,
    STANDIN_EVENT_TYPE_ID,
    CalcomClient,
)
from tests.support import make_user
from tests.support.bookings import (
    at,
    lead_row,
    make_dataset,
    make_lead,
    make_tenant,
    next_weekday,
    notifications_for,
    utc,
)


def assert_error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return body["error"]


def book(api, headers, lead_id, start, notes=None):
    body = {"lead_id": str(lead_id), "start_time": start.isoformat()}
    if notes is not None:
        body["notes"] = notes
    return api.post("/api/calcom/create-booking", json=body, headers=headers)


# ------------------------------------------------------------------ check-availability


def test_availability_lists_open_slots_for_the_day(calcom_api, db, token_for, calcom_standin):
    t = make_tenant(db)
    day = next_weekday()
    resp = calcom_api.post(
        "/api/calcom/check-availability", json={"date": day.isoformat()}, headers=token_for(t.admin)
    )
    assert resp.status_code == 200, resp.text
    slots = resp.json()["slots"]
    assert slots[0] == {"time": at(day, 9).isoformat(), "duration": 30}
    assert len(slots) == 16  # 09:00-17:00, every 30 minutes
    assert all(s["time"].startswith(day.isoformat()) for s in slots)
    (req,) = calcom_standin.requests
    assert req.path == "/v2/slots" and req.headers["cal-api-version"] == SLOTS_API_VERSION
    assert req.query["eventTypeId"] == [str(STANDIN_EVENT_TYPE_ID)]


def test_availability_in_another_timezone(calcom_api, db, token_for):
    t = make_tenant(db)
    day = next_weekday()
    resp = calcom_api.post(
        "/api/calcom/check-availability",
        json={"date": day.isoformat(), "timezone": "Asia/Tokyo"},
        headers=token_for(t.admin),
    )
    assert resp.status_code == 200, resp.text
    times = [s["time"] for s in resp.json()["slots"]]
    # London's working hours fall in Tokyo's evening: answered on Tokyo's clock, on `day`.
    assert times and all(x.endswith("+09:00") and x.startswith(day.isoformat()) for x in times)


def test_availability_validates_date_and_timezone(calcom_api, db, token_for):
    t = make_tenant(db)
    h = token_for(t.admin)
    url = "/api/calcom/check-availability"
    assert_error(
        calcom_api.post(url, json={"date": "25/12/2026"}, headers=h), 400, "VALIDATION_ERROR"
    )
    assert_error(
        calcom_api.post(url, json={"date": "2026-12-01", "timezone": "Mars/Olympus"}, headers=h),
        400,
        "VALIDATION_ERROR",
    )
    assert_error(calcom_api.post(url, json={"date": "2026-12-01"}), 401, "UNAUTHORIZED")


def test_availability_when_calcom_is_down_is_503(calcom_api, db, token_for, calcom_standin):
    t = make_tenant(db)
    calcom_standin.fail_next(502)
    err = assert_error(
        calcom_api.post(
            "/api/calcom/check-availability",
            json={"date": next_weekday().isoformat()},
            headers=token_for(t.admin),
        ),
        503,
        "CALCOM_UNAVAILABLE",
    )
    assert err["details"]["status"] == 502


# ------------------------------------------------------------------ create-booking


def test_booking_a_call_updates_the_lead_and_notifies_staff(
    calcom_api, db, token_for, calcom_standin
):
    t = make_tenant(db)
    lead = make_lead(db, t.client_id, t.dataset_id, status="HOT")
    start = at(next_weekday(), 10, 30)
    resp = book(calcom_api, token_for(t.admin), lead, start, notes="Wants a quote")
    assert resp.status_code == 200, resp.text
    booking = resp.json()["booking"]
    assert set(booking) == {"id", "start_time", "end_time", "booking_url", "lead_updated"}
    assert booking["lead_updated"] is True
    assert booking["start_time"] == utc(start).isoformat()
    assert booking["booking_url"] == f"{calcom_standin.origin}/booking/{booking['id']}"

    row = lead_row(db, lead)
    assert row["call_booked"] and row["manual_mode"]
    assert row["contact_status"] == "CALL_BOOKED"
    assert row["call_booked_time"] == start and row["cal_booking_id"] == booking["id"]

    cal = calcom_standin.bookings[booking["id"]]
    assert cal["metadata"] == {"lead_id": str(lead)}
    assert cal["attendees"][0]["email"] == "jane@example.test"
    assert cal["bookingFieldsResponses"]["notes"] == "Wants a quote"
    post = next(r for r in calcom_standin.requests if r.method == "POST")
    assert post.headers["cal-api-version"] == BOOKINGS_API_VERSION

    stored = db.execute(
        "select source, booked_by, status::text, previous_lead_status::text as prev, notes"
        " from public.bookings where cal_booking_uid = %s",
        (booking["id"],),
    ).fetchone()
    assert stored == {
        "source": "api",
        "booked_by": t.admin,
        "status": "accepted",
        "prev": "HOT",
        "notes": "Wants a quote",
    }
    notes = notifications_for(db, t.client_id)
    assert [n["title"] for n in notes] == ["Call booked"]
    assert "Jane Doe booked a call" in notes[0]["message"]
    assert notes[0]["data"]["booking_uid"] == booking["id"]

    # The slot is gone from availability.
    slots = calcom_api.post(
        "/api/calcom/check-availability",
        json={"date": start.date().isoformat()},
        headers=token_for(t.admin),
    ).json()["slots"]
    assert start.isoformat() not in {s["time"] for s in slots}


def test_lead_without_email_is_booked_with_a_placeholder_address(
    calcom_api, db, token_for, calcom_standin
):
    t = make_tenant(db)
    lead = make_lead(db, t.client_id, t.dataset_id, email=None)
    resp = book(calcom_api, token_for(t.admin), lead, at(next_weekday(), 11))
    assert resp.status_code == 200, resp.text
    attendee = calcom_standin.bookings[resp.json()["booking"]["id"]]["attendees"][0]
    assert attendee["email"].endswith("@sms-lead.invalid")
    assert attendee["phoneNumber"].startswith("+44")


def test_read_only_member_cannot_book(calcom_api, db, token_for, calcom_standin):
    t = make_tenant(db)
    viewer = make_user(db, t.client_id, "read_only")
    lead = make_lead(db, t.client_id, t.dataset_id)
    assert_error(
        book(calcom_api, token_for(viewer), lead, at(next_weekday(), 10)), 403, "FORBIDDEN"
    )
    assert calcom_standin.bookings == {}
    assert not lead_row(db, lead)["call_booked"]


def test_another_tenants_lead_is_404_and_nothing_is_booked(
    calcom_api, db, token_for, calcom_standin
):
    mine, theirs = make_tenant(db, "Mine"), make_tenant(db, "Theirs")
    lead = make_lead(db, theirs.client_id, theirs.dataset_id)
    assert_error(
        book(calcom_api, token_for(mine.admin), lead, at(next_weekday(), 10)), 404, "NOT_FOUND"
    )
    assert calcom_standin.bookings == {}
    assert lead_row(db, lead)["contact_status"] == "HOT"


def test_lead_in_a_dataset_the_member_cannot_see_is_404(calcom_api, db, token_for, calcom_standin):
    t = make_tenant(db)
    other = make_dataset(db, t.client_id, "Other list")
    rep = make_user(
        db, t.client_id, "sales_rep", can_view_all_leads=False, allowed_dataset_ids=[t.dataset_id]
    )
    hidden = make_lead(db, t.client_id, other)
    assert_error(book(calcom_api, token_for(rep), hidden, at(next_weekday(), 10)), 404, "NOT_FOUND")
    visible = make_lead(db, t.client_id, t.dataset_id)
    assert book(calcom_api, token_for(rep), visible, at(next_weekday(), 10)).status_code == 200


def test_calcom_failure_returns_the_error_body_and_leaves_the_lead_alone(
    calcom_api, db, token_for, calcom_standin
):
    t = make_tenant(db)
    lead = make_lead(db, t.client_id, t.dataset_id, status="WARM")
    calcom_standin.fail_next(500, method="POST", path_prefix="/v2/bookings")
    err = assert_error(
        book(calcom_api, token_for(t.admin), lead, at(next_weekday(), 10)),
        503,
        "CALCOM_UNAVAILABLE",
    )
    assert err["details"] == {
        "provider": "calcom",
        "status": 500,
        "code": "InternalServerErrorException",
    }
    assert lead_row(db, lead) == {
        "contact_status": "WARM",
        "call_booked": False,
        "call_booked_time": None,
        "cal_booking_id": None,
        "manual_mode": False,
    }
    assert (
        db.execute(
            "select count(*) as n from public.bookings where lead_id = %s", (lead,)
        ).fetchone()["n"]
        == 0
    )
    assert notifications_for(db, t.client_id) == []


def test_a_taken_slot_is_409(calcom_api, db, token_for):
    t = make_tenant(db)
    start = at(next_weekday(), 15)
    first = make_lead(db, t.client_id, t.dataset_id)
    second = make_lead(db, t.client_id, t.dataset_id, first_name="Sam")
    assert book(calcom_api, token_for(t.admin), first, start).status_code == 200
    err = assert_error(book(calcom_api, token_for(t.admin), second, start), 409, "SLOT_UNAVAILABLE")
    assert "no longer available" in err["message"]
    assert not lead_row(db, second)["call_booked"]


def test_booking_in_the_past_or_without_offset_is_400(calcom_api, db, token_for, calcom_standin):
    t = make_tenant(db)
    lead = make_lead(db, t.client_id, t.dataset_id)
    h = token_for(t.admin)
    assert_error(book(calcom_api, h, lead, at(next_weekday(-10), 10)), 400, "VALIDATION_ERROR")
    naive = {"lead_id": str(lead), "start_time": "2030-01-07T10:00:00"}
    assert_error(
        calcom_api.post("/api/calcom/create-booking", json=naive, headers=h),
        400,
        "VALIDATION_ERROR",
    )
    assert calcom_standin.bookings == {}


def test_the_clients_own_event_type_is_booked(api, db, token_for):
    sales = EventType(2002, "sales-call", "Sales call", length=45)
    with CalcomStandin(event_types=(sales,)) as standin:
        api.app.state.calcom = CalcomClient(standin.base_url)  # no default event type
        try:
            t = make_tenant(db)
            lead = make_lead(db, t.client_id, t.dataset_id)
            start = at(next_weekday(), 9, 45)
            err = assert_error(
                book(api, token_for(t.admin), lead, start), 503, "CALCOM_NOT_CONFIGURED"
            )
            assert "event_type_id" in err["message"]
            db.execute(
                "update public.clients set settings = settings || %s::jsonb where id = %s",
                (json.dumps({"calcom": {"event_type_id": 2002}}), t.client_id),
            )
            resp = book(api, token_for(t.admin), lead, start)
            assert resp.status_code == 200, resp.text
            booking = resp.json()["booking"]
            assert standin.bookings[booking["id"]]["eventTypeId"] == 2002
            assert booking["end_time"] == utc(at(start.date(), 10, 30)).isoformat()
        finally:
            api.app.state.calcom = None


def _opt_out(db, lead, how: str) -> None:
    """`stop`: the lead texted STOP; `suppressed`: staff put the number on the do-not-contact
    list (the lead row itself is not flagged)."""
    row = db.execute(
        "select client_id, phone_number from public.leads where id = %s", (lead,)
    ).fetchone()
    if how == "stop":
        db.execute(
            "select private.opt_out_number(%s, %s, 'Replied \"STOP\"', 'inbound_keyword')",
            (row["client_id"], row["phone_number"]),
        )
    else:
        db.execute(
            "insert into public.suppressions (client_id, phone_number, reason, source)"
            " values (%s, %s, 'asked on the phone', 'staff')",
            (row["client_id"], row["phone_number"]),
        )


@pytest.mark.parametrize("how", ["stop", "suppressed"])
def test_an_opted_out_lead_is_not_booked_and_calcom_is_never_called(
    calcom_api, db, token_for, calcom_standin, how
):
    t = make_tenant(db)
    lead = make_lead(db, t.client_id, t.dataset_id, status="HOT")
    _opt_out(db, lead, how)
    before = lead_row(db, lead)
    err = assert_error(
        book(calcom_api, token_for(t.admin), lead, at(next_weekday(), 10)), 409, "CONFLICT"
    )
    assert "opted out" in err["message"]
    assert err["details"] == {"lead_id": str(lead), "reason": "opted_out"}
    assert calcom_standin.requests == [] and calcom_standin.bookings == {}
    assert lead_row(db, lead) == before and not before["call_booked"]
    assert (
        db.execute(
            "select count(*) as n from public.bookings where lead_id = %s", (lead,)
        ).fetchone()["n"]
        == 0
    )
    assert notifications_for(db, t.client_id) == []


# ------------------------------------------------------------------ strict, range-checked input


def _today(tz: str = "Europe/London") -> date:
    return datetime.now(ZoneInfo(tz)).date()


def _field_error(resp, field: str) -> dict:
    err = assert_error(resp, 400, "VALIDATION_ERROR")
    assert field in {d["field"] for d in err["details"]}, err
    return err


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31",  # was a 500 (OverflowError)
        "0999-01-01",  # was a 502 (year not zero-padded for Cal.com)
        "0001-01-01",
        0,  # was accepted as 1970-01-01
        20261201,
        True,
        None,
        "2026-12-01T00:00:00",
        "2026-1-5",
        "far-past",
        "far-future",
    ],
)
def test_availability_date_must_be_a_yyyy_mm_dd_string_within_range(
    calcom_api, db, token_for, calcom_standin, value
):
    t = make_tenant(db)
    if value == "far-past":
        value = (_today() - timedelta(days=2)).isoformat()
    elif value == "far-future":
        value = (_today() + timedelta(days=MAX_DAYS_AHEAD + 1)).isoformat()
    resp = calcom_api.post(
        "/api/calcom/check-availability", json={"date": value}, headers=token_for(t.admin)
    )
    _field_error(resp, "date")
    assert calcom_standin.requests == []


def test_availability_range_is_the_days_of_the_requested_time_zone(calcom_api, db, token_for):
    t = make_tenant(db)
    h = token_for(t.admin)
    url = "/api/calcom/check-availability"
    for tz in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):  # UTC+14 and UTC-11
        today = _today(tz)
        for day in (today - timedelta(days=1), today, today + timedelta(days=MAX_DAYS_AHEAD)):
            resp = calcom_api.post(url, json={"date": day.isoformat(), "timezone": tz}, headers=h)
            assert resp.status_code == 200, (tz, day, resp.text)
        late = (today + timedelta(days=MAX_DAYS_AHEAD + 1)).isoformat()
        _field_error(calcom_api.post(url, json={"date": late, "timezone": tz}, headers=h), "date")
    _field_error(
        calcom_api.post(url, json={"date": _today().isoformat(), "timezone": 5}, headers=h),
        "timezone",
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("start_time", "9999-12-31T10:00:00Z"),
        ("start_time", "0999-01-07T10:00:00Z"),
        ("start_time", 0),
        ("start_time", 1893456000),
        ("start_time", "2030-01-07"),
        ("start_time", "far-future"),
        ("lead_id", 123),
        ("notes", 5),
    ],
)
def test_create_booking_inputs_are_strict_and_range_checked(
    calcom_api, db, token_for, calcom_standin, field, value
):
    t = make_tenant(db)
    lead = make_lead(db, t.client_id, t.dataset_id)
    if value == "far-future":
        value = (datetime.now(UTC) + timedelta(days=MAX_DAYS_AHEAD + 1)).isoformat()
    body = {"lead_id": str(lead), "start_time": at(next_weekday(), 10).isoformat(), field: value}
    resp = calcom_api.post("/api/calcom/create-booking", json=body, headers=token_for(t.admin))
    _field_error(resp, field)
    assert calcom_standin.requests == []
    assert not lead_row(db, lead)["call_booked"]


def test_openapi_states_the_real_statuses_of_the_calcom_routes(calcom_api):
    doc = calcom_api.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]

    def resolve(schema: dict) -> dict:
        return schemas[schema["$ref"].rsplit("/", 1)[-1]] if "$ref" in schema else schema

    errors = {"400", "401", "403", "429", "502", "503"}
    expected = {
        "/api/calcom/check-availability": errors,
        "/api/calcom/create-booking": errors | {"404", "409"},
    }
    for path, statuses in expected.items():
        responses = doc["paths"][path]["post"]["responses"]
        assert set(responses) - {"422"} == statuses | {"200"}, path  # H5 drops FastAPI's 422
        for status in statuses:
            body = resolve(responses[status]["content"]["application/json"]["schema"])
            assert body["required"] == ["error"], (path, status)
            detail = resolve(body["properties"]["error"])
            assert set(detail["properties"]) == {"code", "message", "details"}, (path, status)
    request = doc["paths"]["/api/calcom/check-availability"]["post"]["requestBody"]
    fields = resolve(request["content"]["application/json"]["schema"])["properties"]
    assert (fields["date"]["type"], fields["date"]["format"]) == ("string", "date")
    assert fields["timezone"]["type"] == "string"
