"""Builders for the outreach-rules tests (campaigns, sequencing, send rules, inbound, opt-out):
a client with its own Twilio number, a dataset with leads, and calls made the way the
service (edge function, worker) makes them."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.support import make_client

Conn = psycopg.Connection[Any]


def unique_number() -> str:
    """A GB mobile number no other test uses (clients' Twilio numbers are unique)."""
    return "+447" + "".join(secrets.choice("0123456789") for _ in range(9))


def sending_client(db: Conn, **settings: Any) -> tuple[uuid.UUID, str]:
    number = unique_number()
    client_id = make_client(
        db,
        "Outreach rules",
        twilio_phone_number=number,
        settings=Jsonb({"number_pace_per_second": 0, **settings}),
    )
    return client_id, number


def dataset_with_leads(db: Conn, client_id: uuid.UUID, count: int) -> tuple[uuid.UUID, list[str]]:
    dataset_id = db.execute(
        "insert into public.datasets (client_id, name) values (%s, 'list') returning id",
        (client_id,),
    ).fetchone()["id"]
    phones = [unique_number() for _ in range(count)]
    db.execute(
        "insert into public.leads (client_id, dataset_id, first_name, phone_number)"
        " select %s, %s, 'Lead', p from unnest(%s::text[]) p",
        (client_id, dataset_id, phones),
    )
    return dataset_id, phones


def as_service(conn: Conn, sql: str, params: Any = None) -> Any:
    """One statement run as service_role, the role the edge function and workers use."""
    with conn.transaction():
        conn.execute("set local role service_role")
        return conn.execute(sql, params).fetchone()


def webhook(conn: Conn, params: dict[str, str]) -> dict[str, Any]:
    row = as_service(conn, "select private.ingest_twilio_webhook(%s) as r", (Jsonb(params),))
    return row["r"]


def cancel_leftover_jobs(db: Conn, client_id: uuid.UUID) -> None:
    """Other suites run worker pools on the same database: leave no due job of ours behind."""
    db.execute(
        "update private.jobs set status = 'canceled', finished_at = now()"
        " where client_id = %s and status in ('queued', 'running')",
        (client_id,),
    )


def run_worker_pass(db: Conn, client_id: uuid.UUID, sids: dict[str, str]) -> dict[str, str]:
    """What the sms.send worker does, for this client's queued jobs in due order (ignoring
    run_at, as if the clock had moved on): send -> record a sid; defer -> reschedule; skip -> done.
    Returns {message_id: action}."""
    outcome: dict[str, str] = {}
    jobs = db.execute(
        "select id, payload ->> 'message_id' as message_id from private.jobs"
        " where client_id = %s and kind = 'sms.send' and status = 'queued' order by run_at, id",
        (client_id,),
    ).fetchall()
    for job in jobs:
        mid = job["message_id"]
        decision = db.execute("select private.prepare_send(%s, 'test') as d", (mid,)).fetchone()[
            "d"
        ]
        outcome[mid] = decision["action"]
        if decision["action"] == "send":
            sid = "SM" + uuid.uuid4().hex
            sids[mid] = sid
            db.execute("select private.record_send_result(%s, %s, 'queued')", (mid, sid))
        if decision["action"] == "defer":
            db.execute(
                "update private.jobs set run_at = %s where id = %s", (decision["until"], job["id"])
            )
        else:
            db.execute(
                "update private.jobs set status = 'done', finished_at = now() where id = %s",
                (job["id"],),
            )
    return outcome
