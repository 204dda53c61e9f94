"""Local stand-in for the Cal.com API v2: a real HTTP server on 127.0.0.1.

It speaks Cal.com's wire format for what this product uses:
  GET  /v2/slots                       (cal-api-version 2024-09-04)
  POST /v2/bookings                    (cal-api-version 2024-08-13)
  GET  /v2/bookings/{uid}
  POST /v2/bookings/{uid}/cancel
  POST /v2/bookings/{uid}/reschedule
  GET  /v2/event-types/{id}            (cal-api-version 2024-06-14)
and, like Cal.com, refuses a call without the endpoint's pinned `cal-api-version` (the real API
then routes to an older endpoint version that rejects today's requests). Bookings are checked
against open slots (weekdays 09:00-17:00 host time, one booking per slot), so double-booking
fails the way Cal.com fails it.

Webhooks: every booking change is delivered (in the background, like Cal.com) to the
configured URL as BOOKING_CREATED / BOOKING_CANCELLED / BOOKING_RESCHEDULED, signed with
`X-Cal-Signature-256` = hex HMAC-SHA256 of the raw body with the webhook secret (or the literal
"no-secret-provided" when no secret is set, exactly as Cal.com does).

Tests start it in-process on an ephemeral port (`CalcomStandin().start()`), inject failures with
`fail_next(...)`, act as the attendee with `cancel(...)` / `reschedule(...)` and read
`requests` / `deliveries`. `dbr up` runs it as `python -m dbr.dev.standins.calcom --port 54342`;
`/_standin/*` exposes the same controls over HTTP.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time as _time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dbr.dev.standins.http import Reply, Request, StandinServer
from dbr.providers.calcom import (
    BOOKINGS_API_VERSION,
    EVENT_TYPES_API_VERSION,
    SLOTS_API_VERSION,
    STANDIN_EVENT_TYPE_ID,
)

log = logging.getLogger("dbr.dev.standins.calcom")

NO_SECRET_SIGNATURE = "no-secret-provided"
WEBHOOK_VERSION = "2021-10-20"
_UID_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


@dataclass(frozen=True)
class EventType:
    id: int
    slug: str
    title: str
    length: int = 30
    host_time_zone: str = "Europe/London"
    day_start: int = 9  # local hour, inclusive
    day_end: int = 17  # local hour, exclusive
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday..Friday


DEFAULT_EVENT_TYPES = (EventType(STANDIN_EVENT_TYPE_ID, "discovery-call", "Discovery call"),)
HOST = {
    "id": 1,
    "name": "Stand-in Host",
    "email": "host@standin.cal.test",
    "username": "standin-host",
    "timeZone": "Europe/London",
}


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Delivery:
    trigger_event: str
    uid: str
    body: bytes
    signature: str
    status: int | None = None
    response: str = ""
    error: str | None = None


@dataclass
class _Failure:
    status: int
    times: int
    method: str | None
    path_prefix: str | None
    code: str | None
    message: str | None
    delay: float


@dataclass
class _State:
    bookings: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    failures: list[_Failure] = field(default_factory=list)
    next_id: int = 1


class CalcomApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def _iso(moment: datetime, tz: ZoneInfo | None = None) -> str:
    if tz is None:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return moment.astimezone(tz).isoformat(timespec="milliseconds")


def _parse_time(value: Any, *, end_of_day: bool = False) -> datetime:
    if not isinstance(value, str) or not value:
        raise ValueError("missing time")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        d = date.fromisoformat(value)
        return datetime.combine(d, time(23, 59, 59) if end_of_day else time.min, UTC)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def sign(body: bytes, secret: str | None) -> str:
    """Cal.com's X-Cal-Signature-256 for `body`."""
    if not secret:
        return NO_SECRET_SIGNATURE
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class CalcomStandin(StandinServer):
    """The stand-in server. Thread-safe; use as a context manager or start()/stop()."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        event_types: tuple[EventType, ...] = DEFAULT_EVENT_TYPES,
        now: Callable[[], datetime] | None = None,
        minimum_notice_minutes: int = 60,
    ) -> None:
        super().__init__(host=host, port=port)
        self.api_key = api_key
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.event_types = {e.id: e for e in event_types}
        self.now = now or (lambda: datetime.now(UTC))
        self.minimum_notice = timedelta(minutes=minimum_notice_minutes)
        self._state = _State()
        self._lock = threading.RLock()
        self._delivered = threading.Condition(self._lock)

    # ------------------------------------------------------------------ lifecycle

    thread_name = "calcom-standin"

    def respond(self, request: Request) -> Reply:
        """One HTTP request: the API (JSON), or a booking's public page (HTML)."""
        try:
            body = request.json()
        except ValueError:
            return Reply(400, _error_body(request.path, "BadRequestException", "invalid JSON body"))
        if request.method == "GET" and request.path.startswith("/booking/"):
            return self._booking_page(request.path.rsplit("/", 1)[-1])
        try:
            status, out = self.handle(
                request.method, request.path, request.query, request.headers, body
            )
        except CalcomApiError as exc:
            status, out = exc.status, _error_body(request.path, exc.code, exc.message, exc.details)
        return Reply(status, out)

    def _booking_page(self, uid: str) -> Reply:
        booking = self.bookings.get(uid)
        if booking is None:
            return Reply(
                404, _error_body(f"/booking/{uid}", "NotFoundException", "booking not found")
            )
        html = (
            f"<!doctype html><title>{booking['title']}</title><h1>{booking['title']}</h1>"
            f"<p>{booking['start']} - {booking['end']} ({booking['status']})</p>"
        )
        return Reply(200, html, content_type="text/html; charset=utf-8")

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v2"

    # ------------------------------------------------------------------ test controls

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._state.requests)

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._state.deliveries)

    @property
    def bookings(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: dict(v) for k, v in self._state.bookings.items()}

    def reset(self) -> None:
        with self._lock:
            self._state = _State()

    def fail_next(
        self,
        status: int = 500,
        *,
        times: int = 1,
        method: str | None = None,
        path_prefix: str | None = None,
        code: str | None = None,
        message: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """The next `times` matching calls fail with `status` (after `delay` seconds)."""
        with self._lock:
            self._state.failures.append(
                _Failure(status, times, method, path_prefix, code, message, delay)
            )

    def wait_for_deliveries(self, count: int, timeout: float = 10.0) -> list[Delivery]:
        """Blocks until `count` webhook deliveries have finished (whatever their outcome)."""
        deadline = _time.monotonic() + timeout
        with self._delivered:
            while sum(1 for d in self._state.deliveries if d.status or d.error) < count:
                left = deadline - _time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"only {len(self._state.deliveries)} deliveries")
                self._delivered.wait(left)
            return list(self._state.deliveries)

    # ------------------------------------------------------------------ slots

    def open_slots(
        self, event_type: EventType, start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime]]:
        host_tz = ZoneInfo(event_type.host_time_zone)
        earliest = self.now() + self.minimum_notice
        taken = {
            _parse_time(b["start"])
            for b in self._state.bookings.values()
            if b["status"] == "accepted" and b["eventTypeId"] == event_type.id
        }
        out: list[tuple[datetime, datetime]] = []
        day = start.astimezone(host_tz).date() - timedelta(days=1)
        last = end.astimezone(host_tz).date() + timedelta(days=1)
        step = timedelta(minutes=event_type.length)
        while day <= last:
            if day.weekday() in event_type.weekdays:
                slot = datetime.combine(day, time(event_type.day_start), host_tz)
                close = datetime.combine(day, time(event_type.day_end), host_tz)
                while slot + step <= close:
                    s_utc = slot.astimezone(UTC)
                    if start <= s_utc <= end and s_utc >= earliest and s_utc not in taken:
                        out.append((s_utc, s_utc + step))
                    slot += step
            day += timedelta(days=1)
        return out

    def _get_slots(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        q = {k: v[-1] for k, v in query.items()}
        try:
            event_type = self.event_types.get(int(q.get("eventTypeId", "")))
        except ValueError:
            event_type = None
        if event_type is None:
            raise CalcomApiError(404, "NotFoundException", "Event Type not found")
        try:
            start = _parse_time(q.get("start"))
            end = _parse_time(q.get("end"), end_of_day=True)
        except ValueError as exc:
            raise CalcomApiError(400, "BadRequestException", f"start and end: {exc}") from exc
        if end < start:
            raise CalcomApiError(400, "BadRequestException", "Invalid time range given")
        try:
            tz = ZoneInfo(q.get("timeZone") or "UTC")
        except Exception as exc:
            raise CalcomApiError(400, "BadRequestException", "Invalid timeZone") from exc
        ranged = (q.get("format") or "").lower() == "range"
        data: dict[str, list[dict[str, str]]] = {}
        for s, e in self.open_slots(event_type, start, end):
            local = s.astimezone(tz)
            item = {"start": _iso(local, tz)}
            if ranged:
                item["end"] = _iso(e, tz)
            data.setdefault(local.date().isoformat(), []).append(item)
        return 200, {"status": "success", "data": data}

    # ------------------------------------------------------------------ bookings

    def _new_uid(self) -> str:
        return "".join(secrets.choice(_UID_ALPHABET) for _ in range(22))

    def _make_booking(
        self,
        event_type: EventType,
        start: datetime,
        attendee: dict[str, Any],
        metadata: dict[str, Any],
        responses: dict[str, Any],
        rescheduled_from: str | None = None,
    ) -> dict[str, Any]:
        if (start, start + timedelta(minutes=event_type.length)) not in self.open_slots(
            event_type, start, start
        ):
            raise CalcomApiError(
                400,
                "BadRequestException",
                "User either already has booking at this time or is not available",
            )
        booking_id = self._state.next_id
        self._state.next_id += 1
        uid = self._new_uid()
        now = _iso(self.now())
        booking: dict[str, Any] = {
            "id": booking_id,
            "uid": uid,
            "title": f"{event_type.title} between {HOST['name']} and {attendee['name']}",
            "description": responses.get("notes") or "",
            "hosts": [HOST],
            "status": "accepted",
            "start": _iso(start),
            "end": _iso(start + timedelta(minutes=event_type.length)),
            "duration": event_type.length,
            "eventTypeId": event_type.id,
            "eventType": {"id": event_type.id, "slug": event_type.slug},
            "meetingUrl": f"{self.origin}/video/{uid}",
            "location": f"{self.origin}/video/{uid}",
            "absentHost": False,
            "createdAt": now,
            "updatedAt": now,
            "metadata": dict(metadata),
            "attendees": [
                {
                    "name": attendee["name"],
                    "email": attendee["email"],
                    "timeZone": attendee["timeZone"],
                    "phoneNumber": attendee.get("phoneNumber"),
                    "language": attendee.get("language") or "en",
                    "absent": False,
                }
            ],
            "guests": [],
            "bookingFieldsResponses": {
                "name": attendee["name"],
                "email": attendee["email"],
                **responses,
            },
        }
        if rescheduled_from:
            booking["rescheduledFromUid"] = rescheduled_from
        self._state.bookings[uid] = booking
        return booking

    def _create_booking(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            raise CalcomApiError(400, "BadRequestException", "body must be a JSON object")
        try:
            event_type = self.event_types.get(int(body.get("eventTypeId")))
        except (TypeError, ValueError):
            event_type = None
        attendee = body.get("attendee")
        problems = []
        if not isinstance(attendee, dict):
            problems.append("attendee must be an object")
        else:
            for key in ("name", "email", "timeZone"):
                if not isinstance(attendee.get(key), str) or not attendee.get(key):
                    problems.append(f"attendee.{key} must be a string")
            if isinstance(attendee.get("email"), str) and "@" not in attendee["email"]:
                problems.append("attendee.email must be an email")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict) or len(metadata) > 50:
            problems.append("metadata must be an object of at most 50 keys")
        elif any(len(k) > 40 or (isinstance(v, str) and len(v) > 500) for k, v in metadata.items()):
            problems.append("metadata keys are at most 40 characters, values at most 500")
        try:
            start = _parse_time(body.get("start"))
        except ValueError:
            problems.append("start must be an ISO 8601 date string in UTC")
            start = None
        if problems:
            raise CalcomApiError(400, "BadRequestException", "; ".join(problems))
        if event_type is None:
            raise CalcomApiError(
                404, "NotFoundException", f"Event type with id={body.get('eventTypeId')} not found"
            )
        assert start is not None and isinstance(attendee, dict)
        responses = body.get("bookingFieldsResponses") or {}
        booking = self._make_booking(event_type, start, attendee, metadata, responses)
        self._deliver("BOOKING_CREATED", booking)
        return 201, {"status": "success", "data": booking}

    def _booking(self, uid: str) -> dict[str, Any]:
        booking = self._state.bookings.get(uid)
        if booking is None:
            raise CalcomApiError(404, "NotFoundException", f"Booking with uid={uid} not found")
        return booking

    def cancel(self, uid: str, reason: str | None = None) -> dict[str, Any]:
        """Cancels a booking (as the attendee would on Cal.com); sends BOOKING_CANCELLED."""
        with self._lock:
            booking = self._booking(uid)
            if booking["status"] == "cancelled":
                raise CalcomApiError(
                    400, "BadRequestException", "This booking has already been cancelled."
                )
            booking["status"] = "cancelled"
            booking["cancellationReason"] = reason
            booking["cancelledByEmail"] = booking["attendees"][0]["email"]
            booking["updatedAt"] = _iso(self.now())
            self._deliver("BOOKING_CANCELLED", booking)
            return dict(booking)

    def reschedule(self, uid: str, start: datetime, reason: str | None = None) -> dict[str, Any]:
        """Moves a booking to `start` (as the attendee would); sends BOOKING_RESCHEDULED with
        the new booking's uid and the old one as rescheduleUid."""
        with self._lock:
            old = self._booking(uid)
            if old["status"] != "accepted":
                raise CalcomApiError(
                    400, "BadRequestException", "Only an accepted booking can be rescheduled"
                )
            event_type = self.event_types[old["eventTypeId"]]
            old["status"] = "cancelled"  # frees the old slot, as Cal.com does
            try:
                new = self._make_booking(
                    event_type,
                    start.astimezone(UTC),
                    old["attendees"][0],
                    old["metadata"],
                    {
                        k: v
                        for k, v in old["bookingFieldsResponses"].items()
                        if k not in ("name", "email")
                    },
                    rescheduled_from=uid,
                )
            except CalcomApiError:
                old["status"] = "accepted"
                raise
            old["rescheduledToUid"] = new["uid"]
            old["reschedulingReason"] = reason
            self._deliver("BOOKING_RESCHEDULED", new, previous=old)
            return dict(new)

    # ------------------------------------------------------------------ webhooks

    def webhook_event(
        self, trigger_event: str, booking: dict[str, Any], previous: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The webhook body Cal.com sends for `booking` (payload shape of Cal.com's webhooks)."""
        attendee = booking["attendees"][0]
        event_type = self.event_types.get(booking["eventTypeId"])
        notes = booking["bookingFieldsResponses"].get("notes")
        payload: dict[str, Any] = {
            "type": event_type.slug if event_type else "",
            "title": booking["title"],
            "description": notes or "",
            "additionalNotes": notes or "",
            "customInputs": {},
            "startTime": booking["start"],
            "endTime": booking["end"],
            "organizer": {**HOST, "language": {"locale": "en"}, "timeFormat": "h:mma"},
            "responses": {
                "name": {"label": "your_name", "value": attendee["name"]},
                "email": {"label": "email_address", "value": attendee["email"]},
                **({"notes": {"label": "additional_notes", "value": notes}} if notes else {}),
            },
            "userFieldsResponses": {},
            "attendees": [
                {
                    "name": attendee["name"],
                    "email": attendee["email"],
                    "timeZone": attendee["timeZone"],
                    "phoneNumber": attendee.get("phoneNumber"),
                    "language": {"locale": attendee.get("language") or "en"},
                }
            ],
            "location": booking["location"],
            "destinationCalendar": None,
            "hideCalendarNotes": False,
            "requiresConfirmation": False,
            "eventTypeId": booking["eventTypeId"],
            "seatsShowAttendees": True,
            "seatsPerTimeSlot": None,
            "uid": booking["uid"],
            "iCalUID": f"{booking['uid']}@Cal.com",
            "bookingId": booking["id"],
            "metadata": {**booking["metadata"], "videoCallUrl": booking["meetingUrl"]},
            "status": "CANCELLED" if trigger_event == "BOOKING_CANCELLED" else "ACCEPTED",
        }
        if trigger_event == "BOOKING_CANCELLED":
            payload["cancellationReason"] = booking.get("cancellationReason")
            payload["cancelledBy"] = booking.get("cancelledByEmail")
        if previous is not None:
            payload.update(
                {
                    "rescheduleId": previous["id"],
                    "rescheduleUid": previous["uid"],
                    "rescheduleStartTime": previous["start"],
                    "rescheduleEndTime": previous["end"],
                    "rescheduledBy": attendee["email"],
                }
            )
        return {"triggerEvent": trigger_event, "createdAt": _iso(self.now()), "payload": payload}

    def _deliver(
        self, trigger_event: str, booking: dict[str, Any], previous: dict[str, Any] | None = None
    ) -> None:
        if not self.webhook_url:
            return
        body = json.dumps(self.webhook_event(trigger_event, booking, previous)).encode()
        delivery = Delivery(trigger_event, booking["uid"], body, sign(body, self.webhook_secret))
        self._state.deliveries.append(delivery)
        threading.Thread(target=self._post, args=(delivery,), daemon=True).start()

    def _post(self, delivery: Delivery) -> None:
        req = urllib.request.Request(
            self.webhook_url or "",
            data=delivery.body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-Cal-Signature-256": delivery.signature,
                "X-Cal-Webhook-Version": WEBHOOK_VERSION,
                "User-Agent": "cal.com-standin",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                status, text = resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode(errors="replace")
        except OSError as exc:
            status, text = None, ""
            delivery.error = str(exc)
        with self._delivered:
            delivery.status, delivery.response = status, text
            self._delivered.notify_all()

    # ------------------------------------------------------------------ dispatch

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: Any,
    ) -> tuple[int, Any]:
        with self._lock:
            self._state.requests.append(RecordedRequest(method, path, query, headers, body))
            if path.startswith("/_standin/"):
                return self._control(method, path, body)
            failure = self._take_failure(method, path)
        if failure is not None:
            if failure.delay:
                _time.sleep(failure.delay)
            raise CalcomApiError(
                failure.status,
                failure.code or _default_code(failure.status),
                failure.message or "Injected failure from the Cal.com stand-in",
            )
        with self._lock:
            return self._route(method, path, query, headers, body)

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        for f in self._state.failures:
            if (f.method is None or f.method == method) and (
                f.path_prefix is None or path.startswith(f.path_prefix)
            ):
                f.times -= 1
                if f.times <= 0:
                    self._state.failures.remove(f)
                return f
        return None

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: Any,
    ) -> tuple[int, Any]:
        version = headers.get("cal-api-version")
        if self.api_key and headers.get("authorization") != f"Bearer {self.api_key}":
            raise CalcomApiError(401, "UnauthorizedException", "Invalid Access Token.")
        m = re.fullmatch(r"/v2/event-types/([0-9]+)", path)
        if m and method == "GET":
            if version != EVENT_TYPES_API_VERSION:
                raise CalcomApiError(404, "NotFoundException", f"Cannot GET {path}")
            found = self.event_types.get(int(m.group(1)))
            if found is None:
                raise CalcomApiError(404, "NotFoundException", f"Event type {m.group(1)} not found")
            return 200, {
                "status": "success",
                "data": {
                    "id": found.id,
                    "title": found.title,
                    "slug": found.slug,
                    "lengthInMinutes": found.length,
                },
            }
        if path == "/v2/slots" and method == "GET":
            if version != SLOTS_API_VERSION:
                # Without 2024-09-04 Cal.com routes to the 2024-04-15 slots controller, which
                # only has /v2/slots/available: today's call is not found there.
                raise CalcomApiError(404, "NotFoundException", "Cannot GET /v2/slots")
            return self._get_slots(query)
        if path.startswith("/v2/bookings"):
            if version != BOOKINGS_API_VERSION:
                # The older bookings endpoint expects {start, end, responses, timeZone, ...}.
                raise CalcomApiError(
                    400,
                    "BadRequestException",
                    "responses must be an object, timeZone must be a string, "
                    "end must be a valid ISO 8601 date string",
                )
            if path == "/v2/bookings" and method == "POST":
                return self._create_booking(body)
            m = re.fullmatch(r"/v2/bookings/([^/]+)(?:/(cancel|reschedule))?", path)
            if m and method == "GET" and not m.group(2):
                return 200, {"status": "success", "data": dict(self._booking(m.group(1)))}
            if m and method == "POST" and m.group(2) == "cancel":
                reason = (body or {}).get("cancellationReason") if isinstance(body, dict) else None
                return 200, {"status": "success", "data": self.cancel(m.group(1), reason)}
            if m and method == "POST" and m.group(2) == "reschedule":
                try:
                    start = _parse_time((body or {}).get("start"))
                except (AttributeError, ValueError) as exc:
                    raise CalcomApiError(
                        400, "BadRequestException", "start must be ISO 8601"
                    ) from exc
                reason = body.get("reschedulingReason")
                return 201, {
                    "status": "success",
                    "data": self.reschedule(m.group(1), start, reason),
                }
        raise CalcomApiError(404, "NotFoundException", f"Cannot {method} {path}")

    def _control(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        body = body if isinstance(body, dict) else {}
        if path == "/_standin/bookings" and method == "GET":
            return 200, {"bookings": list(self._state.bookings.values())}
        if path == "/_standin/fail" and method == "POST":
            self._state.failures.append(
                _Failure(
                    int(body.get("status", 500)),
                    int(body.get("times", 1)),
                    body.get("method"),
                    body.get("path_prefix"),
                    body.get("code"),
                    body.get("message"),
                    float(body.get("delay", 0)),
                )
            )
            return 200, {"ok": True}
        m = re.fullmatch(r"/_standin/bookings/([^/]+)/(cancel|reschedule)", path)
        if m and method == "POST":
            if m.group(2) == "cancel":
                return 200, {"booking": self.cancel(m.group(1), body.get("reason"))}
            return 200, {"booking": self.reschedule(m.group(1), _parse_time(body.get("start")))}
        if path == "/_standin/reset" and method == "POST":
            self._state = _State()
            return 200, {"ok": True}
        raise CalcomApiError(404, "NotFoundException", f"Cannot {method} {path}")


def _default_code(status: int) -> str:
    return {
        400: "BadRequestException",
        401: "UnauthorizedException",
        403: "ForbiddenException",
        404: "NotFoundException",
        429: "ThrottlerException",
        502: "BadGatewayException",
        503: "ServiceUnavailableException",
    }.get(status, "InternalServerErrorException")


def _error_body(path: str, code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"status": "error", "timestamp": _iso(datetime.now(UTC)), "path": path, "error": error}


def main(argv: list[str] | None = None) -> None:
    from dbr.settings import get_settings

    settings = get_settings()
    parser = argparse.ArgumentParser(description="Local stand-in for the Cal.com API v2.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--webhook-url",
        default=f"{settings.public_webhook_base_url.rstrip('/')}/calcom-webhook",
        help="where booking webhooks are delivered ('' to turn delivery off)",
    )
    parser.add_argument(
        "--webhook-secret",
        default=settings.calcom_webhook_secret,
        help="signs webhooks (X-Cal-Signature-256); default CALCOM_WEBHOOK_SECRET",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    standin = CalcomStandin(
        host=args.host,
        port=args.port,
        webhook_url=args.webhook_url or None,
        webhook_secret=args.webhook_secret,
    )
    log.info(
        "Cal.com stand-in on %s:%s (webhooks to %s)", args.host, args.port, args.webhook_url or "-"
    )
    standin.serve_forever()


if __name__ == "__main__":
    main()
