"""Twilio retries and races: the same inbound MessageSid delivered five times at once, and a
status callback racing the send result for the same message."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.outreach.rules import (
    as_service,
    cancel_leftover_jobs,
    dataset_with_leads,
    sending_client,
    webhook,
)


def _at_once(db_url: str, n: int, fn) -> list[Any]:
    """Runs fn(conn, i) for i in range(n) on n connections released together by a barrier."""
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
            barrier.wait()
            return fn(conn, i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


@pytest.fixture
def client(db) -> Iterator[tuple[uuid.UUID, str]]:
    client_id, number = sending_client(db)
    yield client_id, number
    cancel_leftover_jobs(db, client_id)


def test_same_message_sid_five_times_at_once_is_one_message_and_one_ai_job(db, db_url, client):
    client_id, number = client
    _, (phone,) = dataset_with_leads(db, client_id, 1)
    params = {
        "MessageSid": "SM" + client_id.hex,
        "From": phone,
        "To": number,
        "Body": "Yes, I'm still interested",
        "SmsStatus": "received",
    }

    results = _at_once(db_url, 5, lambda conn, _: webhook(conn, params))

    assert sorted(r["status"] for r in results) == ["duplicate"] * 4 + ["received"]
    stored = db.execute(
        "select id, lead_id from public.messages where twilio_sid = %s", (params["MessageSid"],)
    ).fetchall()
    assert len(stored) == 1 and stored[0]["lead_id"] is not None
    jobs = db.execute(
        "select payload from private.jobs where kind = 'ai.reply' and client_id = %s", (client_id,)
    ).fetchall()
    assert [j["payload"]["inbound_message_id"] for j in jobs] == [str(stored[0]["id"])]
    count = db.execute(
        "select message_count from public.conversations where lead_id = %s", (stored[0]["lead_id"],)
    ).fetchone()["message_count"]
    assert count == 1


def test_status_callback_racing_the_send_result_is_never_lost(db, db_url, client):
    client_id, _ = client
    _, phones = dataset_with_leads(db, client_id, 6)
    for i, phone in enumerate(phones):
        lead_id = db.execute(
            "select id from public.leads where phone_number = %s", (phone,)
        ).fetchone()["id"]
        message_id = db.execute(
            "select private.queue_sms(%s, 'Hello', 'human_manual') as id", (lead_id,)
        ).fetchone()["id"]
        assert (
            db.execute(
                "select private.prepare_send(%s, 'w') ->> 'action' as a", (message_id,)
            ).fetchone()["a"]
            == "send"
        )
        sid = f"SM{client_id.hex[:24]}{i:08d}"

        def act(conn, who: int, message_id=message_id, sid=sid) -> Any:
            if who == 0:
                return as_service(
                    conn,
                    "select private.record_send_result(%s, %s, 'queued') as r",
                    (message_id, sid),
                )
            return webhook(conn, {"MessageSid": sid, "MessageStatus": "delivered"})

        _at_once(db_url, 2, act)

        row = db.execute(
            "select status, delivered_at from public.messages where id = %s", (message_id,)
        ).fetchone()
        assert row["status"] == "delivered", f"round {i}: callback lost"
        assert row["delivered_at"] is not None
