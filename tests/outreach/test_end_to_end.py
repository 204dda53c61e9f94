"""The whole loop on loopback, as `dbr up` runs it: a campaign starts, the tick queues M1, a worker
process sends it through the Twilio stand-in, the stand-in's signed status callbacks reach the
twilio-webhook function, and `dbr simulate reply` plays the lead texting back: the reply lands
in the conversation and the AI reply job is queued."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from dbr.settings import ROOT
from tests.support import acting_as, make_user, wait_for
from tests.support.outreach import make_dataset, make_lead, make_sender, message

DBR = str(Path(sys.executable).parent / "dbr")  # the console script, as a person runs it


def test_campaign_to_reply(db, db_url, twilio, start_worker, functions_server):
    sender = make_sender(db, service=False, opt_out_line="Reply STOP to opt out")
    admin = make_user(db, sender.client_id, "admin")
    ds = make_dataset(db, sender.client_id, status="draft", ai_response_delay_seconds=90)
    lead = make_lead(db, sender, ds, first_name="Priya")
    phone = db.execute("select phone_number from public.leads where id = %s", (lead,)).fetchone()[
        "phone_number"
    ]
    httpx.post(f"{twilio.base_url}/_standin/config", json={"callbacks": True})

    with acting_as(db, admin) as c:
        started = c.execute(
            "select public.start_campaign(%s, %s) as r",
            (ds, '{"m1_template": "Hi {first_name}, still thinking about solar panels?"}'),
        ).fetchone()["r"]
    assert started["campaign"]["messages_queued"] == 1

    worker = start_worker(twilio.base_url, webhook_base=functions_server.base_url)
    [m1] = wait_for(lambda: twilio.standin.sent(to=phone), 30, "M1 at Twilio")
    assert m1["body"] == "Hi Priya, still thinking about solar panels?\nReply STOP to opt out"
    assert m1["from"] == sender.number

    row = db.execute(
        "select * from public.messages where lead_id = %s and message_category = 'm1'", (lead,)
    ).fetchone()
    # The status callbacks went through the edge function and moved the message forward.
    wait_for(lambda: message(db, row["id"])["status"] == "delivered", 30, "delivered status")
    assert message(db, row["id"])["twilio_sid"] == m1["sid"]
    callbacks = [c for c in twilio.standin.callback_log if c["params"]["MessageSid"] == m1["sid"]]
    assert [c["status"] for c in callbacks] == [200, 200, 200]
    lead_row = db.execute("select * from public.leads where id = %s", (lead,)).fetchone()
    assert lead_row["contact_status"] == "M1_SENT" and lead_row["m1_sent_at"] is not None
    worker.terminate()

    env = {
        **os.environ,
        "SUPABASE_DB_URL": db_url,
        "PUBLIC_WEBHOOK_BASE_URL": functions_server.base_url,
        "FUNCTIONS_PORT": str(functions_server.port),
    }
    for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        env.pop(key, None)
    cli = subprocess.run(
        [DBR, "simulate", "reply", "--to", str(lead), "--text", "Yes!"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "ai.reply job queued" in cli.stderr

    reply = db.execute(
        "select * from public.messages where lead_id = %s and direction = 'inbound'", (lead,)
    ).fetchone()
    assert reply["content"] == "Yes!" and reply["conversation_id"] == row["conversation_id"]
    lead_row = db.execute("select * from public.leads where id = %s", (lead,)).fetchone()
    assert lead_row["contact_status"] == "REPLIED" and lead_row["latest_lead_reply"] == "Yes!"
    job = db.execute(
        "select * from private.jobs where idempotency_key = %s", (f"ai.reply:{reply['id']}",)
    ).fetchone()
    assert job["status"] == "queued"
    assert job["payload"] == {
        "conversation_id": str(row["conversation_id"]),
        "inbound_message_id": str(reply["id"]),
    }
    assert 60 < (job["run_at"] - reply["created_at"]).total_seconds() <= 91
