"""Sending one stored outbound message, or the messages of one batch, through Twilio.

The database's decision for a message (private.prepare_send) is acted on here:

  send       the message is now 'sending' with the attempt time recorded: call Twilio
             (unless the number cannot receive SMS, e.g. a landline: failed as 21614),
             then private.record_send_result with the SID (or the error code, which the SQL
             classifies: 21610 opts the number out, 21211/21614... make it undeliverable)
  defer      not yet: `NotYet(until)`, tried again then without spending an attempt
  skip       nothing to send (opted out, archived, paused for good, superseded...): done
  reconcile  an earlier attempt was recorded but its result never was (the worker died
             between Twilio and the database): `reconcile` looks it up at Twilio first. This
             is why a lead never gets the same message twice, whatever crashes where.

Twilio errors: 429 and auth/config errors mean Twilio did not take the message (the attempt
is cleared, `SendLater`); 5xx and connection errors are ambiguous (the attempt stays recorded,
so the retry reconciles first); other 4xx are final for this message and go to
record_send_result with their code.

Two entry points with the same decisions and outcomes: `send` (one message) and `send_batch`
(the messages of one claim): every attempt of the batch is recorded in ONE durable commit
before any Twilio call, the calls run concurrently, and the results are stored in one
statement. On this kind of machine the WAL flush of the attempt record is the bottleneck of
sending; sharing it is what batching buys.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
import psycopg
from psycopg_pool import AsyncConnectionPool
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from dbr.outreach import queries
from dbr.outreach.outcomes import CannotSend, NotYet, SendLater
from dbr.outreach.reconcile import reconcile, when
from dbr.phones import sms_refusal_for
from dbr.providers.twilio import DEFAULT_VALIDITY_PERIOD, status_callback_url
from dbr.settings import Settings

log = logging.getLogger("dbr.outreach.sender")

# Twilio refused before accepting anything: safe to clear the attempt and retry later.
NOT_ACCEPTED_STATUSES = {401, 403, 429}
# Twilio's "'To' number is not a valid mobile number": recorded for a number that cannot
# receive SMS (a landline...), which the importer refuses too, so the SQL side classifies it
# as Twilio's own refusal would be (lead UNDELIVERABLE, pending messages canceled).
NOT_MOBILE_CODE = 21614


@dataclass(frozen=True)
class Outbox:
    """What sending needs: the database, settings, the Twilio client and who is sending."""

    pool: AsyncConnectionPool
    settings: Settings
    twilio: Client
    worker_id: str


Record = tuple[str, str | None, str, int | None, str | None, int | None]


@dataclass
class Attempt:
    """What one call to Twilio came to: the result to record (if any) and the outcome (a
    result, or the exception the send ends with)."""

    record: Record | None
    outcome: Any


async def prepare(box: Outbox, message_id: str) -> dict[str, Any]:
    async with box.pool.connection() as conn:
        cur = await conn.execute(queries.PREPARE_SEND, (message_id, box.worker_id))
        row = await cur.fetchone()
    return row["d"]


async def record(box: Outbox, *result: Any) -> None:
    async with box.pool.connection() as conn:
        await conn.execute(queries.RECORD_SEND_RESULT, result)


async def attempt(box: Outbox, message_id: str, d: dict[str, Any]) -> Attempt:
    """One call to Twilio for a message the database said to send."""
    refusal = sms_refusal_for(d["to"])
    if refusal is not None:
        log.info("message %s not sent: %s", message_id, refusal)
        return Attempt(
            (message_id, None, "failed", NOT_MOBILE_CODE, refusal, None),
            {"status": "failed", "error_code": NOT_MOBILE_CODE},
        )
    try:
        msg = await box.twilio.messages.create_async(
            to=d["to"],
            from_=d.get("from") or None,
            messaging_service_sid=d.get("messaging_service_sid") or None,
            body=d["body"],
            status_callback=d.get("status_callback") or status_callback_url(box.settings),
            validity_period=DEFAULT_VALIDITY_PERIOD,
        )
    except TwilioRestException as exc:
        text = f"Twilio {exc.status} {exc.code}: {exc.msg}"
        if exc.status in NOT_ACCEPTED_STATUSES:
            retry_in = 30 if exc.status == 429 else None
            return Attempt(
                (message_id, None, "retry", exc.code, text, None),
                SendLater(text, retry_in=retry_in),
            )
        if exc.status >= 500:
            return Attempt(None, SendLater(f"{text} (ambiguous: reconciled before retry)"))
        log.info("message %s refused by Twilio: %s", message_id, text)
        return Attempt(
            (message_id, None, "failed", exc.code, exc.msg, None),
            {"status": "failed", "error_code": exc.code},
        )
    except (aiohttp.ClientError, TimeoutError, OSError, TwilioException) as exc:
        return Attempt(
            None,
            SendLater(
                f"Twilio unreachable ({exc.__class__.__name__}: {exc}); reconciled before retry"
            ),
        )
    segments = int(msg.num_segments) if msg.num_segments else None
    return Attempt(
        (message_id, msg.sid, msg.status or "queued", None, None, segments),
        {"status": "sent", "sid": msg.sid},
    )


async def _send_now(box: Outbox, message_id: str, d: dict[str, Any]) -> dict[str, Any]:
    done = await attempt(box, message_id, d)
    if done.record:
        await record(box, *done.record)
    if isinstance(done.outcome, BaseException):
        raise done.outcome
    return done.outcome


async def send(box: Outbox, message_id: str) -> dict[str, Any]:
    """Send one message as the database decides; the result, or NotYet / SendLater /
    CannotSend."""
    decision = await prepare(box, message_id)
    if decision["action"] == "reconcile":
        sid, _ = await reconcile(box.pool, box.twilio, message_id, decision)
        if sid:
            return {"status": "reconciled", "sid": sid}
        decision = await prepare(box, message_id)  # never reached Twilio: decide again
        if decision["action"] == "reconcile":  # someone else is mid-attempt: let it finish
            raise SendLater("message is being sent by another attempt", retry_in=30)
    action = decision["action"]
    if action == "send":
        return await _send_now(box, message_id, decision)
    if action == "defer":
        raise NotYet(when(decision.get("until")), decision.get("reason", ""))
    if action == "skip":
        return {"status": "skipped", "reason": decision.get("reason")}
    raise CannotSend(f"unknown prepare_send action: {decision}")


async def _capture(coro: Any) -> Any:
    """The outcome of a single send: its result, or the exception it raised."""
    try:
        return await coro
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return exc


async def send_batch(box: Outbox, messages: list[tuple[str, str | None]]) -> list[Any]:
    """Send several messages ((message id, client id) each) sharing commits: every attempt is
    recorded in ONE durable transaction before any Twilio call, the Twilio calls run
    concurrently, and the results are stored in one statement. Returns one outcome per
    message, in order: its result or the exception `send` would have raised. An interrupted
    attempt (reconcile) and any batch-level database error fall back to `send`."""
    # Messages in client order: concurrent batches take per-sender pacing locks in one order.
    order = sorted(range(len(messages)), key=lambda i: str(messages[i][1] or ""))
    ids = [messages[i][0] for i in order]
    try:
        async with box.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(queries.PREPARE_SENDS, (box.worker_id, ids))
            decisions = [r["d"] for r in await cur.fetchall()]
    except psycopg.Error as exc:  # e.g. a deadlock with another batch: one by one instead
        log.warning("batch prepare failed (%s); sending one by one", exc)
        return [await _capture(send(box, message_id)) for message_id, _ in messages]

    outcomes: dict[int, Any] = {}
    to_send: list[tuple[int, str, dict[str, Any]]] = []
    for i, message_id, d in zip(order, ids, decisions, strict=True):
        action = d["action"]
        if action == "send":
            to_send.append((i, message_id, d))
        elif action == "defer":
            outcomes[i] = NotYet(when(d.get("until")), d.get("reason", ""))
        elif action == "skip":
            outcomes[i] = {"status": "skipped", "reason": d.get("reason")}
        elif action == "reconcile":
            outcomes[i] = await _capture(send(box, message_id))
        else:
            outcomes[i] = CannotSend(f"unknown prepare_send action: {d}")

    attempts = await asyncio.gather(*(attempt(box, mid, d) for _, mid, d in to_send))
    stored = await _record_many(box, [a.record for a in attempts if a.record])
    for (i, message_id, _), done in zip(to_send, attempts, strict=True):
        if done.record and not stored.get(message_id, False):
            # Sent but not recorded: the attempt stays open and the retry reconciles it.
            outcomes[i] = SendLater("send result not recorded; reconciled before retry")
        else:
            outcomes[i] = done.outcome
    return [outcomes[i] for i in range(len(messages))]


async def _record_many(box: Outbox, records: list[Record]) -> dict[str, bool]:
    """record_send_result for several messages in one statement; one by one on an error."""
    if not records:
        return {}
    cols = list(zip(*records, strict=True))
    try:
        async with box.pool.connection() as conn:
            await conn.execute(queries.RECORD_SEND_RESULTS, tuple(list(c) for c in cols))
        return {r[0]: True for r in records}
    except psycopg.Error as exc:
        log.warning("batch record failed (%s); recording one by one", exc)
    stored: dict[str, bool] = {}
    for r in records:
        try:
            await record(box, *r)
            stored[r[0]] = True
        except psycopg.Error as exc:
            log.warning("recording message %s failed: %s", r[0], exc)
            stored[r[0]] = False
    return stored
