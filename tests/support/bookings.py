"""Helpers for the Cal.com tests: dates on the stand-in's working days, tenants, leads."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

WEBHOOK_SECRET = "test-calcom-webhook-secret"
LONDON = ZoneInfo("Europe/London")


def next_weekday(days_ahead: int = 2) -> date:
    """A weekday at least `days_ahead` days from today (the stand-in's hosts work Mon-Fri)."""
    d = datetime.now(LONDON).date() + timedelta(days=days_ahead)
    while d.weekday() >= 5:
        d += timedelta(days=1)
    return d


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A London wall-clock time on `day`, as an aware datetime."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=LONDON)


def make_dataset(
    conn: psycopg.Connection[Any], client_id: uuid.UUID, name: str = "List"
) -> uuid.UUID:
    row = conn.execute(
        "insert into public.datasets (client_id, name) values (%s, %s) returning id",
        (client_id, name),
    ).fetchone()
    return row["id"]


def make_lead(
    conn: psycopg.Connection[Any],
    client_id: uuid.UUID,
    dataset_id: uuid.UUID,
    *,
    status: str = "HOT",
    email: str | None = "jane@example.test",
    first_name: str = "Jane",
) -> uuid.UUID:
    phone = "+4477009" + str(uuid.uuid4().int)[:5]
    row = conn.execute(
        """insert into public.leads (client_id, dataset_id, first_name, last_name, phone_number,
                                     email, contact_status)
           values (%s, %s, %s, 'Doe', %s, %s, %s) returning id""",
        (client_id, dataset_id, first_name, phone, email, status),
    ).fetchone()
    return row["id"]


def lead_row(conn: psycopg.Connection[Any], lead_id: uuid.UUID) -> dict[str, Any]:
    return conn.execute(
        """select contact_status::text as contact_status, call_booked, call_booked_time,
                  cal_booking_id, manual_mode
           from public.leads where id = %s""",
        (lead_id,),
    ).fetchone()


def notifications_for(conn: psycopg.Connection[Any], client_id: uuid.UUID) -> list[dict[str, Any]]:
    if conn.execute("select to_regclass('public.notifications') as t").fetchone()["t"] is None:
        return []
    return conn.execute(
        "select title, message, data from public.notifications where client_id = %s"
        " order by created_at",
        (client_id,),
    ).fetchall()


@dataclass
class Tenant:
    client_id: uuid.UUID
    dataset_id: uuid.UUID
    admin: uuid.UUID


def make_tenant(conn: psycopg.Connection[Any], name: str = "Acme") -> Tenant:
    from tests.support import make_client, make_user

    client_id = make_client(conn, name)
    return Tenant(client_id, make_dataset(conn, client_id), make_user(conn, client_id, "admin"))


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
