"""Staff notifications delivered for real: the worker pool's notify.email / notify.sms jobs
through the Resend and Twilio stand-ins, driven by what the database decided (recipients,
channels, quiet hours, digest, once per person)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from psycopg.types.json import Jsonb

from dbr.notifications.service import NotifyError, deliver_email, deliver_sms
from dbr.providers.email import email_client
from dbr.providers.twilio import twilio_client
from tests.notifications.conftest import deliver_all, deliveries, notify_jobs, run_async
from tests.support import acting_as

# twilio's aiohttp transport still passes `auth=`; aiohttp deprecates it. Not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning"),
]


def make_hot(db, lead_id, **cols) -> None:
    sets = ", ".join(f"{k} = %s" for k in cols)
    db.execute(f"update public.leads set {sets} where id = %s", (*cols.values(), lead_id))


def test_hot_lead_reaches_each_person_once_by_email_and_sms(
    db, notify_settings, email, twilio, team
):
    make_hot(db, team.lead_id, contact_status="HOT", lead_sentiment="POSITIVE")
    jobs = deliver_all(db, notify_settings, team.client_id)

    assert {j["status"] for j in jobs} == {"done"} and len(jobs) == 5
    to = sorted(a for e in email.sent() for a in e["to"] if a.endswith("@team.test"))
    assert to == sorted(team.emails[u] for u in (team.admin, team.manager, team.rep))
    assert team.emails[team.viewer] not in to, "read_only gets no operational alert"
    mail = email.sent(team.emails[team.rep])[0]
    assert mail["subject"] == "Hot lead: Ann Lee"
    assert mail["from"] == notify_settings.notify_email_from
    assert "https://app.example.test/" in mail["text"] and mail["html"].startswith("<p>Hi")
    sms = twilio.standin.sent()
    assert sorted(m["to"] for m in sms) == sorted(team.phones.values())
    assert {m["from"] for m in sms} == {team.number}
    assert all(m["body"].startswith("Hot lead: Ann Lee") for m in sms)
    assert all(d["status"] == "sent" and d["provider_id"] for d in deliveries(db, team.client_id))

    # The double "Hot lead": the call is booked, then the AI's next assessment says HOT.
    make_hot(db, team.lead_id, contact_status="CALL_BOOKED")
    make_hot(db, team.lead_id, lead_sentiment="HOT")
    make_hot(db, team.lead_id, contact_status="WARM", lead_sentiment="POSITIVE")
    make_hot(db, team.lead_id, contact_status="HOT")
    assert len(notify_jobs(db, team.client_id)) == 5, "nothing more is queued"
    assert len(email.sent()) == 3 and len(twilio.standin.sent()) == 2
    titles = db.execute(
        "select user_id, count(*) as n from public.notifications where client_id = %s"
        " and event = 'hot_lead' group by user_id",
        (team.client_id,),
    ).fetchall()
    assert {r["n"] for r in titles} == {1} and len(titles) == 3

    # Staff SMS are not lead messages: nothing in messages, no lead-sending budget used.
    n = db.execute(
        "select count(*) as n from public.messages where client_id = %s", (team.client_id,)
    ).fetchone()["n"]
    assert n == 0


def test_notifications_send_rpc_delivers_on_the_requested_channels(
    db, notify_settings, email, twilio, team
):
    with acting_as(db, team.admin) as c:
        out = c.execute(
            "select public.notify_user(user_id => %s, channels => %s, priority => 'immediate',"
            " title => 'Please call Ann', message => 'She asked for a call today',"
            " link => '/leads/1', data => %s) as r",
            (team.rep, ["sms", "in_app"], Jsonb({"lead_id": str(team.lead_id)})),
        ).fetchone()["r"]
    assert out["channels"] == ["in_app", "sms"]
    assert [d["channel"] for d in out["deliveries"]] == ["sms"]
    deliver_all(db, notify_settings, team.client_id)
    [sms] = twilio.standin.sent()
    assert sms["to"] == team.phones[team.rep] and sms["body"].startswith("Please call Ann")
    assert email.sent() == [], "no email was asked for"
    with acting_as(db, team.rep) as c:
        unread = c.execute("select public.unread_notification_count() as r").fetchone()["r"]
    assert unread == {"unread": 1}


def test_quiet_hours_delay_normal_but_not_immediate(db, notify_settings, email, team, db_url):
    local = datetime.now(UTC).astimezone(ZoneInfo("Asia/Tokyo"))
    quiet = {
        "start": (local - timedelta(hours=1)).strftime("%H:%M"),
        "end": (local + timedelta(hours=2)).strftime("%H:%M"),
    }
    with acting_as(db, team.manager) as c:
        c.execute(
            "select public.update_notification_preferences("
            "quiet_hours => %s, timezone => 'Asia/Tokyo')",
            (Jsonb(quiet),),
        )
    for priority, title in (("normal", "Weekly figures"), ("immediate", "Booking failed")):
        db.execute(
            "select private.notify_user(%s, array['email'], %s, %s, 'x')",
            (team.manager, priority, title),
        )
    deliver_all(db, notify_settings, team.client_id)  # only the due job runs
    assert [e["subject"] for e in email.sent()] == ["Booking failed"]
    [waiting] = [j for j in notify_jobs(db, team.client_id) if j["status"] == "queued"]
    assert waiting["run_at"] > datetime.now(UTC) + timedelta(hours=1, minutes=50)

    # A worker that runs it early (a clock jump, a manual retry) defers it again.
    delivery = next(d for d in deliveries(db, team.client_id) if d["title"] == "Weekly figures")
    outcome = run_async(
        db_url,
        lambda pool: deliver_email(
            pool, notify_settings, email_client(notify_settings), str(delivery["id"])
        ),
    )
    assert outcome.status == "deferred" and outcome.until > datetime.now(UTC) + timedelta(hours=1)
    assert len(email.sent()) == 1


def test_digest_collects_low_priority_into_one_email(db, notify_settings, email, team):
    db.execute(
        "update public.client_members set notification_preferences = '{\"digest_hour\": 0}'"
        " where user_id = %s",
        (team.manager,),
    )
    ids = [
        db.execute(
            "select private.notify_user(%s, array['email', 'sms'], 'low', %s, %s)"
            " ->> 'notification_id' as id",
            (team.manager, title, body),
        ).fetchone()["id"]
        for title, body in (
            ("Opted out: Bo", "Bo texted STOP"),
            ("Import done", "120 leads"),
            ("Read it", "seen"),
        )
    ]
    assert notify_jobs(db, team.client_id) == [], "low priority sends nothing by itself"
    db.execute("update public.notifications set read_at = now() where id = %s", (ids[2],))
    made = db.execute("select private.queue_notification_digests() as n").fetchone()["n"]
    assert made >= 1
    deliver_all(db, notify_settings, team.client_id)

    [digest] = email.sent(team.emails[team.manager])
    assert digest["subject"].endswith("2 update(s) for you")
    assert "Opted out: Bo: Bo texted STOP" in digest["text"] and "Import done" in digest["text"]
    assert "Read it" not in digest["text"], "what was already read in-app is left out"
    assert db.execute("select private.queue_notification_digests() as n").fetchone()["n"] == 0, (
        "one digest a day"
    )


def test_an_email_sent_before_a_crash_is_not_sent_again(db, notify_settings, email, team, db_url):
    out = db.execute(
        "select private.notify_user(%s, array['email'], 'immediate', 'Call booked', 'Thu 10:00')"
        " as r",
        (team.admin,),
    ).fetchone()["r"]
    delivery_id = next(
        str(d["id"])
        for d in deliveries(db, team.client_id)
        if str(d["notification_id"]) == out["notification_id"]
    )
    email.fail_next(500, mode="accept")  # Resend sends it, then the answer is lost

    async def twice(pool):
        client = email_client(notify_settings)
        with pytest.raises(NotifyError) as first:
            await deliver_email(pool, notify_settings, client, delivery_id)
        assert first.value.retryable
        return await deliver_email(pool, notify_settings, client, delivery_id)

    outcome = run_async(db_url, twice)
    [sent] = email.sent()
    assert outcome.status == "sent" and outcome.provider_id == sent["id"]
    assert email.requests == 2 and sent["idempotency_key"] == f"notify-{delivery_id}"


def test_an_sms_whose_answer_was_lost_is_reconciled_not_resent(
    db, notify_settings, twilio, team, db_url
):
    out = db.execute(
        "select private.notify_user(%s, array['sms'], 'immediate', 'Hot lead: Ann', 'Call her')"
        " as r",
        (team.rep,),
    ).fetchone()["r"]
    delivery_id = next(
        str(d["id"])
        for d in deliveries(db, team.client_id)
        if str(d["notification_id"]) == out["notification_id"]
    )
    # Twilio takes it, then the answer fails
    httpx.post(
        f"{twilio.base_url}/_standin/failures", json={"next": 1, "status": 500, "mode": "accept"}
    )

    async def twice(pool):
        client = await twilio_client(notify_settings)
        try:
            with pytest.raises(NotifyError):
                await deliver_sms(pool, client, delivery_id)
            return await deliver_sms(pool, client, delivery_id)
        finally:
            await client.http_client.close()

    outcome = run_async(db_url, twice)
    [sms] = twilio.standin.sent()
    assert outcome.status == "sent" and outcome.provider_id == sms["sid"]
    assert sms["to"] == team.phones[team.rep]


def test_sms_goes_only_to_the_members_phone_as_it_is_at_send_time(
    db, notify_settings, twilio, team
):
    db.execute(
        "select private.notify_user(%s, array['sms'], 'immediate', 'Hot lead', 'x')", (team.admin,)
    )
    new_phone = "+447700900555"
    db.execute(
        "update public.client_members set phone = %s where user_id = %s", (new_phone, team.admin)
    )
    db.execute(
        "select private.notify_user(%s, array['sms'], 'immediate', 'Second', 'y')", (team.rep,)
    )
    db.execute("update public.client_members set phone = null where user_id = %s", (team.rep,))
    deliver_all(db, notify_settings, team.client_id)
    assert [m["to"] for m in twilio.standin.sent()] == [new_phone]
    skipped = [d for d in deliveries(db, team.client_id) if d["status"] == "skipped"]
    assert [d["error"] for d in skipped] == ["no phone number"]


def test_a_delivery_that_can_never_succeed_fails_without_looping(db, notify_settings, email, team):
    email.fail_next(422, times=5)
    db.execute(
        "select private.notify_user(%s, array['email'], 'immediate', 'Broken', 'x')", (team.admin,)
    )
    jobs = deliver_all(db, notify_settings, team.client_id)
    assert [j["status"] for j in jobs] == ["dead"]
    [d] = deliveries(db, team.client_id)
    assert d["status"] == "failed" and "422" in d["error"]
    alert = db.execute(
        "select channels from public.notifications where client_id = %s and event = 'job_failed'",
        (team.client_id,),
    ).fetchall()
    assert alert and all(a["channels"] == ["in_app"] for a in alert), (
        "a dead notify job alerts in-app only"
    )
    assert len(notify_jobs(db, team.client_id)) == 1, "and queues no email about itself"
