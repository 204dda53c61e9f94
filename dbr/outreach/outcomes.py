"""How a send ends when it does not simply succeed; the sms.* job handlers map these onto the
job queue (NotYet: run again later without spending an attempt; SendLater: retry with backoff;
CannotSend: dead-letter)."""

from __future__ import annotations

from datetime import datetime


class NotYet(Exception):
    """The message may be sent at `until` (sending window, rate limit, pace): not a failure."""

    def __init__(self, until: datetime | None, reason: str = "") -> None:
        super().__init__(f"not before {until} ({reason})")
        self.until = until
        self.reason = reason


class SendLater(Exception):
    """Twilio did not take the message, or whether it did is unknown: try again (after
    `retry_in` seconds when given); an attempt left recorded is reconciled first."""

    def __init__(self, message: str, retry_in: int | None = None) -> None:
        super().__init__(message)
        self.retry_in = retry_in


class CannotSend(Exception):
    """The message can never be sent this way: an unknown decision, or an interrupted attempt
    without the facts a lookup at Twilio needs."""
