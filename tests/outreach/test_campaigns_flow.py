"""Campaigns through the RPCs the frontend calls (as the user, RLS on), with a worker pass
standing in for the sms.send worker: start queues the first minute's batch, pause holds what
is queued, resume sends each held message exactly once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from psycopg.types.json import Jsonb

from tests.outreach.rules import (
    cancel_leftover_jobs,
    dataset_with_leads,
    run_worker_pass,
    sending_client,
)
from tests.support import acting_as, make_user, refusal

ALL_DAY = {"hours_start": 0, "hours_end": 24}


@pytest.fixture
def campaign(db) -> Iterator[dict]:
    client_id, _ = sending_client(db, sms_per_hour=1000)
    dataset_id, phones = dataset_with_leads(db, client_id, 3)
    setup = {
        "client_id": client_id,
        "dataset_id": dataset_id,
        "phones": phones,
        "admin": make_user(db, client_id, "admin"),
        "manager": make_user(db, client_id, "manager"),
        "rep": make_user(db, client_id, "sales_rep"),
    }
    yield setup
    cancel_leftover_jobs(db, client_id)


def rpc(db, user, sql: str, *params):
    with acting_as(db, user) as conn:
        return conn.execute(sql, params).fetchone()["r"]


def test_pause_holds_queued_messages_and_resume_sends_each_exactly_once(db, campaign):
    started = rpc(
        db,
        campaign["admin"],
        "select public.start_campaign(%s, %s) as r",
        campaign["dataset_id"],
        Jsonb({"rate_limit_messages_per_minute": 3, "schedule": ALL_DAY}),
    )["campaign"]
    assert started["status"] == "active"
    assert (started["total_leads"], started["messages_queued"]) == (3, 3)

    paused = rpc(
        db, campaign["manager"], "select public.pause_campaign(%s) as r", campaign["dataset_id"]
    )
    assert paused["campaign"]["status"] == "paused"
    assert paused["campaign"]["messages_pending"] == 3

    sids: dict[str, str] = {}
    held = run_worker_pass(db, campaign["client_id"], sids)
    assert set(held.values()) == {"defer"} and not sids, "nothing goes out while paused"

    resumed = rpc(
        db, campaign["manager"], "select public.resume_campaign(%s) as r", campaign["dataset_id"]
    )
    assert resumed["campaign"]["status"] == "active"
    assert run_worker_pass(db, campaign["client_id"], sids) == dict.fromkeys(held, "send")
    assert run_worker_pass(db, campaign["client_id"], sids) == {}, "no job left to run"

    rows = db.execute(
        "select id::text, twilio_sid, send_attempts, status from public.messages"
        " where dataset_id = %s",
        (campaign["dataset_id"],),
    ).fetchall()
    assert {r["id"]: r["twilio_sid"] for r in rows} == sids
    assert all(r["send_attempts"] == 1 and r["status"] == "queued" for r in rows)
    statuses = db.execute(
        "select contact_status from public.leads where dataset_id = %s",
        (campaign["dataset_id"],),
    ).fetchall()
    assert {s["contact_status"] for s in statuses} == {"M1_SENT"}


def test_only_admins_and_managers_run_campaigns(db, campaign):
    err = refusal(db, campaign["rep"], "select public.start_campaign(%s)", campaign["dataset_id"])
    assert (err.status, err.code) == (403, "FORBIDDEN")
    other_client, _ = sending_client(db)
    outsider = make_user(db, other_client, "admin")
    err = refusal(db, outsider, "select public.pause_campaign(%s)", campaign["dataset_id"])
    assert (err.status, err.code) == (404, "NOT_FOUND")
    status = db.execute(
        "select campaign_status from public.datasets where id = %s", (campaign["dataset_id"],)
    ).fetchone()["campaign_status"]
    assert status == "draft"


def test_a_paused_dataset_patched_back_to_active_behaves_like_resume(db, campaign):
    rpc(
        db,
        campaign["admin"],
        "select public.start_campaign(%s, %s) as r",
        campaign["dataset_id"],
        Jsonb({"rate_limit_messages_per_minute": 1, "schedule": ALL_DAY}),
    )
    rpc(db, campaign["admin"], "select public.pause_campaign(%s) as r", campaign["dataset_id"])
    run_worker_pass(db, campaign["client_id"], {})
    # The frontend may PATCH the dataset through PostgREST instead of calling resume.
    with acting_as(db, campaign["manager"]) as conn:
        conn.execute(
            "update public.datasets set campaign_status = 'active' where id = %s",
            (campaign["dataset_id"],),
        )
    sids: dict[str, str] = {}
    assert set(run_worker_pass(db, campaign["client_id"], sids).values()) == {"send"}
    assert len(sids) == 1


def test_estimated_completion_waits_out_the_m2_and_m3_delays(db):
    """A one-lead campaign is not done when its M1 is queued: the lead still has M2 (after
    m2_delay_hours) and M3 (after m3_delay_hours more) to come if it never replies."""
    client_id, _ = sending_client(db, sms_per_hour=1000)
    dataset_id, _ = dataset_with_leads(db, client_id, 1)
    admin = make_user(db, client_id, "admin")
    try:
        started = rpc(
            db,
            admin,
            "select public.start_campaign(%s, %s) as r",
            dataset_id,
            Jsonb({"m2_delay_hours": 2, "m3_delay_hours": 3, "schedule": ALL_DAY}),
        )["campaign"]
        assert started["messages_queued"] == 1
        gap = db.execute(
            "select extract(epoch from (%s::timestamptz - now())) / 3600 as h",
            (started["estimated_completion"],),
        ).fetchone()["h"]
        assert 5 <= gap < 5.1, f"estimate is {gap:.2f} h after start, expected the 5 h of delays"
    finally:
        cancel_leftover_jobs(db, client_id)
