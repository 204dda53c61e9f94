"""notify.email and notify.sms: deliver one staff notification (or a digest email).

The flows live in `dbr.notifications.service`; this module maps their outcomes onto the queue:

  sent / skipped         done (the result says which, and why)
  deferred               runtime.Defer until the person's quiet hours end (no attempt spent)
  NotifyError retryable  RetryableError (backoff; Resend's idempotency key and the Twilio
                         reconcile make the retry safe)
  NotifyError final      PermanentError (the delivery is recorded failed; the dead job shows
                         in dead_jobs and admins get an in-app alert, never another email)
"""

from __future__ import annotations

from typing import Any

from dbr.notifications.service import NotifyError, Outcome, deliver_email, deliver_sms
from dbr.providers.email import EmailClient, email_client
from dbr.providers.twilio import twilio_client
from dbr.team.credentials import twilio_for_client
from workers.jobs import Context, Job, PermanentError, RetryableError, handler
from workers.runtime import Defer


def _email(ctx: Context) -> EmailClient:
    client = ctx.clients.get("email")
    if client is None:
        client = ctx.clients["email"] = email_client(ctx.settings)
    return client


def _finish(outcome: Outcome) -> dict[str, Any]:
    if outcome.status == "deferred":
        raise Defer(outcome.until, outcome.reason or "")
    return outcome.as_result()


def _delivery_id(job: Job) -> str:
    delivery_id = job.payload.get("delivery_id")
    if not isinstance(delivery_id, str):
        raise PermanentError(f"{job.kind} without a delivery_id: {job.payload}")
    return delivery_id


@handler("notify.email")
async def notify_email(job: Job, ctx: Context) -> dict[str, Any]:
    try:
        outcome = await deliver_email(
            ctx.pool, ctx.settings, _email(ctx), _delivery_id(job), last_attempt=job.last_attempt
        )
    except NotifyError as exc:
        if exc.retryable:
            raise RetryableError(exc.message, retry_in=exc.retry_in) from exc
        raise PermanentError(exc.message) from exc
    return _finish(outcome)


@handler("notify.sms")
async def notify_sms(job: Job, ctx: Context) -> dict[str, Any]:
    platform = ctx.clients.get("twilio")
    if platform is None:
        platform = ctx.clients["twilio"] = await twilio_client(ctx.settings)
    # The client's own Twilio account when it connected one (its number belongs to it).
    client = await twilio_for_client(ctx, job.client_id, platform)
    try:
        outcome = await deliver_sms(
            ctx.pool, client, _delivery_id(job), last_attempt=job.last_attempt
        )
    except NotifyError as exc:
        if exc.retryable:
            raise RetryableError(exc.message, retry_in=exc.retry_in) from exc
        raise PermanentError(exc.message) from exc
    return _finish(outcome)
