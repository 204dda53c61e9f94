"""Opt-out in every AI mode: the deterministic phrase set decides first in the ingest (measured
on the labelled set), the AI classifies replies in manual/off mode, and an explicit "don't text
me again" is a revocation even when it comes with "not interested"."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.outreach import optout_data
from tests.support.ai import (
    ai_messages,
    inbound,
    lead,
    make_lead,
    make_world,
    notifications,
    run_jobs,
)

# The AI layer runs ai.reply jobs with run_jobs, which claims every queued AI job.
pytestmark = pytest.mark.usefixtures("empty_ai_queue")

REPLIES = optout_data.load()


def _predict(db: Any, function: str, texts: list[str]) -> list[bool]:
    rows = db.execute(
        f"select {function}(t) as hit"
        " from unnest(%s::text[]) with ordinality as x(t, i) order by i",
        (texts,),
    ).fetchall()
    return [bool(r["hit"]) for r in rows]


def test_labelled_set_is_large_and_balanced():
    opt_outs = sum(r.is_opt_out for r in REPLIES)
    assert len(REPLIES) >= 300
    assert 0.4 <= opt_outs / len(REPLIES) <= 0.6
    assert {"hard_negative_stop", "not_interested_revocation", "spanish", "polish", "welsh"} <= {
        r.category for r in REPLIES
    }


def test_deterministic_layer_alone_meets_the_targets_on_the_labelled_set(db):
    # The whole set through the phrase set in one statement, as the ingest reads each message.
    predicted = _predict(db, "private.is_opt_out_text", [r.text for r in REPLIES])
    got = optout_data.figures(REPLIES, predicted)
    missed = [r.text for r, p in zip(REPLIES, predicted, strict=True) if r.is_opt_out and not p]
    wrong = [r.text for r, p in zip(REPLIES, predicted, strict=True) if p and not r.is_opt_out]
    assert got.recall >= 0.99, (str(got), missed)
    assert got.false_opt_out_rate <= 0.01, (str(got), wrong)
    # The old rule (whole-message keywords only) missed about half: the set does test something.
    old = _predict(db, "'STOP' = private.sms_keyword", [r.text for r in REPLIES])
    assert optout_data.figures(REPLIES, old).recall < 0.5


def test_normalised_text_and_named_rule(db):
    row = db.execute(
        "select private.opt_out_normalise('  STOOOOP!!! 😡 Don\u2019t  text me\u2026 ') as n,"
        " (select reason from private.opt_out_match('Delete my details please')) as reason,"
        " (select count(*) from private.opt_out_match('Can you stop by at 2?')) as stop_by"
    ).fetchone()
    assert row["n"] == "stop dont text me"
    assert "delete my details" in row["reason"]
    assert row["stop_by"] == 0


SAMPLE_OPT_OUTS = [
    "stop please",
    "no. stop.",
    "Unsub pls",
    "no more texts thanks",
    "Delete my details please",
    "Not interested, don't text again",
    "Baja por favor",
    "wypisz mnie",
    "Dim mwy",
]
SAMPLE_NEGATIVES = [
    "Stop by at 2 if you like",
    "don't stop",
    "unsubscribe from what? I'd like a quote",
]


@pytest.mark.parametrize(
    ("mode", "manual"), [("auto", False), ("suggest", False), ("off", False), ("auto", True)]
)
def test_phrase_set_opts_out_through_the_ingest_in_every_mode(db, mode, manual):
    world = make_world(db, dataset_ai_mode=mode)
    outcomes = {}
    for text in SAMPLE_OPT_OUTS + SAMPLE_NEGATIVES:
        lead_id = make_lead(db, world)
        if manual:
            db.execute("update public.leads set manual_mode = true where id = %s", (lead_id,))
        outcomes[text] = (lead_id, inbound(db, world, lead_id, text))
    for text in SAMPLE_OPT_OUTS:
        lead_id, result = outcomes[text]
        assert result["action"] == "opted_out", text
        row = lead(db, lead_id)
        assert (row["opted_out"], row["status"]) == (True, "OPTED_OUT"), text
        sup = db.execute(
            "select source, reason from public.suppressions where client_id = %s"
            " and phone_number = %s",
            (world.client_id, row["phone_number"]),
        ).fetchone()
        assert sup["source"] == "inbound_phrase" and "opt-out rule" in sup["reason"], text
        jobs = db.execute(
            "select count(*) as n from private.jobs where kind like 'ai.%%'"
            " and payload ->> 'inbound_message_id' = %s",
            (str(result["message_id"]),),
        ).fetchone()["n"]
        assert jobs == 0, f"no AI job for an opt-out: {text}"
    for text in SAMPLE_NEGATIVES:
        lead_id, result = outcomes[text]
        assert not lead(db, lead_id)["opted_out"], text
        expected = "ai_reply" if mode in ("auto", "suggest") and not manual else "notified"
        assert result["action"] == expected, text
    titles = notifications(db, world.client_id)
    assert sum(t.startswith("Opted out: ") for t in titles) >= 1


def _classify(db_url: str, ai_settings: Any, claude: Any):
    return run_jobs(db_url, ai_settings, claude=claude, kinds=("ai.classify_opt_out",))


@pytest.mark.parametrize("manual", [False, True], ids=["ai_off", "manual_mode"])
def test_ai_classifies_replies_in_off_mode_and_suppresses_a_confident_revocation(
    db, db_url, ai_settings, claude, manual
):
    world = make_world(db, dataset_ai_mode="auto" if manual else "off")
    polite, question = make_lead(db, world, "Sam"), make_lead(db, world, "Alex")
    if manual:
        db.execute(
            "update public.leads set manual_mode = true where id = any(%s)", ([polite, question],)
        )
    # Neither is in the phrase set: the AI layer decides.
    first = inbound(db, world, polite, "Kindly spare me any further messages")
    second = inbound(db, world, question, "Kindly call me after 5")
    assert first["action"] == second["action"] == "notified"
    assert not lead(db, polite)["opted_out"]

    outcomes = _classify(db_url, ai_settings, claude)
    assert sorted(o.result["status"] for o in outcomes) == ["no_opt_out", "opted_out"]
    request = claude.requests[0].body
    assert request["tool_choice"] == {"type": "tool", "name": "classify_opt_out"}
    assert request["tools"][0]["strict"] is True

    assert lead(db, polite)["opted_out"] and lead(db, polite)["status"] == "OPTED_OUT"
    assert not lead(db, question)["opted_out"]
    assert ai_messages(db, polite) == [] and ai_messages(db, question) == []  # no reply
    assert "Opted out: Sam Taylor" in notifications(db, world.client_id)
    stored = db.execute(
        "select ai_metadata -> 'opt_out_classification' as c from public.messages where id = %s",
        (first["message_id"],),
    ).fetchone()["c"]
    assert stored["opt_out"] is True and stored["confidence"] >= 0.8


def test_classification_can_be_switched_off_per_client(db):
    world = make_world(db, dataset_ai_mode="off", ai_opt_out_classification=False)
    result = inbound(db, world, make_lead(db, world), "Kindly spare me any further messages")
    assert result["action"] == "notified"
    assert (
        db.execute(
            "select count(*) as n from private.jobs where kind = 'ai.classify_opt_out'"
            " and client_id = %s",
            (world.client_id,),
        ).fetchone()["n"]
        == 0
    )


@pytest.mark.parametrize("mode", ["auto", "suggest"])
def test_not_interested_with_no_more_texts_is_a_revocation_for_the_agent(
    db, db_url, ai_settings, claude, mode
):
    world = make_world(db, dataset_ai_mode=mode)
    lead_id = make_lead(db, world)
    # Past the phrase set, so the reply decision has to see it (it used to answer "No problem
    # at all, Sam..." and leave the lead messageable).
    received = inbound(db, world, lead_id, "Not interested, please spare me further texts")
    assert received["action"] == "ai_reply"
    (outcome,) = run_jobs(db_url, ai_settings, claude=claude)
    assert outcome.result["status"] == "opted_out"
    row = lead(db, lead_id)
    assert (row["opted_out"], row["status"]) == (True, "OPTED_OUT")
    assert ai_messages(db, lead_id) == []
    assert "Opted out: Sam Taylor" in notifications(db, world.client_id)


def test_signed_webhook_through_the_edge_function_opts_out_a_phrase(db, functions_server):
    from dbr.dev.standins.twilio import inbound_params, sign
    from dbr.providers.twilio import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
    from tests.support.ai import lead_phone

    world = make_world(db, dataset_ai_mode="off")
    lead_id = make_lead(db, world)
    url = functions_server.twilio_webhook
    params = inbound_params(
        account_sid=LOCAL_ACCOUNT_SID,
        from_=lead_phone(db, lead_id),
        to=world.number,
        body="No. Stop.",
    )
    resp = httpx.post(
        url, data=params, headers={"X-Twilio-Signature": sign(LOCAL_AUTH_TOKEN, url, params)}
    )
    assert resp.status_code == 200
    row = lead(db, lead_id)
    assert (row["opted_out"], row["status"]) == (True, "OPTED_OUT")
