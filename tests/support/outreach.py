"""Builders for the outreach tests: a sending client, a dataset with its campaign, leads and
queued messages, and an in-process worker pool run until a condition holds."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from dbr.settings import Settings
from workers.runtime import WorkerPool

Conn = psycopg.Connection[Any]
# Nothing listens here: status callbacks of tests that do not run the functions server fail
# fast instead of reaching a developer's running stack.
NOWHERE = "http://127.0.0.1:9/functions/v1"


async def _until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def run_pool(
    settings: Settings,
    handlers: dict[str, Any],
    until: Callable[[], bool],
    *,
    during: Callable[[WorkerPool], Any] | None = None,
    **kw: Any,
) -> WorkerPool:
    """Run a pool until `until()` holds, then stop it gracefully and return it."""

    async def main() -> WorkerPool:
        pool = WorkerPool(settings, handlers=handlers, **{"poll_seconds": 60, **kw})
        task = asyncio.create_task(pool.run())
        await pool.started.wait()
        await _until(lambda: pool.wakeup.connected)
        if during:
            # Every loop has looked for work once and is asleep: what `during` enqueues can
            # only be found through the wake-up path under test.
            await _until(lambda: pool.stats["idle_waits"] >= pool.concurrency)
            await asyncio.sleep(0.3)  # let a claim round started by the connect signal finish
            res = during(pool)
            if asyncio.iscoroutine(res):
                await res
        try:
            await _until(until)
        finally:
            pool.request_stop()
            await task
        return pool

    return asyncio.run(main())


def random_number(prefix: str = "+4477009", length: int = 13) -> str:
    return prefix + "".join(secrets.choice("0123456789") for _ in range(length - len(prefix)))


@dataclass
class Sender:
    client_id: uuid.UUID
    number: str
    service_sid: str | None


def make_sender(db: Conn, *, service: bool = True, **client_settings: Any) -> Sender:
    """A client that can send: its own number, optionally a messaging service (not paced),
    and limits high enough that tests are never rate limited unless they ask to be."""
    # Client numbers are unique: ten random digits keep hundreds of senders per run apart
    # (six gave a collision in a few percent of runs).
    number = random_number("+4470", length=15)
    service_sid = "MG" + secrets.token_hex(16) if service else None
    row = db.execute(
        "insert into public.clients"
        " (name, twilio_phone_number, twilio_messaging_service_sid, settings)"
        " values (%s, %s, %s, %s) returning id",
        (
            f"Sender {number}",
            number,
            service_sid,
            Jsonb({"sms_per_hour": 1_000_000, "number_pace_per_second": 0, **client_settings}),
        ),
    ).fetchone()
    return Sender(row["id"], number, service_sid)


def make_dataset(
    db: Conn, client_id: uuid.UUID, status: str = "active", **campaign: Any
) -> uuid.UUID:
    ds = db.execute(
        "insert into public.datasets (client_id, name, campaign_status)"
        " values (%s, %s, %s) returning id",
        (client_id, f"Dataset {uuid.uuid4().hex[:6]}", status),
    ).fetchone()["id"]
    cols = {"rate_limit_messages_per_minute": 6000, "hours_start": 0, "hours_end": 24, **campaign}
    names = ", ".join(cols)
    marks = ", ".join(["%s"] * len(cols))
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols)
    db.execute(
        f"insert into public.campaigns (dataset_id, client_id, {names}) values (%s, %s, {marks})"
        f" on conflict (dataset_id) do update set {updates}",
        (ds, client_id, *cols.values()),
    )
    return ds


def make_lead(
    db: Conn, sender: Sender, dataset_id: uuid.UUID, phone: str | None = None, **cols: Any
) -> uuid.UUID:
    fields = {"first_name": "Sam", "phone_number": phone or random_number(), **cols}
    names = ", ".join(fields)
    marks = ", ".join(["%s"] * len(fields))
    return db.execute(
        f"insert into public.leads (client_id, dataset_id, {names})"
        f" values (%s, %s, {marks}) returning id",
        (sender.client_id, dataset_id, *fields.values()),
    ).fetchone()["id"]


def make_leads(db: Conn, sender: Sender, dataset_id: uuid.UUID, n: int) -> list[dict[str, Any]]:
    """n leads with distinct numbers in one statement."""
    base = random_number("+44771")[:-4]
    return db.execute(
        "insert into public.leads (client_id, dataset_id, first_name, phone_number)"
        " select %s, %s, 'Lead ' || g, %s || lpad(g::text, 4, '0') from generate_series(1, %s) g"
        " returning id, phone_number",
        (sender.client_id, dataset_id, base, n),
    ).fetchall()


def queue_sms(db: Conn, lead_id: uuid.UUID, text: str, category: str = "human_manual") -> uuid.UUID:
    return db.execute(
        "select private.queue_sms(%s, %s, %s::public.message_category) as id",
        (lead_id, text, category),
    ).fetchone()["id"]


def message(db: Conn, message_id: uuid.UUID) -> dict[str, Any]:
    return db.execute("select * from public.messages where id = %s", (message_id,)).fetchone()


def send_job(db: Conn, message_id: uuid.UUID) -> dict[str, Any]:
    return db.execute(
        "select * from private.jobs where idempotency_key = %s", (f"sms.send:{message_id}",)
    ).fetchone()
