"""Drafts for staff: POST /api/messages/ai-generate (waits for the ai.draft worker, cached per
conversation state, regenerate on request) and the ai_send RPC (messages/ai-send)."""

from __future__ import annotations

import pytest

import api.routes.messages as messages_route
from tests.support import acting_as, make_client, make_user, refusal
from tests.support.ai import (
    BackgroundJobs,
    ai_messages,
    conversation_of,
    inbound,
    make_lead,
    make_world,
)


@pytest.fixture
def staffed(db):
    """A lead who replied while staff handle the conversation (manual mode)."""
    world = make_world(db)
    lead_id = make_lead(db, world)
    db.execute("update public.leads set manual_mode = true where id = %s", (lead_id,))
    inbound(db, world, lead_id, "Hmm, who is this again?")
    return world, lead_id, conversation_of(db, lead_id)


def _generate(api, token_for, user, lead_id, conversation_id, **extra):
    body = {"lead_id": str(lead_id), "conversation_id": str(conversation_id), **extra}
    return api.post("/api/messages/ai-generate", json=body, headers=token_for(user))


def test_generate_cache_regenerate_and_approve(
    db, db_url, api, token_for, ai_settings, claude, staffed
):
    world, lead_id, conversation_id = staffed
    with BackgroundJobs(db_url, ai_settings, claude=claude, kinds=("ai.draft",)):
        first = _generate(api, token_for, world.admin, lead_id, conversation_id)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["preview"] is True
    contract_keys = {"content", "confidence", "reasoning", "lessons_applied"}
    assert set(body["generated_message"]) == contract_keys
    assert "Sam" in body["generated_message"]["content"]
    (draft,) = ai_messages(db, lead_id)
    assert draft["status"] == "draft" and str(draft["id"]) == body["draft_message_id"]
    assert len(claude.requests) == 1

    # Same conversation state: the stored draft comes back without calling Claude.
    again = _generate(api, token_for, world.admin, lead_id, conversation_id)
    assert again.json() == body and len(claude.requests) == 1

    with BackgroundJobs(db_url, ai_settings, claude=claude, kinds=("ai.draft",)):
        fresh = _generate(
            api, token_for, world.admin, lead_id, conversation_id, force_regenerate=True
        )
    assert fresh.status_code == 200 and len(claude.requests) == 2
    (draft,) = ai_messages(db, lead_id)  # the new draft replaced the old one
    assert str(draft["id"]) == fresh.json()["draft_message_id"] != body["draft_message_id"]

    rep = make_user(db, world.client_id, "sales_rep")
    with acting_as(db, rep) as conn:
        sent = conn.execute(
            "select public.ai_send(%s, %s) as r", (lead_id, draft["id"])
        ).fetchone()["r"]
    message = sent["message"]
    assert message["status"] == "pending" and message["content"].startswith(draft["content"])
    (msg,) = ai_messages(db, lead_id)
    assert msg["category"] == "human_manual" and msg["ai_generated"] and msg["sent_by"] == rep
    assert msg["ai_metadata"]["approved_by"] == str(rep) and msg["ai_metadata"]["edited"] is False
    assert (
        db.execute(
            "select count(*) as n from private.jobs where idempotency_key = %s",
            (f"sms.send:{msg['id']}",),
        ).fetchone()["n"]
        == 1
    )


def test_edited_draft_keeps_the_original(db, db_url, api, token_for, ai_settings, claude, staffed):
    world, lead_id, conversation_id = staffed
    with BackgroundJobs(db_url, ai_settings, claude=claude, kinds=("ai.draft",)):
        draft_id = _generate(api, token_for, world.admin, lead_id, conversation_id).json()[
            "draft_message_id"
        ]
    with acting_as(db, world.admin) as conn:
        conn.execute(
            "select public.ai_send(%s, %s, 'Hi Sam, Jo from Acme here!')", (lead_id, draft_id)
        )
    err = refusal(db, world.admin, "select public.ai_send(%s, %s)", lead_id, draft_id)
    assert (err.status, err.code) == (409, "CONFLICT")  # sent already
    (msg,) = ai_messages(db, lead_id)
    assert msg["content"].startswith("Hi Sam, Jo from Acme here!")
    assert msg["ai_metadata"]["edited"] is True and msg["ai_metadata"]["original_content"]


def test_ai_send_refusals(db, staffed):
    world, lead_id, _ = staffed
    reader = make_user(db, world.client_id, "read_only")
    outsider = make_user(db, make_client(db, "Other"), "admin")
    cases = [
        (world.admin, (lead_id, None, None), (400, "VALIDATION_ERROR")),
        (reader, (lead_id, None, "hello"), (403, "FORBIDDEN")),
        (outsider, (lead_id, None, "hello"), (404, "NOT_FOUND")),
    ]
    for user, args, expected in cases:
        err = refusal(db, user, "select public.ai_send(%s, %s, %s)", *args)
        assert (err.status, err.code) == expected
    db.execute("update public.leads set opted_out = true where id = %s", (lead_id,))
    err = refusal(db, world.admin, "select public.ai_send(%s, null, 'hello')", lead_id)
    assert (err.status, err.code) == (403, "FORBIDDEN")


def test_generate_refusals(db, api, token_for, staffed, monkeypatch):
    world, lead_id, conversation_id = staffed
    reader = make_user(db, world.client_id, "read_only")
    outsider = make_user(db, make_client(db, "Other"), "admin")
    other_lead = make_lead(db, world, "Alex")
    assert _generate(api, token_for, reader, lead_id, conversation_id).status_code == 403
    assert _generate(api, token_for, outsider, lead_id, conversation_id).status_code == 404
    assert _generate(api, token_for, world.admin, other_lead, conversation_id).status_code == 404
    bad = api.post(
        "/api/messages/ai-generate", json={"lead_id": "x"}, headers=token_for(world.admin)
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "VALIDATION_ERROR"

    monkeypatch.setattr(messages_route, "DRAFT_TIMEOUT_SECONDS", 0.3)
    slow = _generate(api, token_for, world.admin, lead_id, conversation_id)  # no worker running
    assert slow.status_code == 504 and slow.json()["error"]["code"] == "TIMEOUT"

    db.execute("update public.leads set opted_out = true where id = %s", (lead_id,))
    assert _generate(api, token_for, world.admin, lead_id, conversation_id).status_code == 400
