"""Settling an interrupted send: an attempt recorded in the database whose result never was
(the worker died between Twilio and the database).

The message is looked up at Twilio (same To, and From unless a messaging service picked the
sender; created since the attempt; same body). Found: it is recorded as sent with its SID.
Not found: exactly that attempt is released (message back to pending), never a newer one in
flight. sms.send reconciles before deciding again; sms.reconcile runs the same for a stranded
send, one whose sms.send job will not (dead-lettered, gone, or past its lease), enqueued when
such a job dies and every minute by pg_cron (private.enqueue_stranded_reconciles).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool
from twilio.rest import Client

from dbr.outreach import queries
from dbr.outreach.outcomes import CannotSend

log = logging.getLogger("dbr.outreach.reconcile")

# How far before the recorded attempt to look at Twilio (clock skew between us and Twilio).
RECONCILE_SKEW = timedelta(minutes=5)


def when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


async def find_at_twilio(client: Client, decision: dict[str, Any]) -> Any | None:
    """The message an interrupted attempt may have created, or None."""
    to, body = decision.get("to"), decision.get("body")
    from_ = decision.get("from") or None
    attempted = when(decision.get("attempted_at"))
    if not to or not body or attempted is None:
        raise CannotSend(f"cannot reconcile without to/body/attempted_at: {decision}")
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


async def reconcile(
    pool: AsyncConnectionPool, client: Client, message_id: str, d: dict[str, Any]
) -> tuple[str | None, str]:
    """THE reconcile of an interrupted attempt (sms.send and sms.reconcile both use it): look
    the message up at Twilio and record what was found with private.reconcile_send. Returns
    (SID or None, reconcile_send's outcome)."""
    found = await find_at_twilio(client, d)
    sid = found.sid if found is not None else None
    status = (found.status or "queued") if found is not None else None
    segments = int(found.num_segments) if found is not None and found.num_segments else None
    async with pool.connection() as conn:
        cur = await conn.execute(
            queries.RECONCILE_SEND, (message_id, d.get("attempts"), sid, status, segments)
        )
        row = await cur.fetchone()
    outcome = row["outcome"] if row else "gone"
    if sid:
        log.warning("message %s: interrupted attempt found at Twilio as %s", message_id, sid)
    else:
        log.info("message %s: interrupted attempt not at Twilio (%s)", message_id, outcome)
    return sid, outcome


async def reconcile_stranded(
    pool: AsyncConnectionPool, client: Client, message_id: str, attempt: int | None
) -> dict[str, Any]:
    """A stranded send (sending, no SID, no live sms.send run), looked up at Twilio before
    anything else happens; `attempt` is the attempt the reconcile was queued for (None: the
    current one)."""
    async with pool.connection() as conn:
        cur = await conn.execute(queries.STRANDED_SEND, (message_id,))
        row = await cur.fetchone()
    d = row["d"] if row else None
    if d is None or d.get("attempts") != (d.get("attempts") if attempt is None else attempt):
        return {"status": "resolved"}  # resolved meanwhile (recorded, or a newer attempt)
    sid, outcome = await reconcile(pool, client, message_id, d)
    return {"status": "reconciled", "sid": sid} if sid else {"status": outcome}
