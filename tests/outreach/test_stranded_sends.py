"""Stranded sends: a message left `sending` with no SID (its attempt was recorded, its result
never was) whose send job will not come back to it: the job was dead-lettered (here: its
worker vanished once too often) or no worker ran. Before anything else happens to it, the
message is looked up at Twilio by an sms.reconcile job; it is never sent twice."""

from __future__ import annotations

import httpx
import pytest

from dbr.providers.twilio import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from tests.support import acting_as, make_user
from tests.support.outreach import (
    NOWHERE,
    make_dataset,
    make_lead,
    make_sender,
    message,
    queue_sms,
    run_pool,
    send_job,
)
from workers.handlers.sms import reconcile_sms, send_sms

pytestmark = [
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning"),
]


@pytest.fixture
def sms_settings(settings, twilio):
    return settings.model_copy(
        update={"twilio_base_url": twilio.base_url, "public_webhook_base_url": NOWHERE}
    )


def reconcile_job(db, message_id):
    return db.execute(
        "select * from private.jobs where kind = 'sms.reconcile'"
        " and payload ->> 'message_id' = %s::text",
        (message_id,),
    ).fetchone()


def strand(db, twilio, *, reached_twilio: bool):
    """A message whose worker recorded the attempt, maybe reached Twilio, then vanished for
    the last time its job allowed; the sweeper (no worker running) settles the lost lease."""
    sender = make_sender(db, service=False)
    lead = make_lead(db, sender, make_dataset(db, sender.client_id))
    mid = queue_sms(db, lead, "Only ever once")
    job = send_job(db, mid)
    db.execute(
        "update private.jobs set status = 'running', locked_by = 'vanished-worker',"
        " locked_until = now() - interval '1 second', lease_losses = max_lease_losses - 1"
        " where id = %s",
        (job["id"],),
    )
    d = db.execute("select private.prepare_send(%s, 'vanished-worker') as d", (mid,)).fetchone()
    assert d["d"]["action"] == "send"
    sid = None
    if reached_twilio:  # the vanished worker's request got there; its answer never came back
        resp = httpx.post(
            f"{twilio.base_url}/2010-04-01/Accounts/{LOCAL_ACCOUNT_SID}/Messages.json",
            auth=(LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN),
            data={"To": d["d"]["to"], "From": d["d"]["from"], "Body": d["d"]["body"]},
        )
        sid = resp.json()["sid"]
    db.execute("select private.sweep_jobs()")
    assert send_job(db, mid)["status"] == "dead"
    assert message(db, mid)["status"] == "sending"
    return sender, mid, sid


def test_stranded_send_found_at_twilio_is_recorded_as_sent_not_sent_again(db, sms_settings, twilio):
    sender, mid, sid = strand(db, twilio, reached_twilio=True)
    rec = reconcile_job(db, mid)
    assert rec is not None and rec["status"] == "queued"  # enqueued as the send job died

    run_pool(
        sms_settings,
        {"sms.reconcile": reconcile_sms, "sms.send": send_sms},
        lambda: reconcile_job(db, mid)["status"] == "done",
        poll_seconds=0.2,
    )

    assert [m["sid"] for m in twilio.standin.sent()] == [sid]  # sent once, by the vanished worker
    row = message(db, mid)
    assert row["twilio_sid"] == sid and row["status"] in ("queued", "sent", "delivered")
    assert reconcile_job(db, mid)["result"] == {"status": "reconciled", "sid": sid}
    job = send_job(db, mid)
    # The work was in fact done: the send job is closed, no admin should retry it.
    assert job["status"] == "done" and job["result"] == {"status": "reconciled", "sid": sid}
    admin = make_user(db, sender.client_id, "admin")
    with acting_as(db, admin) as c:
        assert c.execute("select id from public.dead_jobs").fetchall() == []


def test_stranded_send_not_at_twilio_is_released_and_sent_once_when_retried(
    db, sms_settings, twilio
):
    sender, mid, _ = strand(db, twilio, reached_twilio=False)
    handlers = {"sms.reconcile": reconcile_sms, "sms.send": send_sms}

    run_pool(
        sms_settings, handlers, lambda: reconcile_job(db, mid)["status"] == "done", poll_seconds=0.2
    )

    assert twilio.standin.sent() == []
    assert reconcile_job(db, mid)["result"] == {"status": "released_dead"}
    row = message(db, mid)
    assert (row["status"], row["twilio_sid"]) == ("pending", None)
    job = send_job(db, mid)
    assert job["status"] == "dead"  # dead-lettered: an admin sees it and decides
    admin = make_user(db, sender.client_id, "admin")
    with acting_as(db, admin) as c:
        assert [r["id"] for r in c.execute("select id from public.dead_jobs").fetchall()] == [
            job["id"]
        ]
        c.execute("select public.retry_dead_job(%s)", (job["id"],))

    run_pool(
        sms_settings, handlers, lambda: send_job(db, mid)["status"] == "done", poll_seconds=0.2
    )
    [sent] = twilio.standin.sent()
    assert message(db, mid)["twilio_sid"] == sent["sid"]


def test_scheduled_reconcile_finds_sends_stranded_while_no_worker_ran(db, twilio):
    """pg_cron's minute job: one reconcile job per stranded attempt, none for live sends."""
    sender = make_sender(db, service=False)
    ds = make_dataset(db, sender.client_id)
    stranded, live, queued = (
        queue_sms(db, make_lead(db, sender, ds), f"Message {i}") for i in range(3)
    )
    for mid in (stranded, live, queued):
        db.execute("select private.prepare_send(%s, 'w') as d", (mid,))
    lease = {stranded: "now() - interval '1 second'", live: "now() + interval '1 minute'"}
    for mid, until in lease.items():
        db.execute(
            f"update private.jobs set status = 'running', locked_by = 'w', locked_until = {until}"
            " where idempotency_key = %s",
            (f"sms.send:{mid}",),
        )

    db.execute("select private.enqueue_stranded_reconciles()")
    db.execute("select private.enqueue_stranded_reconciles()")  # the next minute: nothing new

    assert reconcile_job(db, stranded)["payload"] == {"message_id": str(stranded), "attempt": 1}
    assert (
        db.execute(
            "select count(*) as n from private.jobs where kind = 'sms.reconcile'"
            " and payload ->> 'message_id' = %s::text",
            (stranded,),
        ).fetchone()["n"]
        == 1
    )
    assert reconcile_job(db, live) is None  # its worker is still on it
    assert reconcile_job(db, queued) is None  # its own send job reconciles when it runs
    # A lookup that found nothing never releases a newer attempt.
    assert (
        db.execute("select private.reconcile_send(%s, 0) as o", (stranded,)).fetchone()["o"]
        == "moved_on"
    )
    assert message(db, stranded)["status"] == "sending"
    for mid in (stranded, live, queued):
        db.execute(
            "update private.jobs set status = 'canceled' where payload ->> 'message_id' = %s::text",
            (mid,),
        )
        db.execute("update public.messages set status = 'canceled' where id = %s", (mid,))


def test_a_send_job_with_a_malformed_payload_still_dead_letters(db):
    """The dead-send trigger must never stop a job from being recorded as dead."""
    job_id = db.execute(
        "select private.enqueue_job('sms.send', %s::jsonb) as id", ('{"message_id": "nope"}',)
    ).fetchone()["id"]
    db.execute(
        "update private.jobs set status = 'running', locked_by = 'w',"
        " locked_until = now() - interval '1 second', max_lease_losses = 1 where id = %s",
        (job_id,),
    )
    db.execute("select private.sweep_jobs()")
    row = db.execute("select status::text as s from private.jobs where id = %s", (job_id,))
    assert row.fetchone()["s"] == "dead"
