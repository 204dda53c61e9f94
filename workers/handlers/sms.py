"""sms.send and sms.reconcile: the outreach sender (`dbr.outreach`) on the job queue.

The decisions and Twilio calls live in `dbr.outreach.sender` (send one message, or the
sms.send jobs of one claim sharing commits, which the runtime prefers) and
`dbr.outreach.reconcile` (an interrupted attempt looked up at Twilio); this module maps their
outcomes onto the queue:

  NotYet      Defer: run again at `until` without spending an attempt
  SendLater   RetryableError (backoff, or `retry_in` seconds)
  CannotSend  PermanentError: dead-lettered at once
"""

from __future__ import annotations

from typing import Any

from twilio.rest import Client

from dbr.outreach.outcomes import CannotSend, NotYet, SendLater
from dbr.outreach.reconcile import reconcile_stranded
from dbr.outreach.sender import Outbox, send, send_batch
from dbr.providers.twilio import twilio_client
from dbr.team.credentials import twilio_for_client
from workers.jobs import Context, Job, PermanentError, RetryableError, handler
from workers.runtime import Defer, batch_handler


async def _client(ctx: Context, client_id: Any = None) -> Client:
    """The Twilio client of the job's client: its own account when it connected one, else the
    platform's (dbr.team.credentials)."""
    client = ctx.clients.get("twilio")
    if client is None:  # no await before the assignment: loops cannot race here
        client = ctx.clients["twilio"] = await twilio_client(ctx.settings)
    return await twilio_for_client(ctx, client_id, client)


async def _outbox(ctx: Context, client_id: Any = None) -> Outbox:
    return Outbox(ctx.pool, ctx.settings, await _client(ctx, client_id), ctx.worker_id)


def _job_outcome(outcome: Any) -> Any:
    """A send's outcome as the job queue knows it: results pass, our signals become its own."""
    if isinstance(outcome, NotYet):
        return Defer(outcome.until, outcome.reason)
    if isinstance(outcome, SendLater):
        return RetryableError(str(outcome), retry_in=outcome.retry_in)
    if isinstance(outcome, CannotSend):
        return PermanentError(str(outcome))
    return outcome


def _message_id(job: Job) -> str:
    message_id = job.payload.get("message_id")
    if not message_id:
        raise PermanentError(f"{job.kind} job without message_id")
    return str(message_id)


@handler("sms.send")
async def send_sms(job: Job, ctx: Context) -> dict[str, Any] | None:
    message_id = _message_id(job)
    try:
        return await send(await _outbox(ctx, job.client_id), message_id)
    except (NotYet, SendLater, CannotSend) as exc:
        raise _job_outcome(exc) from None


@batch_handler("sms.send")
async def send_sms_batch(jobs: list[Job], ctx: Context) -> list[Any]:
    """The claimed sms.send jobs of one batch, sharing commits (dbr.outreach.sender.send_batch);
    one outcome per job, in order."""
    if not all(job.payload.get("message_id") for job in jobs):
        return [await _single(job, ctx) for job in jobs]
    # One shared batch per Twilio account: clients on the platform's account share one, a
    # client with its own account gets its own (in client order, as send_batch locks).
    groups: dict[int, tuple[Outbox, list[int]]] = {}
    for i, job in sorted(enumerate(jobs), key=lambda p: str(p[1].client_id or "")):
        box = await _outbox(ctx, job.client_id)
        groups.setdefault(id(box.twilio), (box, []))[1].append(i)
    outcomes: list[Any] = [None] * len(jobs)
    for box, members in groups.values():
        messages = [(str(jobs[i].payload["message_id"]), jobs[i].client_id) for i in members]
        for i, outcome in zip(members, await send_batch(box, messages), strict=True):
            outcomes[i] = _job_outcome(outcome)
    return outcomes


async def _single(job: Job, ctx: Context) -> Any:
    try:
        return await send_sms(job, ctx)
    except Exception as exc:
        return exc


@handler("sms.reconcile")
async def reconcile_sms(job: Job, ctx: Context) -> dict[str, Any] | None:
    """A stranded send (sending, no SID, no live sms.send run), looked up at Twilio before
    anything else happens."""
    message_id = _message_id(job)
    try:
        return await reconcile_stranded(
            ctx.pool, await _client(ctx, job.client_id), message_id, job.payload.get("attempt")
        )
    except CannotSend as exc:
        raise PermanentError(str(exc)) from None
