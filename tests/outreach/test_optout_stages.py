"""STOP at every stage of a lead's sequence: nothing more is ever sent to the number, queued
messages included, and a person at a keyboard cannot message it either."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from psycopg.types.json import Jsonb

from tests.outreach.rules import (
    cancel_leftover_jobs,
    dataset_with_leads,
    run_worker_pass,
    sending_client,
    webhook,
)
from tests.support import acting_as, make_user, refusal

STAGES = ["before_start", "m1_queued", "m1_in_flight", "after_m1"]


@pytest.fixture
def setup(db) -> Iterator[dict]:
    client_id, number = sending_client(db, sms_per_hour=1000)
    dataset_id, (phone,) = dataset_with_leads(db, client_id, 1)
    yield {
        "client_id": client_id,
        "number": number,
        "dataset_id": dataset_id,
        "phone": phone,
        "admin": make_user(db, client_id, "admin"),
    }
    cancel_leftover_jobs(db, client_id)


def _start(db, s) -> None:
    with acting_as(db, s["admin"]) as conn:
        conn.execute(
            "select public.start_campaign(%s, %s)",
            (
                s["dataset_id"],
                Jsonb(
                    {
                        "rate_limit_messages_per_minute": 10,
                        "schedule": {"hours_end": 24, "hours_start": 0},
                    }
                ),
            ),
        )


def _stop(db, s, sid: str) -> dict:
    return webhook(db, {"MessageSid": sid, "From": s["phone"], "To": s["number"], "Body": "Stop"})


def _m1(db, s) -> str | None:
    row = db.execute(
        "select id::text from public.messages where dataset_id = %s and message_category = 'm1'",
        (s["dataset_id"],),
    ).fetchone()
    return row and row["id"]


@pytest.mark.parametrize("stage", STAGES)
def test_stop_at_every_stage_means_nothing_more_is_sent(db, setup, stage):
    s = setup
    sids: dict[str, str] = {}
    if stage == "before_start":
        assert _stop(db, s, "SMstop" + s["client_id"].hex)["action"] == "opted_out"
        _start(db, s)
        assert _m1(db, s) is None, "an opted-out lead is never queued"
    else:
        _start(db, s)
        m1 = _m1(db, s)
        assert m1
        if stage == "m1_in_flight":
            decision = db.execute("select private.prepare_send(%s, 'w') as d", (m1,)).fetchone()
            assert decision["d"]["action"] == "send"
        if stage == "after_m1":
            run_worker_pass(db, s["client_id"], sids)
        assert _stop(db, s, "SMstop" + s["client_id"].hex)["action"] == "opted_out"
        if stage == "m1_in_flight":
            # Twilio had already accepted it: the result is recorded, the status stays OPTED_OUT.
            db.execute(
                "select private.record_send_result(%s, 'SMinflight' || %s, 'queued')", (m1, m1)
            )
        outcome = run_worker_pass(db, s["client_id"], sids)
        if stage == "m1_queued":
            assert (
                db.execute("select status from public.messages where id = %s", (m1,)).fetchone()[
                    "status"
                ]
                == "canceled"
            )
        assert "send" not in outcome.values()

    lead = db.execute(
        "select id, opted_out, contact_status from public.leads where dataset_id = %s",
        (s["dataset_id"],),
    ).fetchone()
    assert (lead["opted_out"], lead["contact_status"]) == (True, "OPTED_OUT")

    # Days later, when M2 and M3 would be due: nothing is queued.
    db.execute(
        "update public.leads set m1_sent_at = now() - interval '200 hours' where id = %s",
        (lead["id"],),
    )
    tick = db.execute(
        "select private.run_sequencing_tick(now() + interval '150 hours', %s) as t",
        (s["dataset_id"],),
    ).fetchone()["t"]
    assert tick["queued"] == 0

    err = refusal(db, s["admin"], "select public.send_message(%s, 'Just checking in')", lead["id"])
    assert (err.status, err.code) == (403, "FORBIDDEN") and "opted out" in err.message


def test_start_after_stop_opts_back_in_without_restarting_the_sequence(db, setup):
    s = setup
    _start(db, s)
    run_worker_pass(db, s["client_id"], {})
    _stop(db, s, "SMa" + s["client_id"].hex)
    reply = webhook(
        db,
        {
            "MessageSid": "SMb" + s["client_id"].hex,
            "From": s["phone"],
            "To": s["number"],
            "Body": "START",
        },
    )
    assert reply["action"] == "opted_in"
    lead = db.execute(
        "select id, opted_out, contact_status from public.leads where dataset_id = %s",
        (s["dataset_id"],),
    ).fetchone()
    assert (lead["opted_out"], lead["contact_status"]) == (False, "REPLIED")
    db.execute(
        "update public.leads set m1_sent_at = now() - interval '49 hours' where id = %s",
        (lead["id"],),
    )
    tick = db.execute(
        "select private.run_sequencing_tick(now(), %s) as t", (s["dataset_id"],)
    ).fetchone()["t"]
    assert tick["queued"] == 0, "staff decide what happens next, not the tick"
    with acting_as(db, s["admin"]) as conn:
        sent = conn.execute(
            "select public.send_message(%s, 'Welcome back!') as r", (lead["id"],)
        ).fetchone()["r"]
    assert sent["message"]["status"] == "pending"
