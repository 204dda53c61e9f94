"""sms.send: hand one stored outbound message to Twilio, exactly once.

The database decides (private.prepare_send re-checks opt-out, lead and campaign state, the
sending window, both rate limits and the number's pace at this very moment); this handler
only acts on the decision:

  send       the message is now 'sending' with the attempt time recorded: call Twilio
             (unless the number cannot receive SMS, e.g. a landline: failed as 21614),
             then private.record_send_result with the SID (or the error code, which the SQL
             classifies: 21610 opts the number out, 21211/21614... make it undeliverable)
  defer      reschedule the job to `until` without spending an attempt (runtime.Defer)
  skip       nothing to send (opted out, archived, paused for good, superseded...): done
  reconcile  an earlier attempt was recorded but its result never was (the worker died
             between Twilio and the database): look the message up at Twilio (same To and
             From, created since the attempt, same body). Found: record it, done. Not
             found: release that attempt (message back to pending) and decide again. This
             is why a lead never gets the same message twice, whatever crashes where.

sms.reconcile runs the same `reconcile` for a stranded send, one whose sms.send job will not
(dead-lettered, gone, or past its lease): enqueued when such a job dies and every minute by
pg_cron (private.enqueue_stranded_reconciles).

Twilio errors: 429 and auth/config errors mean Twilio did not take the message (the
attempt is cleared, retried with backoff); 5xx and connection errors are ambiguous (the
attempt stays recorded, so the retry reconciles first); other 4xx are final for this
message and go to record_send_result with their code.

Two entry points with the same decisions and outcomes: `send_sms` (one job) and
`send_sms_batch` (the sms.send jobs of one claim, which the runtime prefers): every attempt of
the batch is recorded in ONE durable commit before any Twilio call, the calls run
concurrently, and the results are stored in one statement. On this kind of machine the WAL
flush of the attempt record is the bottleneck of sending; sharing it is what batching buys.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import psycopg
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from dbr.phones import sms_refusal_for
from dbr.providers.twilio import DEFAULT_VALIDITY_PERIOD, status_callback_url, twilio_client
from workers.jobs import Context, Job, PermanentError, RetryableError, handler
from workers.runtime import Defer, batch_handler

log = logging.getLogger("workers.sms")

# Twilio refused before accepting anything: safe to clear the attempt and retry later.
NOT_ACCEPTED_STATUSES = {401, 403, 429}
# Twilio's "'To' number is not a valid mobile number": recorded for a number that cannot
# receive SMS (a landline...), which the importer refuses too, so the SQL side classifies it
# as Twilio's own refusal would be (lead UNDELIVERABLE, pending messages canceled).
NOT_MOBILE_CODE = 21614
# How far before the recorded attempt to look at Twilio (clock skew between us and Twilio).
RECONCILE_SKEW = timedelta(minutes=5)


async def _client(ctx: Context) -> Client:
    client = ctx.clients.get("twilio")
    if client is None:  # no await before the assignment: loops cannot race here
        client = ctx.clients["twilio"] = await twilio_client(ctx.settings)
    return client


async def _prepare(ctx: Context, message_id: str) -> dict[str, Any]:
    async with ctx.pool.connection() as conn:
        cur = await conn.execute(
            "select private.prepare_send(%s, %s) as d", (message_id, ctx.worker_id)
        )
        row = await cur.fetchone()
    return row["d"]


# Only the attempt (prepare_send) must be on disk before Twilio is called. A result lost in a
# database crash leaves the attempt unresolved, which the next try reconciles with Twilio, so
# results commit without waiting for the WAL flush.
_RECORD = "private.record_send_result(%s, %s, %s, %s, %s, %s)"
_NO_FLUSH = "set_config('synchronous_commit', 'off', true)"

Record = tuple[str, str | None, str, int | None, str | None, int | None]


async def _record(
    ctx: Context,
    message_id: str,
    sid: str | None,
    status: str,
    code: int | None = None,
    error: str | None = None,
    segments: int | None = None,
) -> None:
    async with ctx.pool.connection() as conn:
        await conn.execute(
            f"select {_RECORD}, {_NO_FLUSH}", (message_id, sid, status, code, error, segments)
        )


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


async def _find_at_twilio(client: Client, decision: dict[str, Any]) -> Any | None:
    """The message an interrupted attempt may have created, or None."""
    to, body = decision.get("to"), decision.get("body")
    from_ = decision.get("from") or None
    attempted = _when(decision.get("attempted_at"))
    if not to or not body or attempted is None:
        raise PermanentError(f"cannot reconcile without to/body/attempted_at: {decision}")
    since = attempted - RECONCILE_SKEW
    # Filter by To (and From, unless a messaging service picked the sender) and walk newest
    # first: a message still queued at Twilio has no DateSent yet, so a DateSent filter could
    # miss exactly the message we are looking for.
    filters: dict[str, Any] = {"to": to} if from_ is None else {"to": to, "from_": from_}
    stream = await client.messages.stream_async(**filters, page_size=50)
    async for msg in stream:
        if msg.date_created and msg.date_created < since:
            break
        if msg.body == body and str(msg.direction or "").startswith("outbound"):
            return msg
    return None


async def reconcile(ctx: Context, message_id: str, d: dict[str, Any]) -> tuple[str | None, str]:
    """THE reconcile of an interrupted attempt (both sms.send and sms.reconcile use it): look
    the message up at Twilio (To, From, body, since the attempt) and record what was found
    with private.reconcile_send: found, it is recorded as sent with its SID and status; not
    found, exactly this attempt is released (back to pending), never a newer one in flight.
    Returns (SID or None, reconcile_send's outcome)."""
    found = await _find_at_twilio(await _client(ctx), d)
    sid = found.sid if found is not None else None
    status = (found.status or "queued") if found is not None else None
    segments = int(found.num_segments) if found is not None and found.num_segments else None
    async with ctx.pool.connection() as conn:
        cur = await conn.execute(
            "select private.reconcile_send(%s, %s, %s, %s, %s) as outcome",
            (message_id, d.get("attempts"), sid, status, segments),
        )
        row = await cur.fetchone()
    outcome = row["outcome"] if row else "gone"
    if sid:
        log.warning("message %s: interrupted attempt found at Twilio as %s", message_id, sid)
    else:
        log.info("message %s: interrupted attempt not at Twilio (%s)", message_id, outcome)
    return sid, outcome


@dataclass
class Attempt:
    """What one call to Twilio came to: the result to record (if any) and the job outcome
    (a result, or the exception the job ends with)."""

    record: Record | None
    outcome: Any


async def _attempt(client: Client, settings: Any, message_id: str, d: dict[str, Any]) -> Attempt:
    refusal = sms_refusal_for(d["to"])
    if refusal is not None:
        log.info("message %s not sent: %s", message_id, refusal)
        return Attempt(
            (message_id, None, "failed", NOT_MOBILE_CODE, refusal, None),
            {"status": "failed", "error_code": NOT_MOBILE_CODE},
        )
    try:
        msg = await client.messages.create_async(
            to=d["to"],
            from_=d.get("from") or None,
            messaging_service_sid=d.get("messaging_service_sid") or None,
            body=d["body"],
            status_callback=d.get("status_callback") or status_callback_url(settings),
            validity_period=DEFAULT_VALIDITY_PERIOD,
        )
    except TwilioRestException as exc:
        text = f"Twilio {exc.status} {exc.code}: {exc.msg}"
        if exc.status in NOT_ACCEPTED_STATUSES:
            retry_in = 30 if exc.status == 429 else None
            return Attempt(
                (message_id, None, "retry", exc.code, text, None),
                RetryableError(text, retry_in=retry_in),
            )
        if exc.status >= 500:
            return Attempt(None, RetryableError(f"{text} (ambiguous: reconciled before retry)"))
        log.info("message %s refused by Twilio: %s", message_id, text)
        return Attempt(
            (message_id, None, "failed", exc.code, exc.msg, None),
            {"status": "failed", "error_code": exc.code},
        )
    except (aiohttp.ClientError, TimeoutError, OSError, TwilioException) as exc:
        return Attempt(
            None,
            RetryableError(
                f"Twilio unreachable ({exc.__class__.__name__}: {exc}); reconciled before retry"
            ),
        )
    segments = int(msg.num_segments) if msg.num_segments else None
    return Attempt(
        (message_id, msg.sid, msg.status or "queued", None, None, segments),
        {"status": "sent", "sid": msg.sid},
    )


async def _send(ctx: Context, message_id: str, d: dict[str, Any]) -> dict[str, Any]:
    attempt = await _attempt(await _client(ctx), ctx.settings, message_id, d)
    if attempt.record:
        await _record(ctx, *attempt.record)
    if isinstance(attempt.outcome, BaseException):
        raise attempt.outcome
    return attempt.outcome


@handler("sms.send")
async def send_sms(job: Job, ctx: Context) -> dict[str, Any] | None:
    message_id = job.payload.get("message_id")
    if not message_id:
        raise PermanentError("sms.send job without message_id")
    decision = await _prepare(ctx, message_id)
    if decision["action"] == "reconcile":
        sid, _ = await reconcile(ctx, message_id, decision)
        if sid:
            return {"status": "reconciled", "sid": sid}
        decision = await _prepare(ctx, message_id)  # never reached Twilio: decide again
        if decision["action"] == "reconcile":  # someone else is mid-attempt: let it finish
            raise RetryableError("message is being sent by another attempt", retry_in=30)
    action = decision["action"]
    if action == "send":
        return await _send(ctx, message_id, decision)
    if action == "defer":
        raise Defer(_when(decision.get("until")), decision.get("reason", ""))
    if action == "skip":
        return {"status": "skipped", "reason": decision.get("reason")}
    raise PermanentError(f"unknown prepare_send action: {decision}")


@handler("sms.reconcile")
async def reconcile_sms(job: Job, ctx: Context) -> dict[str, Any] | None:
    """A stranded send (sending, no SID, no live sms.send run; see the migration
    20261124200000_outreach.sql), looked up at Twilio before anything else happens."""
    message_id = job.payload.get("message_id")
    if not message_id:
        raise PermanentError("sms.reconcile job without message_id")
    async with ctx.pool.connection() as conn:
        cur = await conn.execute("select private.stranded_send(%s) as d", (message_id,))
        row = await cur.fetchone()
    d = row["d"] if row else None
    if d is None or d.get("attempts") != job.payload.get("attempt", d.get("attempts")):
        return {"status": "resolved"}  # resolved meanwhile (recorded, or a newer attempt)
    sid, outcome = await reconcile(ctx, message_id, d)
    return {"status": "reconciled", "sid": sid} if sid else {"status": outcome}


# ---------------------------------------------------------------------- batch path


async def _capture(coro: Any) -> Any:
    """The outcome of a single-job run: its result, or the exception it raised."""
    try:
        return await coro
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return exc


@batch_handler("sms.send")
async def send_sms_batch(jobs: list[Job], ctx: Context) -> list[Any]:
    """The claimed sms.send jobs of one batch, sharing commits: every attempt is recorded in
    ONE durable transaction before any Twilio call, the Twilio calls run concurrently, and
    the results are stored in one statement. Same decisions and outcomes as send_sms; an
    interrupted attempt (reconcile) and any batch-level database error fall back to it."""
    # Jobs in client order: concurrent batches take per-sender pacing locks in one order.
    order = sorted(range(len(jobs)), key=lambda i: str(jobs[i].client_id or ""))
    ids = [jobs[i].payload.get("message_id") for i in order]
    if not all(ids):
        return [await _capture(send_sms(job, ctx)) for job in jobs]
    try:
        async with ctx.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "select private.prepare_send(m.id, %s) as d"
                " from unnest(%s::uuid[]) with ordinality as m(id, n) order by m.n",
                (ctx.worker_id, ids),
            )
            decisions = [r["d"] for r in await cur.fetchall()]
    except psycopg.Error as exc:  # e.g. a deadlock with another batch: one by one instead
        log.warning("batch prepare failed (%s); sending one by one", exc)
        return [await _capture(send_sms(job, ctx)) for job in jobs]

    outcomes: dict[int, Any] = {}
    to_send: list[tuple[int, str, dict[str, Any]]] = []
    for i, message_id, d in zip(order, ids, decisions, strict=True):
        action = d["action"]
        if action == "send":
            to_send.append((i, message_id, d))
        elif action == "defer":
            outcomes[i] = Defer(_when(d.get("until")), d.get("reason", ""))
        elif action == "skip":
            outcomes[i] = {"status": "skipped", "reason": d.get("reason")}
        elif action == "reconcile":
            outcomes[i] = await _capture(send_sms(jobs[i], ctx))
        else:
            outcomes[i] = PermanentError(f"unknown prepare_send action: {d}")

    client = await _client(ctx)
    attempts = await asyncio.gather(
        *(_attempt(client, ctx.settings, mid, d) for _, mid, d in to_send)
    )
    records = [a.record for a in attempts if a.record]
    stored = await _record_many(ctx, records)
    for (i, message_id, _), attempt in zip(to_send, attempts, strict=True):
        if attempt.record and not stored.get(message_id, False):
            # Sent but not recorded: the attempt stays open and the retry reconciles it.
            outcomes[i] = RetryableError("send result not recorded; reconciled before retry")
        else:
            outcomes[i] = attempt.outcome
    return [outcomes[i] for i in range(len(jobs))]


async def _record_many(ctx: Context, records: list[Record]) -> dict[str, bool]:
    """record_send_result for several messages in one statement; one by one on an error."""
    if not records:
        return {}
    cols = list(zip(*records, strict=True))
    try:
        async with ctx.pool.connection() as conn:
            await conn.execute(
                "select count(private.record_send_result(r.id, r.sid, r.status, r.code, r.err,"
                f" r.seg)), {_NO_FLUSH} from unnest(%s::uuid[], %s::text[], %s::text[],"
                " %s::int[], %s::text[], %s::int[]) as r(id, sid, status, code, err, seg)",
                tuple(list(c) for c in cols),
            )
        return {r[0]: True for r in records}
    except psycopg.Error as exc:
        log.warning("batch record failed (%s); recording one by one", exc)
    stored: dict[str, bool] = {}
    for r in records:
        try:
            await _record(ctx, *r)
            stored[r[0]] = True
        except psycopg.Error as exc:
            log.warning("recording message %s failed: %s", r[0], exc)
            stored[r[0]] = False
    return stored
