"""Fixtures for staff notifications: the email (Resend) stand-in in-process, settings pointing
the providers at it and at the shared Twilio stand-in (tests/support/fixtures.py), and a small
team around one lead."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from dbr.db import async_pool
from dbr.dev.standins.email import EmailStandin
from dbr.settings import Settings
from tests.support import make_user
from tests.support.outreach import (
    NOWHERE,
    make_dataset,
    make_lead,
    make_sender,
    random_number,
    run_pool,
)
from workers.handlers.notify import notify_email, notify_sms

Conn = psycopg.Connection[Any]
HANDLERS = {"notify.email": notify_email, "notify.sms": notify_sms}


@pytest.fixture(scope="session")
def email_server() -> Iterator[EmailStandin]:
    with EmailStandin() as standin:
        yield standin


@pytest.fixture
def email(email_server: EmailStandin) -> EmailStandin:
    email_server.reset()
    return email_server


@pytest.fixture
def notify_settings(settings: Settings, email: EmailStandin, twilio: Any) -> Settings:
    return settings.model_copy(
        update={
            "resend_base_url": email.base_url,
            "twilio_base_url": twilio.base_url,
            "public_webhook_base_url": NOWHERE,
            "app_base_url": "https://app.example.test",
        }
    )


@dataclass
class Team:
    client_id: uuid.UUID
    number: str
    dataset_id: uuid.UUID
    lead_id: uuid.UUID
    admin: uuid.UUID
    manager: uuid.UUID
    rep: uuid.UUID
    viewer: uuid.UUID
    emails: dict[uuid.UUID, str]
    phones: dict[uuid.UUID, str]


@pytest.fixture
def team(db: Conn) -> Team:
    """A client with its own number; an admin and a rep with phones, a manager without, a
    read_only member; one lead assigned to the rep."""
    sender = make_sender(db, service=False)
    ds = make_dataset(db, sender.client_id)
    tag = uuid.uuid4().hex[:8]
    emails: dict[uuid.UUID, str] = {}
    ids = {}
    for role in ("admin", "manager", "sales_rep", "read_only"):
        address = f"{role}-{tag}@team.test"
        ids[role] = make_user(db, sender.client_id, role, email=address)
        emails[ids[role]] = address
    phones = {ids["admin"]: random_number("+4479"), ids["sales_rep"]: random_number("+4479")}
    for user_id, phone in phones.items():
        db.execute(
            "update public.client_members set phone = %s where user_id = %s", (phone, user_id)
        )
    lead = make_lead(
        db, sender, ds, first_name="Ann", last_name="Lee", assigned_to=ids["sales_rep"]
    )
    return Team(
        sender.client_id,
        sender.number,
        ds,
        lead,
        ids["admin"],
        ids["manager"],
        ids["sales_rep"],
        ids["read_only"],
        emails,
        phones,
    )


def notify_jobs(db: Conn, client_id: uuid.UUID) -> list[dict[str, Any]]:
    return db.execute(
        "select id, kind, status, result, run_at, attempts from private.jobs"
        " where client_id = %s and kind like 'notify.%%' order by id",
        (client_id,),
    ).fetchall()


def deliver_all(db: Conn, settings: Settings, client_id: uuid.UUID) -> list[dict[str, Any]]:
    """Run the notify handlers until every due notify.* job of the client is finished. The
    pool claims every queued notify.* job, so other modules' leftovers (their notifications
    share the session database) are canceled first: only this client's mail is delivered."""
    db.execute(
        "update private.jobs set status = 'canceled', finished_at = now()"
        " where status in ('queued', 'running') and kind like 'notify.%%'"
        " and client_id is distinct from %s",
        (client_id,),
    )

    def finished() -> bool:
        now = datetime.now(UTC)
        return all(
            j["status"] in ("done", "dead") or (j["status"] == "queued" and j["run_at"] > now)
            for j in notify_jobs(db, client_id)
        )

    run_pool(settings, HANDLERS, finished)
    return notify_jobs(db, client_id)


def deliveries(db: Conn, client_id: uuid.UUID) -> list[dict[str, Any]]:
    return db.execute(
        "select d.*, n.title, n.event from private.notification_deliveries d"
        " left join public.notifications n on n.id = d.notification_id"
        " where d.client_id = %s order by d.created_at, d.channel",
        (client_id,),
    ).fetchall()


def run_async(db_url: str, fn: Callable[[Any], Any]) -> Any:
    """Run `await fn(pool)` with a fresh async pool on the test database."""

    async def main() -> Any:
        pool = async_pool(db_url, max_size=2)
        await pool.open()
        try:
            return await fn(pool)
        finally:
            await pool.close()

    return asyncio.run(main())
