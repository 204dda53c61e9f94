"""Refusals of a booking request (not Cal.com failures, which are `CalcomError`): each a
`BookingError` and, where one fits, one of the shared refusals of `dbr.errors`."""

from __future__ import annotations

import uuid

from dbr.errors import Conflict, DbrError, Forbidden, NotFound


class BookingError(DbrError):
    """A booking request that cannot be served (not a Cal.com failure)."""

    status = 400


class LeadNotFound(NotFound, BookingError):
    """The lead does not exist or the acting user cannot see it."""


class BookingForbidden(Forbidden, BookingError):
    """The acting user may see the lead but not change it (read_only)."""


class InvalidBookingTime(BookingError):
    """The start time is naive or in the past."""

    status = 400


class LeadOptedOut(Conflict, BookingError):
    """The lead texted STOP or its number is on the suppression list: no call is booked."""

    def __init__(self, lead_id: uuid.UUID) -> None:
        super().__init__(
            "This lead has opted out; no call can be booked for them.",
            details={"lead_id": str(lead_id), "reason": "opted_out"},
        )
