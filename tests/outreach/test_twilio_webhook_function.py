"""The twilio-webhook edge function, served by `_dev/serve.ts` (deno) against the test database,
driven with requests signed by the Twilio SDK's own RequestValidator (which cross-checks the
function's WebCrypto implementation of the signature)."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import psycopg
import pytest

from dbr.dev.standins.twilio import inbound_params, new_sid, sign
from dbr.providers.twilio import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from tests.support.outreach import (
    make_dataset,
    make_lead,
    make_sender,
    message,
    queue_sms,
    random_number,
)

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def post(
    url: str,
    params: dict[str, str],
    *,
    token: str = LOCAL_AUTH_TOKEN,
    sign_url: str | None = None,
    signature: str | None = "auto",
) -> httpx.Response:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature == "auto":
        signature = sign(token, sign_url or url, params)
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return httpx.post(url, data=params, headers=headers, timeout=10)


async def post_many(url: str, params: dict[str, str], n: int) -> list[httpx.Response]:
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": sign(LOCAL_AUTH_TOKEN, url, params),
    }
    async with httpx.AsyncClient(timeout=10) as client:
        return await asyncio.gather(
            *(client.post(url, data=params, headers=headers) for _ in range(n))
        )


def reply_params(db, lead_id, sender, body: str, **extra: Any) -> dict[str, str]:
    phone = db.execute("select phone_number from public.leads where id = %s", (lead_id,)).fetchone()
    return inbound_params(
        account_sid=LOCAL_ACCOUNT_SID,
        from_=phone["phone_number"],
        to=sender.number,
        body=body,
        **extra,
    )


def inbound_rows(db, sid: str) -> list[dict[str, Any]]:
    return db.execute("select * from public.messages where twilio_sid = %s", (sid,)).fetchall()


def ai_jobs(db, message_id) -> list[dict[str, Any]]:
    return db.execute(
        "select * from private.jobs"
        " where kind = 'ai.reply' and payload ->> 'inbound_message_id' = %s",
        (str(message_id),),
    ).fetchall()


@pytest.fixture
def conversation(db):
    sender = make_sender(db)
    lead = make_lead(db, sender, make_dataset(db, sender.client_id), first_name="Jo")
    return sender, lead


def test_same_reply_delivered_five_times_at_once_is_one_message_and_one_ai_job(
    db, functions_server, conversation
):
    sender, lead = conversation
    params = reply_params(db, lead, sender, "Yes, I'm still interested")
    responses = asyncio.run(post_many(functions_server.twilio_webhook, params, 5))

    assert [r.status_code for r in responses] == [200] * 5
    assert all(
        r.text == TWIML and r.headers["content-type"].startswith("text/xml") for r in responses
    )
    [row] = inbound_rows(db, params["MessageSid"])
    assert (row["direction"], row["lead_id"], row["content"]) == ("inbound", lead, params["Body"])
    assert len(ai_jobs(db, row["id"])) == 1
    lead_row = db.execute("select * from public.leads where id = %s", (lead,)).fetchone()
    assert (
        lead_row["latest_lead_reply"] == params["Body"] and lead_row["contact_status"] == "REPLIED"
    )


@pytest.mark.parametrize("how", ["missing", "wrong-token", "other-url", "tampered-body"])
def test_bad_signature_is_403_and_stores_nothing(db, functions_server, conversation, how):
    sender, lead = conversation
    params = reply_params(db, lead, sender, "STOP")
    url = functions_server.twilio_webhook
    if how == "missing":
        resp = post(url, params, signature=None)
    elif how == "wrong-token":
        resp = post(url, params, token="f" * 32)
    elif how == "other-url":
        resp = post(url, params, sign_url="https://attacker.example/functions/v1/twilio-webhook")
    else:
        signature = sign(LOCAL_AUTH_TOKEN, url, params)
        resp = post(url, {**params, "Body": "Send me more"}, signature=signature)
    assert resp.status_code == 403
    assert inbound_rows(db, params["MessageSid"]) == []
    assert db.execute("select opted_out from public.leads where id = %s", (lead,)).fetchone() == {
        "opted_out": False
    }


def test_message_from_an_unknown_number_is_stored(db, functions_server):
    sender = make_sender(db)
    params = inbound_params(
        account_sid=LOCAL_ACCOUNT_SID, from_=random_number(), to=sender.number, body="Who is this?"
    )
    assert post(functions_server.twilio_webhook, params).status_code == 200
    [row] = inbound_rows(db, params["MessageSid"])
    assert row["client_id"] == sender.client_id and row["lead_id"] is None


def _sent_message(db, sender, lead) -> tuple[Any, str]:
    mid = queue_sms(db, lead, "Outbound for callbacks")
    db.execute("select private.prepare_send(%s, 'test')", (mid,))
    sid = new_sid()
    db.execute("select private.record_send_result(%s, %s, 'queued')", (mid, sid))
    return mid, sid


def _status(sender, lead_phone: str, sid: str, status: str, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": LOCAL_ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "From": sender.number,
        "To": lead_phone,
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        **extra,
    }


def test_status_callbacks_out_of_order_never_move_a_message_backwards(
    db, functions_server, conversation
):
    sender, lead = conversation
    phone = db.execute("select phone_number from public.leads where id = %s", (lead,)).fetchone()
    mid, sid = _sent_message(db, sender, lead)
    url = functions_server.twilio_webhook
    for status in ("delivered", "sent", "queued", "delivered"):  # delivered first, then a replay
        resp = post(url, _status(sender, phone["phone_number"], sid, status))
        assert resp.status_code == 200 and resp.text == TWIML
    row = message(db, mid)
    assert row["status"] == "delivered" and row["delivered_at"] is not None
    events = db.execute(
        "select status from private.twilio_status_events where message_sid = %s order by status",
        (sid,),
    ).fetchall()
    assert [e["status"] for e in events] == ["delivered", "queued", "sent"]


def test_callback_that_beats_the_send_result_is_applied_when_the_result_lands(
    db, functions_server, conversation
):
    sender, lead = conversation
    phone = db.execute("select phone_number from public.leads where id = %s", (lead,)).fetchone()
    mid = queue_sms(db, lead, "Fast callback")
    db.execute("select private.prepare_send(%s, 'test')", (mid,))
    sid = new_sid()
    params = _status(sender, phone["phone_number"], sid, "undelivered", ErrorCode="30003")
    assert post(functions_server.twilio_webhook, params).status_code == 200
    assert message(db, mid)["status"] == "sending"  # nothing knows this sid yet
    db.execute("select private.record_send_result(%s, %s, 'queued')", (mid, sid))
    row = message(db, mid)
    assert (row["status"], row["error_code"]) == ("undelivered", 30003)


def test_not_a_post_or_not_a_form_is_refused(functions_server):
    url = functions_server.twilio_webhook
    assert httpx.get(url).status_code == 405
    assert httpx.post(url, json={"MessageSid": "SM1"}).status_code == 415
    assert httpx.get(functions_server.base_url + "/no-such-function").status_code == 404


# ------------------------------------------------------------------ odd bytes, missing From


def post_raw(url: str, raw: str) -> httpx.Response:
    """POSTs a form body exactly as given (percent-encodings included), signed over the fields
    as a WHATWG form parser decodes them (invalid UTF-8 becomes U+FFFD)."""
    fields = dict(parse_qsl(raw, keep_blank_values=True, errors="replace"))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": sign(LOCAL_AUTH_TOKEN, url, fields),
    }
    return httpx.post(url, content=raw.encode("ascii"), headers=headers, timeout=10)


@pytest.mark.parametrize(
    ("body", "stored"),
    [
        ("Yes\x00please call", "Yes\ufffdplease call"),  # was a 500 and the reply was lost
        ("\x00", "\ufffd"),
        ("Call me \x01\x07\x1b\x7f today", "Call me \x01\x07\x1b\x7f today"),
        ("%caf%E9%20ok", "caf\ufffd ok"),  # latin-1, not UTF-8
        ("%%ED%A0%80 lone surrogate", "\ufffd\ufffd\ufffd lone surrogate"),  # CESU-8
        ("%%C0%80 overlong NUL", "\ufffd\ufffd overlong NUL"),
    ],
)
def test_odd_bytes_in_a_signed_reply_are_stored_safely_and_never_lost(
    db, functions_server, conversation, body, stored
):
    sender, lead = conversation
    url = functions_server.twilio_webhook
    if body.startswith("%"):  # raw percent-encoded bytes after the marker
        params = reply_params(db, lead, sender, "x")
        raw = urlencode({k: v for k, v in params.items() if k != "Body"})
        resp = post_raw(url, raw + "&Body=" + body[1:].replace(" ", "%20"))
    else:
        params = reply_params(db, lead, sender, body)
        resp = post(url, params)
    assert resp.status_code == 200 and resp.text == TWIML, resp.text
    [row] = inbound_rows(db, params["MessageSid"])
    assert (row["lead_id"], row["content"]) == (lead, stored)
    lead_row = db.execute("select * from public.leads where id = %s", (lead,)).fetchone()
    assert lead_row["latest_lead_reply"] == stored and lead_row["contact_status"] == "REPLIED"
    assert len(ai_jobs(db, row["id"])) == 1  # handled like any other reply


@pytest.mark.parametrize("from_", [None, "", "   "])
def test_an_inbound_message_without_from_is_400_and_stores_nothing(
    db, functions_server, conversation, from_
):
    sender, lead = conversation
    params = reply_params(db, lead, sender, "Who is this?")
    if from_ is None:
        del params["From"]
    else:
        params["From"] = from_
    resp = post(functions_server.twilio_webhook, params)
    assert resp.status_code == 400, resp.text
    assert inbound_rows(db, params["MessageSid"]) == []
    assert (
        db.execute(
            "select count(*) as n from private.unmatched_inbound where message_sid = %s",
            (params["MessageSid"],),
        ).fetchone()["n"]
        == 0
    )


def test_the_sql_refuses_an_inbound_message_without_from_too(db, conversation):
    sender, lead = conversation
    params = reply_params(db, lead, sender, "Who is this?")
    del params["From"]
    with pytest.raises(psycopg.Error) as caught:
        db.execute("select private.ingest_twilio_webhook(%s::jsonb)", (json.dumps(params),))
    assert caught.value.sqlstate == "PGRST"
    assert json.loads(caught.value.diag.message_detail or "{}")["status"] == 400
    assert json.loads(caught.value.diag.message_primary or "{}")["code"] == "VALIDATION_ERROR"
    assert inbound_rows(db, params["MessageSid"]) == []
