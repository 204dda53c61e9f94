"""ai.reply end to end against the Anthropic and Cal.com stand-ins: what a lead and the
staff would notice (a reply sent or not, a draft, a booking, a handover, an opt-out)."""

from __future__ import annotations

from typing import Any

from dbr.dev.standins.anthropic import AnthropicStandin
from tests.support import acting_as, make_user
from tests.support.ai import (
    HookedAnthropic,
    ai_messages,
    claude_client,
    conversation_of,
    inbound,
    lead,
    make_lead,
    make_world,
    notifications,
    run_jobs,
)


def _run(db_url: str, ai_settings: Any, claude: AnthropicStandin, cal: Any = None, **kw: Any):
    return run_jobs(db_url, ai_settings, claude=claude, cal=cal, **kw)


def test_reply_is_sent_with_decision_usage_and_status(db, db_url, ai_settings, claude):
    world = make_world(db)
    lead_id = make_lead(db, world)
    received = inbound(db, world, lead_id, "Hmm, who is this again?")
    assert received["action"] == "ai_reply"

    (outcome,) = _run(db_url, ai_settings, claude)
    assert outcome.status == "done" and outcome.result["status"] == "sent"

    (msg,) = ai_messages(db, lead_id)
    assert msg["status"] == "pending" and msg["category"] == "ai_response" and msg["ai_generated"]
    assert "Sam" in msg["content"]
    meta = msg["ai_metadata"]
    assert meta["inbound_message_id"] == str(received["message_id"])
    assert meta["prompt_version"] == 1 and meta["model"] == "claude-sonnet-4-6"
    assert set(meta["usage"]) == {
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "output_tokens",
    }
    assert msg["ai_confidence"] is not None and msg["ai_reasoning"]
    # The job's sms.send is queued: the AI uses the one send path.
    assert (
        db.execute(
            "select count(*) as n from private.jobs where idempotency_key = %s",
            (f"sms.send:{msg['id']}",),
        ).fetchone()["n"]
        == 1
    )
    row = lead(db, lead_id)
    assert row["status"] == "REPLIED" and row["ai_consecutive_messages"] == 1


def test_cache_breakpoint_after_stable_prefix_and_second_turn_reads_it(
    db, db_url, ai_settings, claude
):
    world = make_world(db)
    first, second = make_lead(db, world, "Sam"), make_lead(db, world, "Alex")
    inbound(db, world, first, "Sorry, which company is texting me?")
    inbound(db, world, second, "Remind me what this was about?")
    _run(db_url, ai_settings, claude)

    a, b = claude.requests
    system = a.body["system"]
    assert [bool(block.get("cache_control")) for block in system] == [True, True]
    assert system[0]["text"].rstrip().endswith("</company>")  # no lessons yet: company closes it
    assert "which company is texting me" not in system[0]["text"] + system[1]["text"]
    assert "First name: Sam" in system[1]["text"]
    # Nothing volatile is cached: the conversation sits after the last breakpoint.
    assert all("cache_control" not in m for m in a.body["messages"])
    assert isinstance(a.body["messages"][0]["content"], str)
    assert a.body["tool_choice"] == {"type": "tool", "name": "record_reply"}
    assert a.body["tools"][0]["strict"] is True
    # The shared prefix written by the first lead is read by the second.
    assert a.usage["cache_creation_input_tokens"] > 1024
    assert b.usage["cache_read_input_tokens"] >= 1024
    assert b.usage["cache_creation_input_tokens"] < 300  # only the second lead's own facts
    assert system[0]["text"] == b.body["system"][0]["text"]


def test_lessons_made_live_appear_in_the_next_request(db, db_url, ai_settings, claude):
    world = make_world(db)
    lead_id = make_lead(db, world)
    editor = make_user(db, world.client_id, "manager", can_edit_lessons=True)
    with acting_as(db, editor) as conn:
        lesson = conn.execute(
            "insert into public.lessons (title, lesson_type, priority, correct_response) values"
            " ('Offer Saturday mornings', 'timing', 9, 'Mention Saturday slots') returning id"
        ).fetchone()["id"]
    inbound(db, world, lead_id, "Who is this?")
    _run(db_url, ai_settings, claude)
    assert "Offer Saturday mornings" not in claude.requests[-1].system_text  # not live yet

    with acting_as(db, world.admin) as conn:
        live = conn.execute("select public.make_prompt_live('reply') as r").fetchone()["r"]
    assert live["changes_from_previous"]["lessons_added"] == [str(lesson)]

    inbound(db, world, lead_id, "Ok and what do you want?")
    _run(db_url, ai_settings, claude)
    request = claude.requests[-1]
    stable = request.body["system"][0]["text"]
    assert "Offer Saturday mornings" in stable and f'<lesson id="{lesson}"' in stable
    assert stable.rstrip().endswith("</lessons>")  # the breakpoint closes system + lessons
    (_, second) = ai_messages(db, lead_id)
    assert second["ai_metadata"]["prompt_version"] == 2
    assert second["ai_metadata"]["lessons_applied"] == [str(lesson)]
    assert (
        db.execute("select times_applied from public.lessons where id = %s", (lesson,)).fetchone()[
            "times_applied"
        ]
        == 1
    )


def test_manual_mode_stops_replies_including_queued_jobs(db, db_url, ai_settings, claude):
    world = make_world(db)
    lead_id = make_lead(db, world)
    inbound(db, world, lead_id, "Yes I'm interested")  # ai.reply queued (not run yet)
    with acting_as(db, world.admin) as conn:
        conn.execute("select public.set_lead_manual_mode(%s, true)", (lead_id,))

    (outcome,) = _run(db_url, ai_settings, claude)
    assert outcome.result == {"status": "skipped", "reason": "manual_mode"}
    assert claude.requests == [] and ai_messages(db, lead_id) == []


def test_manual_mode_switched_on_while_claude_thinks_sends_nothing(db, db_url, ai_settings, claude):
    world = make_world(db)
    lead_id = make_lead(db, world)
    inbound(db, world, lead_id, "Who is this?")

    def take_over() -> None:
        db.execute("update public.leads set manual_mode = true where id = %s", (lead_id,))

    hooked = HookedAnthropic(claude_client(claude), take_over)
    (outcome,) = _run(db_url, ai_settings, claude, anthropic=hooked)
    assert outcome.result["status"] == "skipped" and outcome.result["reason"] == "manual_mode"
    assert len(claude.requests) == 1 and ai_messages(db, lead_id) == []


def test_second_message_during_generation_gets_one_answer(db, db_url, ai_settings, claude):
    world = make_world(db)
    lead_id = make_lead(db, world)
    first = inbound(db, world, lead_id, "Who is this?")
    later: dict[str, Any] = {}

    def lead_writes_again() -> None:
        later.update(inbound(db, world, lead_id, "Actually, can you call me on Friday?"))

    hooked = HookedAnthropic(claude_client(claude), lead_writes_again)
    outcomes = _run(db_url, ai_settings, claude, anthropic=hooked)

    by_result = sorted(o.result["status"] for o in outcomes)
    assert by_result == ["sent", "superseded"]
    (answer,) = ai_messages(db, lead_id)
    assert answer["ai_metadata"]["inbound_message_id"] == str(later["message_id"])
    assert answer["ai_metadata"]["inbound_message_id"] != str(first["message_id"])
    # The answer was written with both messages in view.
    latest = claude.requests[-1].user_text
    assert "Who is this?" in latest and "call me on Friday" in latest


def test_duplicate_job_for_the_same_message_answers_once(db, db_url, ai_settings, claude):
    world = make_world(db)
    lead_id = make_lead(db, world)
    received = inbound(db, world, lead_id, "Who is this?")
    _run(db_url, ai_settings, claude)
    # A redelivered job (e.g. the worker died after the commit, before completing the job).
    db.execute(
        "select private.enqueue_job('ai.reply', %s::jsonb, now(), 'again')",
        (
            f'{{"conversation_id": "{conversation_of(db, lead_id)}",'
            f' "inbound_message_id": "{received["message_id"]}"}}',
        ),
    )
    (outcome,) = _run(db_url, ai_settings, claude)
    assert outcome.result["status"] == "already_answered"
    assert len(ai_messages(db, lead_id)) == 1


def test_opt_out_intent_opts_out_like_stop(db, db_url, ai_settings, claude):
    world = make_world(db)
    lead_id = make_lead(db, world)
    # Worded past the phrase set (which opts "stop texting me" out before any AI job): the
    # reply decision's opt_out_intent decides.
    received = inbound(db, world, lead_id, "Honestly I'd rather not hear from you lot again")
    assert received["action"] == "ai_reply"
    (outcome,) = _run(db_url, ai_settings, claude)
    assert outcome.result["status"] == "opted_out"
    row = lead(db, lead_id)
    assert row["opted_out"] and row["status"] == "OPTED_OUT"
    assert (
        db.execute(
            "select source from public.suppressions where client_id = %s and phone_number = %s",
            (world.client_id, row["phone_number"]),
        ).fetchone()["source"]
        == "ai"
    )
    assert ai_messages(db, lead_id) == []


def test_rude_message_hands_over_to_a_person(db, db_url, ai_settings, claude):
    world = make_world(db)
    lead_id = make_lead(db, world)
    inbound(db, world, lead_id, "This is a scam, I will report you")
    (outcome,) = _run(db_url, ai_settings, claude)
    assert outcome.result["status"] == "handed_over"
    row = lead(db, lead_id)
    assert row["manual_mode"] and row["conversation_status"] == "needs_human"
    assert "Conversation needs a person" in notifications(db, world.client_id)
    (holding,) = ai_messages(db, lead_id)  # the short holding message still goes out
    assert "colleague" in holding["content"]
    assert holding["category"] == "system"  # not held back by the manual mode it switched on


def test_suggest_mode_stores_a_draft_instead_of_sending(db, db_url, ai_settings, claude):
    world = make_world(db, dataset_ai_mode="suggest")
    lead_id = make_lead(db, world)
    inbound(db, world, lead_id, "Who is this?")
    (outcome,) = _run(db_url, ai_settings, claude)
    assert outcome.result["status"] == "drafted"
    (draft,) = ai_messages(db, lead_id)
    assert draft["status"] == "draft" and draft["ai_generated"]
    assert (
        db.execute(
            "select count(*) as n from private.jobs where kind = 'sms.send' and client_id = %s",
            (world.client_id,),
        ).fetchone()["n"]
        == 0
    )
    assert "AI draft waiting for approval" in notifications(db, world.client_id)
    # The draft shows in the conversation the frontend reads.
    with acting_as(db, world.admin) as conn:
        convo = conn.execute(
            "select public.get_conversation(%s) as r", (conversation_of(db, lead_id),)
        ).fetchone()["r"]
    assert [m["status"] for m in convo["messages"]][-1] == "draft"


def test_ai_off_for_the_client_means_no_reply(db, db_url, ai_settings, claude):
    world = make_world(db, ai_mode="off")
    lead_id = make_lead(db, world)
    assert inbound(db, world, lead_id, "Who is this?")["action"] == "notified"
    assert _run(db_url, ai_settings, claude) == []
    assert claude.requests == []


def test_safeguard_hands_over_after_the_cap(db, db_url, ai_settings, claude):
    world = make_world(db, ai_max_consecutive_messages=2)
    lead_id = make_lead(db, world)
    for text in ("Who is this?", "Hmm ok", "And then?"):
        inbound(db, world, lead_id, text)
        _run(db_url, ai_settings, claude)
    assert len(ai_messages(db, lead_id)) == 2
    row = lead(db, lead_id)
    assert row["manual_mode"] and row["conversation_status"] == "needs_human"
    assert "Conversation needs a person" in notifications(db, world.client_id)
    assert len(claude.requests) == 2  # the third turn never reached Claude


def test_staff_message_resets_the_safeguard(db, db_url, ai_settings, claude):
    world = make_world(db, ai_max_consecutive_messages=1)
    lead_id = make_lead(db, world)
    inbound(db, world, lead_id, "Who is this?")
    _run(db_url, ai_settings, claude)
    with acting_as(db, world.admin) as conn:
        conn.execute("select public.send_message(%s, 'Hi, Jo here from the team!')", (lead_id,))
    assert lead(db, lead_id)["ai_consecutive_messages"] == 0
    inbound(db, world, lead_id, "Hi Jo")
    (outcome,) = _run(db_url, ai_settings, claude)
    assert outcome.result["status"] == "sent"


def test_a_number_on_the_suppression_list_gets_no_ai_answer(db, db_url, ai_settings, claude):
    world = make_world(db)
    lead_id = make_lead(db, world)
    inbound(db, world, lead_id, "Yes, tell me more")  # ai.reply queued (not run yet)
    # Staff put the number on the do-not-contact list; the lead row itself is not flagged.
    db.execute(
        "insert into public.suppressions (client_id, phone_number, reason, source)"
        " values (%s, %s, 'asked on the phone', 'staff')",
        (world.client_id, lead(db, lead_id)["phone_number"]),
    )
    (outcome,) = _run(db_url, ai_settings, claude)
    assert outcome.status == "done"
    assert outcome.result == {"status": "skipped", "reason": "opted_out"}
    assert claude.requests == [] and ai_messages(db, lead_id) == []
