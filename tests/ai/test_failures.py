"""When Claude misbehaves: malformed output is asked for again and never sent; timeouts, 429
and 5xx are retried (SDK, then the job queue); after the last attempt a person is asked to
take over."""

from __future__ import annotations

from tests.support.ai import (
    ai_messages,
    claude_client,
    inbound,
    lead,
    make_lead,
    make_world,
    notifications,
    run_jobs,
)


def _limit_attempts(db, n: int) -> None:
    db.execute("update private.jobs set max_attempts = %s where kind = 'ai.reply'", (n,))


def test_malformed_output_is_retried_and_never_sent(db, db_url, ai_settings, claude):
    world = make_world(db)
    lead_id = make_lead(db, world)
    inbound(db, world, lead_id, "Who is this?")
    claude.malformed_next()  # confidence 7, empty reply, booking without a slot
    (outcome,) = run_jobs(db_url, ai_settings, claude=claude)
    assert outcome.result["status"] == "sent" and outcome.result["claude_calls"] == 2
    (msg,) = ai_messages(db, lead_id)
    assert msg["content"] and msg["ai_metadata"]["rejected_outputs"] == 1
    assert 0 <= msg["ai_confidence"] <= 1


def test_answer_without_the_tool_call_is_rejected(db, db_url, ai_settings, claude):
    world = make_world(db)
    lead_id = make_lead(db, world)
    inbound(db, world, lead_id, "Who is this?")
    claude.no_tool_next(times=3)  # every re-ask within the attempt fails
    _limit_attempts(db, 1)
    (outcome,) = run_jobs(db_url, ai_settings, claude=claude)
    assert outcome.status == "dead" and "MalformedOutput" in outcome.error
    assert ai_messages(db, lead_id) == []
    assert lead(db, lead_id)["conversation_status"] == "needs_human"


def test_overloaded_then_ok_is_retried_by_the_sdk(db, db_url, ai_settings, claude):
    world = make_world(db)
    lead_id = make_lead(db, world)
    inbound(db, world, lead_id, "Who is this?")
    claude.fail_next(529)
    claude.fail_next(429, retry_after=0)
    client = claude_client(claude, max_retries=2)
    (outcome,) = run_jobs(db_url, ai_settings, claude=claude, anthropic=client)
    assert outcome.result["status"] == "sent"
    assert len(claude.requests) == 3 and len(ai_messages(db, lead_id)) == 1


def test_timeout_is_a_retryable_job_failure(db, db_url, ai_settings, claude):
    world = make_world(db)
    lead_id = make_lead(db, world)
    inbound(db, world, lead_id, "Who is this?")
    claude.delay_next(1.5)
    client = claude_client(claude, timeout=0.3)
    outcomes = run_jobs(db_url, ai_settings, claude=claude, anthropic=client)
    assert [o.status for o in outcomes] == ["retry", "done"]
    assert "APITimeoutError" in outcomes[0].error
    assert len(ai_messages(db, lead_id)) == 1
    assert lead(db, lead_id)["conversation_status"] == "active"  # recovered: nobody paged


def test_server_errors_until_the_last_attempt_flag_the_conversation(
    db, db_url, ai_settings, claude
):
    world = make_world(db)
    lead_id = make_lead(db, world)
    inbound(db, world, lead_id, "Who is this?")
    _limit_attempts(db, 3)
    claude.fail_next(500, times=10)
    outcomes = run_jobs(db_url, ai_settings, claude=claude)
    assert [o.status for o in outcomes] == ["retry", "retry", "dead"]
    assert ai_messages(db, lead_id) == []
    row = lead(db, lead_id)
    assert row["conversation_status"] == "needs_human" and not row["manual_mode"]
    assert notifications(db, world.client_id).count("AI could not answer a lead") == 1
    # The next message from the lead is left to the person now looking at it.
    inbound(db, world, lead_id, "Hello?")
    (later,) = run_jobs(db_url, ai_settings, claude=claude)
    assert later.result == {"status": "skipped", "reason": "needs_human"}


def test_bad_request_is_permanent_and_flags_at_once(db, db_url, ai_settings, claude):
    world = make_world(db)
    lead_id = make_lead(db, world)
    inbound(db, world, lead_id, "Who is this?")
    claude.fail_next(400)
    (outcome,) = run_jobs(db_url, ai_settings, claude=claude)
    assert outcome.status == "dead"
    assert lead(db, lead_id)["conversation_status"] == "needs_human"
