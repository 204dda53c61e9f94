"""Delivering one notification email or SMS (or a digest email), exactly once.

Both flows ask the database first (private.notify_delivery_begin: it re-reads the member, the
address, quiet hours and opt-outs at this very moment and records the attempt) and record the
provider's answer after (private.notify_delivery_result):

  email  Resend with Idempotency-Key = the delivery: a retry after a timeout or a crash between
         the send and the record gets Resend's first answer, never a second email.
  sms    Twilio has no idempotency key, so an attempt whose result was lost is looked up at
         Twilio (same To, From and body since the attempt) before anything is sent again.

A staff SMS goes to the member's own phone (read from the membership at send time, never from
a payload) and is not a message to a lead: it is never written to public.messages and never
counts against the client's lead-sending budget.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from psycopg_pool import AsyncConnectionPool
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from dbr.db import call
from dbr.errors import DbrError
from dbr.notifications.render import render_email
from dbr.providers.email import EmailClient, EmailError
from dbr.settings import Settings

log = logging.getLogger("dbr.notifications")

# How far before the recorded attempt to look at Twilio (clock skew between us and Twilio).
RECONCILE_SKEW = timedelta(minutes=5)
# Twilio refused before accepting anything: safe to release the attempt and retry.
NOT_ACCEPTED = {401, 403, 429}


class NotifyError(DbrError):
    """A delivery that did not go out this time. `retryable`: try the job again later."""

    status = 502

    def __init__(self, message: str, *, retryable: bool, retry_in: int | None = None) -> None:
        super().__init__(message, code="NOTIFY_RETRY" if retryable else "NOTIFY_FAILED")
        self.retryable = retryable
        self.retry_in = retry_in


@dataclass(frozen=True)
class Outcome:
    """What a delivery came to: sent (with the provider's id), skipped (and why), or deferred
    until a time (quiet hours)."""

    status: str
    provider_id: str | None = None
    reason: str | None = None
    until: datetime | None = None

    def as_result(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in {
                "status": self.status,
                "id": self.provider_id,
                "reason": self.reason,
            }.items()
            if v is not None
        }


async def _begin(pool: AsyncConnectionPool, delivery_id: str) -> dict[str, Any]:
    async with pool.connection() as conn:
        decision = await call(conn, "private.notify_delivery_begin", p_delivery_id=delivery_id)
    return dict(decision)


async def _result(
    pool: AsyncConnectionPool,
    delivery_id: str,
    status: str,
    provider_id: str | None = None,
    error: str | None = None,
) -> None:
    async with pool.connection() as conn:
        await call(
            conn,
            "private.notify_delivery_result",
            p_delivery_id=delivery_id,
            p_status=status,
            p_provider_id=provider_id,
            p_error=error,
        )


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _not_sending(d: dict[str, Any]) -> Outcome | None:
    if d["action"] == "skip":
        return Outcome("skipped", reason=d.get("reason"))
    if d["action"] == "defer":
        return Outcome("deferred", reason=d.get("reason"), until=_when(d.get("until")))
    return None


async def deliver_email(
    pool: AsyncConnectionPool,
    settings: Settings,
    client: EmailClient,
    delivery_id: str,
    *,
    last_attempt: bool = False,
) -> Outcome:
    d = await _begin(pool, delivery_id)
    done = _not_sending(d)
    if done is not None:
        return done
    subject, text, html = render_email(d, settings.app_base_url)
    try:
        email_id = await client.send(
            to=d["to"],
            subject=subject,
            text=text,
            html=html,
            idempotency_key=d["idempotency_key"],
            tags={"kind": "digest" if d.get("kind") == "digest" else "notification"},
        )
    except EmailError as exc:
        if exc.retryable and not last_attempt:
            await _result(pool, delivery_id, "pending", error=exc.message)
            raise NotifyError(exc.message, retryable=True) from exc
        await _result(pool, delivery_id, "failed", error=exc.message)
        raise NotifyError(exc.message, retryable=False) from exc
    await _result(pool, delivery_id, "sent", email_id)
    log.info("notification email %s sent as %s", delivery_id, email_id)
    return Outcome("sent", provider_id=email_id)


async def _find_at_twilio(client: Client, d: dict[str, Any]) -> Any | None:
    attempted = _when(d.get("attempted_at"))
    if not d.get("to") or not d.get("body") or attempted is None:
        return None
    since = attempted - RECONCILE_SKEW
    filters: dict[str, Any] = {"to": d["to"]}
    if d.get("from") and not d.get("messaging_service_sid"):
        filters["from_"] = d["from"]
    stream = await client.messages.stream_async(**filters, page_size=50)
    async for msg in stream:
        if msg.date_created and msg.date_created < since:
            break
        if msg.body == d["body"] and str(msg.direction or "").startswith("outbound"):
            return msg
    return None


async def deliver_sms(
    pool: AsyncConnectionPool,
    client: Client,
    delivery_id: str,
    *,
    last_attempt: bool = False,
) -> Outcome:
    d = await _begin(pool, delivery_id)
    if d["action"] == "reconcile":
        found = await _find_at_twilio(client, d)
        if found is not None:
            await _result(pool, delivery_id, "sent", found.sid)
            log.warning("notification SMS %s: interrupted attempt found at Twilio", delivery_id)
            return Outcome("sent", provider_id=found.sid)
        await _result(pool, delivery_id, "pending", error="interrupted attempt not at Twilio")
        d = await _begin(pool, delivery_id)
    done = _not_sending(d)
    if done is not None:
        return done
    if d["action"] != "send":
        raise NotifyError(f"unexpected decision {d!r}", retryable=False)
    if not d.get("from") and not d.get("messaging_service_sid"):
        await _result(pool, delivery_id, "failed", error="the client has no Twilio number")
        raise NotifyError("the client has no Twilio number to send from", retryable=False)
    try:
        msg = await client.messages.create_async(
            to=d["to"],
            from_=None if d.get("messaging_service_sid") else d.get("from"),
            messaging_service_sid=d.get("messaging_service_sid") or None,
            body=d["body"],
        )
    except TwilioRestException as exc:
        text = f"Twilio {exc.status} {exc.code}: {exc.msg}"
        if exc.status in NOT_ACCEPTED:
            await _result(pool, delivery_id, "pending", error=text)
            raise NotifyError(text, retryable=not last_attempt) from exc
        if exc.status >= 500:
            # Twilio may have taken it: the attempt stays recorded, the retry reconciles.
            raise NotifyError(text, retryable=True) from exc
        await _result(pool, delivery_id, "failed", error=text)
        raise NotifyError(text, retryable=False) from exc
    except (TwilioException, aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise NotifyError(f"Twilio unreachable: {exc}", retryable=True) from exc
    await _result(pool, delivery_id, "sent", msg.sid)
    log.info("notification SMS %s sent as %s", delivery_id, msg.sid)
    return Outcome("sent", provider_id=msg.sid)


async def queue_digests(pool: AsyncConnectionPool) -> int:
    """What pg_cron runs every 15 minutes (for tools and tests without pg_cron)."""
    async with pool.connection() as conn:
        return int(await call(conn, "private.queue_notification_digests") or 0)
