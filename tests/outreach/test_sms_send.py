"""sms.send through the worker pool and the Twilio stand-in: what reaches Twilio, what the
message row records, and how Twilio's errors and an interrupted attempt are handled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from dbr.providers.twilio import DEFAULT_VALIDITY_PERIOD
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
from workers.handlers.sms import send_sms

HANDLERS = {"sms.send": send_sms}

# twilio's aiohttp transport still passes `auth=`; aiohttp deprecates it. Not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning"),
]


@pytest.fixture(params=["batch", "single"])
def path(request) -> dict:
    """Run every test through both entry points: send_sms_batch (what the runtime uses) and
    send_sms alone (its fallback)."""
    return {} if request.param == "batch" else {"batch_handlers": {}}


@pytest.fixture
def sms_settings(settings, twilio, db):
    # The pool claims every queued sms.send job: replies other modules queued and never sent
    # (the AI tests run only ai.* jobs) would reach this test's stand-in too.
    db.execute(
        "update private.jobs set status = 'canceled', finished_at = now()"
        " where status in ('queued', 'running') and kind = 'sms.send'"
    )
    return settings.model_copy(
        update={"twilio_base_url": twilio.base_url, "public_webhook_base_url": NOWHERE}
    )


def job_finished(db, message_id) -> bool:
    return send_job(db, message_id)["status"] in ("done", "dead")


def test_message_reaches_twilio_once_with_callback_validity_and_opt_out_line(
    db, sms_settings, twilio, path
):
    sender = make_sender(db, service=False)
    lead = make_lead(db, sender, make_dataset(db, sender.client_id), first_name="Ana")
    mid = queue_sms(db, lead, "Hi Ana, are you still looking for a new kitchen?")

    run_pool(sms_settings, HANDLERS, lambda: job_finished(db, mid), **path)

    [sent] = twilio.standin.sent()
    row = message(db, mid)
    assert sent["from"] == sender.number and sent["messaging_service_sid"] is None
    assert sent["body"].startswith("Hi Ana, are you still looking")
    assert sent["body"].endswith("Reply STOP to opt out")
    assert sent["status_callback"] == f"{NOWHERE}/twilio-webhook"
    assert sent["validity_period"] == DEFAULT_VALIDITY_PERIOD
    assert row["twilio_sid"] == sent["sid"]
    assert row["status"] == "queued" and row["sent_at"] is not None
    assert row["segments"] == sent["num_segments"] == 1
    assert send_job(db, mid)["result"] == {"status": "sent", "sid": sent["sid"]}


def test_messaging_service_is_used_when_the_client_has_one(db, sms_settings, twilio, path):
    sender = make_sender(db, service=True)
    lead = make_lead(db, sender, make_dataset(db, sender.client_id))
    mid = queue_sms(db, lead, "Hello from the service")
    run_pool(sms_settings, HANDLERS, lambda: job_finished(db, mid), **path)
    [sent] = twilio.standin.sent()
    assert sent["messaging_service_sid"] == sender.service_sid and sent["from"] is None


@pytest.mark.parametrize(
    ("code", "lead_status", "opted_out"),
    [(21211, "UNDELIVERABLE", False), (21614, "UNDELIVERABLE", False), (21610, "OPTED_OUT", True)],
)
def test_refused_numbers_are_not_retried_and_mark_the_lead(
    db, sms_settings, twilio, path, code, lead_status, opted_out
):
    sender = make_sender(db)
    ds = make_dataset(db, sender.client_id)
    lead = make_lead(db, sender, ds)
    phone = db.execute("select phone_number from public.leads where id = %s", (lead,)).fetchone()
    twilio.standin.add_failures(to={phone["phone_number"]: code})
    mid = queue_sms(db, lead, "First try")

    run_pool(sms_settings, HANDLERS, lambda: job_finished(db, mid), **path)

    assert twilio.standin.sent() == []
    row = message(db, mid)
    assert (row["status"], row["error_code"], row["twilio_sid"]) == ("failed", code, None)
    job = send_job(db, mid)
    assert (job["status"], job["attempts"]) == ("done", 1)
    lead_row = db.execute("select * from public.leads where id = %s", (lead,)).fetchone()
    assert lead_row["contact_status"] == lead_status
    assert lead_row["opted_out"] is opted_out


def test_a_landline_is_never_handed_to_twilio(db, sms_settings, twilio, path):
    # The importer refuses landlines; a lead written some other way (SQL, an older import)
    # is refused by the sender too, as Twilio would refuse it (21614), without the call.
    sender = make_sender(db)
    lead = make_lead(db, sender, make_dataset(db, sender.client_id), phone="+442079460018")
    mid = queue_sms(db, lead, "Hello landline")

    run_pool(sms_settings, HANDLERS, lambda: job_finished(db, mid), **path)

    assert twilio.standin.sent() == []
    row = message(db, mid)
    assert (row["status"], row["error_code"], row["twilio_sid"]) == ("failed", 21614, None)
    assert "landline" in row["error_message"]
    lead_row = db.execute("select * from public.leads where id = %s", (lead,)).fetchone()
    assert lead_row["contact_status"] == "UNDELIVERABLE"


def test_rate_limited_by_twilio_is_retried_and_sent_once(db, sms_settings, twilio, path):
    sender = make_sender(db)
    lead = make_lead(db, sender, make_dataset(db, sender.client_id))
    twilio.standin.add_failures(next=1, status=429)
    mid = queue_sms(db, lead, "Please arrive once")

    # The retry is brought forward instead of waiting out the 30 s back-off after a 429.
    def retried_or_done() -> bool:
        job = send_job(db, mid)
        if job["status"] == "queued" and job["attempts"] == 1:
            db.execute("update private.jobs set run_at = now() where id = %s", (job["id"],))
        return job["status"] == "done"

    run_pool(sms_settings, HANDLERS, retried_or_done, poll_seconds=0.2, **path)
    assert len(twilio.standin.sent()) == 1
    row = message(db, mid)
    assert row["status"] == "queued" and row["twilio_sid"] == twilio.standin.sent()[0]["sid"]
    assert send_job(db, mid)["attempts"] == 2


@pytest.mark.parametrize("failure_status", [500, 0], ids=["answer-500", "connection-dropped"])
def test_ambiguous_failure_is_reconciled_not_sent_twice(
    db, sms_settings, twilio, path, failure_status
):
    """Twilio took the message but the answer was lost: the retry finds it, sends nothing."""
    sender = make_sender(db)
    lead = make_lead(db, sender, make_dataset(db, sender.client_id))
    twilio.standin.add_failures(next=1, status=failure_status, mode="accept")
    mid = queue_sms(db, lead, "Only once, please")

    def bring_retry_forward() -> bool:
        job = send_job(db, mid)
        if job["status"] == "queued" and job["attempts"] == 1:
            db.execute("update private.jobs set run_at = now() where id = %s", (job["id"],))
        return job["status"] == "done"

    run_pool(sms_settings, HANDLERS, bring_retry_forward, poll_seconds=0.2, **path)
    [sent] = twilio.standin.sent()
    assert message(db, mid)["twilio_sid"] == sent["sid"]
    assert send_job(db, mid)["result"] == {"status": "reconciled", "sid": sent["sid"]}


def test_interrupted_attempt_not_at_twilio_is_sent_once(db, sms_settings, twilio, path):
    """A worker died after recording the attempt but before Twilio got the request."""
    sender = make_sender(db)
    lead = make_lead(db, sender, make_dataset(db, sender.client_id))
    mid = queue_sms(db, lead, "Lost before Twilio")
    decision = db.execute("select private.prepare_send(%s, 'dead-worker') as d", (mid,)).fetchone()
    assert decision["d"]["action"] == "send" and message(db, mid)["status"] == "sending"

    run_pool(sms_settings, HANDLERS, lambda: job_finished(db, mid), **path)
    [sent] = twilio.standin.sent()
    assert message(db, mid)["twilio_sid"] == sent["sid"]
    assert send_job(db, mid)["result"]["status"] == "sent"


def test_outside_the_window_the_job_waits_without_spending_attempts(db, sms_settings, twilio, path):
    sender = make_sender(db)
    # A window that opens at least an hour from now (the next hour would open within the
    # five minutes the test waits for, in the last minutes of an hour).
    start = (datetime.now(ZoneInfo("Europe/London")).hour + 2) % 24
    end = start + 1
    ds = make_dataset(db, sender.client_id, hours_start=start, hours_end=end)
    lead = make_lead(db, sender, ds)
    mid = queue_sms(db, lead, "Sequence message", category="m1")

    def deferred() -> bool:
        job = send_job(db, mid)
        return job["status"] == "queued" and job["run_at"] > datetime.now(UTC) + timedelta(
            minutes=5
        )

    run_pool(sms_settings, HANDLERS, deferred, **path)
    job = send_job(db, mid)
    assert job["attempts"] == 0 and "outside_window" in job["last_error"]
    assert message(db, mid)["status"] == "pending"
    assert twilio.standin.sent() == []
    db.execute("update private.jobs set status = 'canceled' where id = %s", (job["id"],))


def test_automated_message_to_an_archived_lead_is_skipped(db, sms_settings, twilio, path):
    sender = make_sender(db)
    lead = make_lead(db, sender, make_dataset(db, sender.client_id))
    mid = queue_sms(db, lead, "An AI answer", category="ai_response")
    db.execute("update public.leads set archived = true where id = %s", (lead,))
    run_pool(sms_settings, HANDLERS, lambda: job_finished(db, mid), **path)
    assert twilio.standin.sent() == []
    row = message(db, mid)
    assert (row["status"], row["error_message"]) == ("canceled", "archived")
    assert send_job(db, mid)["result"] == {"status": "skipped", "reason": "archived"}


def test_stand_in_control_endpoints(twilio):
    base = twilio.base_url
    assert (
        httpx.post(f"{base}/_standin/failures", json={"next": 2, "status": 503}).json()["pending"]
        == 2
    )
    assert httpx.get(f"{base}/_standin/messages").json() == {"messages": []}


def test_one_claimed_batch_with_every_outcome(db, sms_settings, twilio):
    """Five messages claimed together go through send_sms_batch: each ends as it would alone."""
    sender = make_sender(db)
    # A window that opens at least an hour from now (the next hour would open within the
    # five minutes the test waits for, in the last minutes of an hour).
    start = (datetime.now(ZoneInfo("Europe/London")).hour + 2) % 24
    end = start + 1
    closed = make_dataset(db, sender.client_id, hours_start=start, hours_end=end)
    open_ds = make_dataset(db, sender.client_id)
    leads = [make_lead(db, sender, open_ds) for _ in range(4)]
    phones = [
        db.execute("select phone_number from public.leads where id = %s", (lead,)).fetchone()[
            "phone_number"
        ]
        for lead in leads
    ]
    twilio.standin.add_failures(to={phones[1]: 21211, phones[2]: 21610})
    ok = queue_sms(db, leads[0], "Goes out")
    invalid = queue_sms(db, leads[1], "Invalid number")
    unsubscribed = queue_sms(db, leads[2], "Unsubscribed")
    skipped = queue_sms(db, leads[3], "AI answer", category="ai_response")
    db.execute("update public.leads set archived = true where id = %s", (leads[3],))
    waiting = queue_sms(db, make_lead(db, sender, closed), "Sequence", category="m1")
    ids = [ok, invalid, unsubscribed, skipped, waiting]

    def settled() -> bool:
        return (
            all(send_job(db, m)["status"] == "done" for m in ids[:4])
            and send_job(db, waiting)["attempts"] == 0
            and send_job(db, waiting)["last_error"] is not None
        )

    pool = run_pool(sms_settings, HANDLERS, settled, concurrency=1, batch_size=10)
    assert pool.stats["claimed"] == 5 and pool.stats["deferred"] == 1
    assert [m["to"] for m in twilio.standin.sent()] == [phones[0]]
    assert message(db, ok)["twilio_sid"] == twilio.standin.sent()[0]["sid"]
    assert (message(db, invalid)["status"], message(db, invalid)["error_code"]) == ("failed", 21211)
    assert db.execute("select opted_out from public.leads where id = %s", (leads[2],)).fetchone()[
        "opted_out"
    ]
    assert message(db, skipped)["status"] == "canceled"
    assert message(db, waiting)["status"] == "pending"
    db.execute(
        "update private.jobs set status = 'canceled' where id = %s", (send_job(db, waiting)["id"],)
    )
