"""Cal.com API v2 client (httpx): open slots and bookings (create, get, cancel, reschedule).

Every call pins the `cal-api-version` header its endpoint requires: without it Cal.com
silently serves an older endpoint version with a different request and response shape.
Slots use 2024-09-04, bookings 2024-08-13 (Cal.com's API reference for each endpoint).

Errors are raised as `CalcomError` (HTTP status, Cal.com's error code, message); nothing
here retries a booking, because a retried POST could book the same person twice.

Usage (both the API and the AI worker):

    client = calcom_client(settings)           # stand-in when CALCOM_API_KEY is unset
    slots = await client.slots_for_day(event_type_id=42, day=date(2026, 12, 1),
                                       time_zone="Europe/London")
    booking = await client.create_booking(event_type_id=42, start=slots[0].start,
                                          attendee=Attendee(name="Jo", email="jo@x.test",
                                                            time_zone="Europe/London"),
                                          metadata={"lead_id": str(lead_id)})
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from dbr.settings import Settings

log = logging.getLogger("dbr.calcom")

SLOTS_API_VERSION = "2024-09-04"
BOOKINGS_API_VERSION = "2024-08-13"
EVENT_TYPES_API_VERSION = "2024-06-14"
CLOUD_BASE_URL = "https://api.cal.com/v2"
CLOUD_BOOKING_PAGE = "https://app.cal.com/booking"
# The stand-in's built-in event type: used when the client has none configured and no key is set.
STANDIN_EVENT_TYPE_ID = 1001


class CalcomError(Exception):
    """Cal.com refused or failed a call.

    `status` is Cal.com's HTTP status (None when Cal.com was not reached), `code` is Cal.com's
    error code (e.g. "BadRequestException") or one of ours: "network_error", "timeout",
    "invalid_response", "not_configured".
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "calcom_error",
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details

    @property
    def retryable(self) -> bool:
        """True for failures worth retrying later (Cal.com down, slow, rate limiting)."""
        if self.status is None:
            return self.code in ("network_error", "timeout")
        return self.status >= 500 or self.status == 429

    @property
    def slot_unavailable(self) -> bool:
        """True when Cal.com refused the booking because the time is taken or outside hours."""
        text = self.message.lower()
        return self.status in (400, 409) and (
            "not available" in text or "already has booking" in text or "no available" in text
        )

    def __repr__(self) -> str:
        return f"CalcomError(status={self.status!r}, code={self.code!r}, message={self.message!r})"


@dataclass(frozen=True)
class Slot:
    """An open time for an event type (aware datetimes, in the requested time zone)."""

    start: datetime
    end: datetime

    @property
    def duration_minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)


@dataclass(frozen=True)
class Attendee:
    name: str
    email: str
    time_zone: str = "Europe/London"
    phone_number: str | None = None
    language: str = "en"

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "email": self.email,
            "timeZone": self.time_zone,
            "language": self.language,
        }
        if self.phone_number:
            out["phoneNumber"] = self.phone_number
        return out


@dataclass(frozen=True)
class CalcomBooking:
    """A booking as Cal.com returns it (BookingOutput_2024_08_13, the fields we use)."""

    id: int
    uid: str
    status: str  # accepted | cancelled | rejected | pending
    start: datetime
    end: datetime
    duration: int
    title: str = ""
    event_type_id: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    attendees: list[dict[str, Any]] = field(default_factory=list)
    location: str | None = None
    rescheduled_from_uid: str | None = None
    rescheduled_to_uid: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> CalcomBooking:
        try:
            start = _parse_time(data["start"])
            end = _parse_time(data["end"])
            event_type = data.get("eventType") or {}
            return cls(
                id=int(data["id"]),
                uid=str(data["uid"]),
                status=str(data.get("status", "accepted")),
                start=start,
                end=end,
                duration=int(data.get("duration") or (end - start).total_seconds() // 60),
                title=str(data.get("title") or ""),
                event_type_id=data.get("eventTypeId") or event_type.get("id"),
                metadata=dict(data.get("metadata") or {}),
                attendees=list(data.get("attendees") or []),
                location=data.get("location") or data.get("meetingUrl"),
                rescheduled_from_uid=data.get("rescheduledFromUid"),
                rescheduled_to_uid=data.get("rescheduledToUid"),
                raw=dict(data),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CalcomError(
                f"Cal.com returned a booking we cannot read: {exc}", code="invalid_response"
            ) from exc


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _utc_iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("a Cal.com time must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; ValueError when it is not one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {name!r}") from exc


class CalcomClient:
    """Async client for Cal.com API v2. Cheap to build; one HTTP client per call, so an
    instance can be shared across event loops (API threads, worker tasks)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 10.0,
        default_event_type_id: int | None = None,
        booking_page_base: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.default_event_type_id = default_event_type_id
        self.transport = transport
        self._booking_page_base = booking_page_base

    @property
    def is_standin(self) -> bool:
        return not self.api_key

    def booking_url(self, uid: str) -> str:
        """The attendee-facing page of a booking (where it can be viewed, moved or cancelled)."""
        if self._booking_page_base:
            base = self._booking_page_base.rstrip("/")
        elif self.base_url == CLOUD_BASE_URL:
            base = CLOUD_BOOKING_PAGE
        else:
            parts = urlsplit(self.base_url)
            base = f"{parts.scheme}://{parts.netloc}/booking"
        return f"{base}/{uid}"

    # ------------------------------------------------------------------ transport

    async def _request(
        self,
        method: str,
        path: str,
        *,
        version: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        headers = {"cal-api-version": version, "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            async with httpx.AsyncClient(
                base_url=self.base_url, timeout=self.timeout, transport=self.transport
            ) as http:
                resp = await http.request(method, path, params=params, json=json, headers=headers)
        except httpx.TimeoutException as exc:
            raise CalcomError(f"Cal.com did not answer in time ({exc})", code="timeout") from exc
        except httpx.HTTPError as exc:
            raise CalcomError(
                f"Cal.com could not be reached ({exc})", code="network_error"
            ) from exc
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code >= 400 or not isinstance(body, dict) or body.get("status") == "error":
            raise _error_from(resp.status_code, body, resp.text)
        if "data" not in body:
            raise CalcomError("Cal.com answered without data", code="invalid_response")
        return body["data"]

    # ------------------------------------------------------------------ event types

    async def get_event_type(self, event_type_id: int) -> dict[str, Any]:
        """GET /v2/event-types/{id}: the event type (id, title, slug, lengthInMinutes, ...)."""
        data = await self._request(
            "GET", f"/event-types/{int(event_type_id)}", version=EVENT_TYPES_API_VERSION
        )
        if not isinstance(data, dict):
            raise CalcomError(
                "Cal.com answered an event type that is not an object", code="invalid_response"
            )
        return data

    # ------------------------------------------------------------------ slots

    async def get_slots(
        self,
        *,
        event_type_id: int,
        start: datetime,
        end: datetime,
        time_zone: str = "Europe/London",
        duration: int | None = None,
    ) -> list[Slot]:
        """Open slots between two aware datetimes, returned in `time_zone`, in time order."""
        tz = zone(time_zone)
        params: dict[str, Any] = {
            "eventTypeId": event_type_id,
            "start": _utc_iso(start),
            "end": _utc_iso(end),
            "timeZone": time_zone,
            "format": "range",
        }
        if duration:
            params["duration"] = duration
        data = await self._request("GET", "/slots", version=SLOTS_API_VERSION, params=params)
        if not isinstance(data, dict):
            raise CalcomError("Cal.com slots answer is not a map of days", code="invalid_response")
        slots: list[Slot] = []
        for day_slots in data.values():
            for item in day_slots or []:
                try:
                    s = _parse_time(item["start"]).astimezone(tz)
                    e = (
                        _parse_time(item["end"]).astimezone(tz)
                        if item.get("end")
                        else s + timedelta(minutes=duration or 30)
                    )
                except (KeyError, TypeError, ValueError) as exc:
                    raise CalcomError(
                        f"Cal.com returned a slot we cannot read: {item!r}", code="invalid_response"
                    ) from exc
                slots.append(Slot(start=s, end=e))
        slots.sort(key=lambda s: s.start)
        return slots

    async def slots_for_day(
        self, *, event_type_id: int, day: date, time_zone: str = "Europe/London"
    ) -> list[Slot]:
        """Open slots starting on the local calendar day `day` in `time_zone`."""
        tz = zone(time_zone)
        start = datetime.combine(day, time.min, tz)
        end = datetime.combine(day + timedelta(days=1), time.min, tz) - timedelta(seconds=1)
        slots = await self.get_slots(
            event_type_id=event_type_id, start=start, end=end, time_zone=time_zone
        )
        return [s for s in slots if s.start.date() == day]

    # ------------------------------------------------------------------ bookings

    async def create_booking(
        self,
        *,
        event_type_id: int,
        start: datetime,
        attendee: Attendee,
        metadata: Mapping[str, str] | None = None,
        notes: str | None = None,
        length_in_minutes: int | None = None,
    ) -> CalcomBooking:
        """Books `start` (aware) for `attendee`. Not retried: a repeat could double-book."""
        body: dict[str, Any] = {
            "start": _utc_iso(start),
            "eventTypeId": event_type_id,
            "attendee": attendee.to_api(),
            "metadata": dict(metadata or {}),
        }
        if notes:
            body["bookingFieldsResponses"] = {"notes": notes}
        if length_in_minutes:
            body["lengthInMinutes"] = length_in_minutes
        data = await self._request("POST", "/bookings", version=BOOKINGS_API_VERSION, json=body)
        if isinstance(data, list):  # recurring event types answer with a list
            data = data[0] if data else {}
        return CalcomBooking.from_api(data)

    async def get_booking(self, uid: str) -> CalcomBooking:
        data = await self._request("GET", f"/bookings/{uid}", version=BOOKINGS_API_VERSION)
        return CalcomBooking.from_api(data)

    async def cancel_booking(self, uid: str, *, reason: str | None = None) -> CalcomBooking:
        body = {"cancellationReason": reason} if reason else {}
        data = await self._request(
            "POST", f"/bookings/{uid}/cancel", version=BOOKINGS_API_VERSION, json=body
        )
        return CalcomBooking.from_api(data)

    async def reschedule_booking(
        self, uid: str, *, start: datetime, reason: str | None = None
    ) -> CalcomBooking:
        """Moves a booking; Cal.com answers with the NEW booking (new uid, rescheduledFromUid)."""
        body: dict[str, Any] = {"start": _utc_iso(start)}
        if reason:
            body["reschedulingReason"] = reason
        data = await self._request(
            "POST", f"/bookings/{uid}/reschedule", version=BOOKINGS_API_VERSION, json=body
        )
        return CalcomBooking.from_api(data)


def _error_from(status: int, body: Any, text: str) -> CalcomError:
    # Cal.com v2 errors: {"status":"error","timestamp":..,"path":..,
    #                     "error":{"code":"BadRequestException","message":..,"details":..}}
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        message = str(err.get("message") or "Cal.com refused the request")
        return CalcomError(
            message,
            status=status,
            code=str(err.get("code") or "calcom_error"),
            details=err.get("details"),
        )
    if status < 400:
        return CalcomError("Cal.com answered in an unexpected shape", code="invalid_response")
    return CalcomError(
        f"Cal.com answered HTTP {status}: {text[:200]}", status=status, code="calcom_error"
    )


def standin_base_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/v2"


def calcom_client(settings: Settings, **kw: Any) -> CalcomClient:
    """The Cal.com client for these settings: the real API with CALCOM_API_KEY, otherwise the
    local stand-in (its base URL, unless CALCOM_BASE_URL points somewhere else)."""
    if settings.calcom_api_key:
        return CalcomClient(settings.calcom_base_url, settings.calcom_api_key, **kw)
    base = settings.calcom_base_url
    if base.rstrip("/") == CLOUD_BASE_URL:
        base = standin_base_url(settings.calcom_standin_port)
    kw.setdefault("default_event_type_id", STANDIN_EVENT_TYPE_ID)
    return CalcomClient(base, None, **kw)
