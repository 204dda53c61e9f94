"""POST /api/sophie/analyze-message, analyze-conversation and detect-patterns: the routes wait
for the worker and answer with the findings; refusals by role, tenant and budget; patterns
become insights only when significant."""

from __future__ import annotations

import uuid

import pytest

import api.routes.sophie as sophie_route
from tests.support import make_user
from tests.support.ai import conversation_of, make_lead, make_world
from tests.support.sophie import BackgroundSophie, insights, outbound


def _post(api, token_for, user, path, body):
    return api.post(f"/api/sophie/{path}", json=body, headers=token_for(user))


def test_analyze_message_and_conversation_answer_with_findings(
    db, db_url, api, token_for, ai_settings, claude
):
    world = make_world(db)
    lead_id = make_lead(db, world)
    mid = outbound(db, lead_id, "Dear customer, act now: last chance for this price!")
    db.execute(  # only the reviews this test asks for
        "update private.jobs set status = 'canceled' where kind = 'sophie.analyze'"
        " and client_id = %s",
        (world.client_id,),
    )
    with BackgroundSophie(db_url, ai_settings, claude=claude, kinds=("sophie.analyze",)):
        got = _post(api, token_for, world.admin, "analyze-message", {"message_id": str(mid)})
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["analysis"]["scope"] == "message"
        assert 0 < body["analysis"]["quality_score"] < 1
        assert float(body["analysis"]["cost_usd"]) > 0
        assert {i["category"] for i in body["insights"]} == {"tone", "personalization"}
        assert all(i["message_id"] == str(mid) for i in body["insights"])

        thread = _post(
            api,
            token_for,
            world.admin,
            "analyze-conversation",
            {"conversation_id": str(conversation_of(db, lead_id))},
        )
        assert thread.status_code == 200, thread.text
        found = thread.json()
        assert found["analysis"]["scope"] == "conversation"
        # The first message's missing opt-out line is new; the tone findings were stored already.
        assert [i["category"] for i in found["insights"]] == ["compliance"]
        assert found["analysis"]["duplicates"] == 2
    score = db.execute(
        "select quality_score::float as q from public.conversations where lead_id = %s", (lead_id,)
    ).fetchone()["q"]
    assert score == pytest.approx(found["analysis"]["quality_score"])


def test_analyze_refusals(db, api, token_for, monkeypatch):
    world = make_world(db)
    lead_id = make_lead(db, world)
    mid = outbound(db, lead_id, "Hello")
    other = make_world(db)
    reader = make_user(db, world.client_id, "read_only")

    theirs = _post(api, token_for, other.admin, "analyze-message", {"message_id": str(mid)})
    assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "NOT_FOUND"
    ro = _post(api, token_for, reader, "analyze-message", {"message_id": str(mid)})
    assert ro.status_code == 403
    bad = _post(api, token_for, world.admin, "analyze-message", {"message_id": "nope"})
    assert bad.status_code == 400
    unknown = _post(
        api, token_for, world.admin, "analyze-message", {"message_id": str(uuid.uuid4())}
    )
    assert unknown.status_code == 404

    # No worker: the route gives up after its timeout; the job stays queued.
    monkeypatch.setattr(sophie_route, "ANALYSIS_TIMEOUT_SECONDS", 0.3)
    slow = _post(api, token_for, world.admin, "analyze-message", {"message_id": str(mid)})
    assert slow.status_code == 504 and "job_id" in slow.json()["error"]["details"]

    db.execute(
        "insert into private.hourly_budget_uses (bucket, client_id)"
        " select 'sophie_analysis', %s from generate_series(1, 1000)",
        (world.client_id,),
    )
    limited = _post(api, token_for, world.admin, "analyze-message", {"message_id": str(mid)})
    assert limited.status_code == 429 and limited.headers.get("retry-after")


def _dataset_with_outcomes(db, world):
    """30 conversations: 15 where the agent mentioned the payment plan (13 booked), 15 where
    it did not (4 booked). Every agent message ends with a question."""
    for i in range(30):
        plan = i < 15
        booked = i < 13 or 15 <= i < 19
        lead_id = make_lead(db, world, first_name=f"P{i}")
        text = (
            "We also do a monthly payment plan. Shall I book you a call?"
            if plan
            else "Shall I book you a call?"
        )
        outbound(db, lead_id, text)
        db.execute(
            "update public.conversations set message_count = 2, last_message_at = now()"
            " where lead_id = %s",
            (lead_id,),
        )
        if booked:
            db.execute(
                "update public.leads set contact_status = 'CALL_BOOKED' where id = %s", (lead_id,)
            )


def test_detect_patterns_reports_and_raises_only_significant_ones(
    db, db_url, api, token_for, ai_settings, claude
):
    world = make_world(db)
    _dataset_with_outcomes(db, world)
    with BackgroundSophie(db_url, ai_settings, claude=claude, kinds=("sophie.patterns",)):
        got = _post(
            api,
            token_for,
            world.admin,
            "detect-patterns",
            {"dataset_id": str(world.dataset_id), "min_occurrences": 10},
        )
    assert got.status_code == 200, got.text
    patterns = {p["pattern_description"]: p for p in got.json()["patterns"]}
    plan = patterns["The agent mentions a payment plan or monthly payments"]
    assert plan["occurrences"] == 15 and plan["success_rate"] == pytest.approx(13 / 15, abs=1e-4)
    assert plan["recommended_action"] == "adopt" and plan["p_value"] < 0.05
    # Every conversation asks a question: nothing to compare it with, so test_more.
    question = patterns["The agent ends a message with a question"]
    assert question["occurrences"] == 30 and question["recommended_action"] == "test_more"
    assert set(plan) >= {
        "pattern_description",
        "occurrences",
        "success_rate",
        "recommended_action",
        "suggested_lesson",
    }
    (batch,) = claude.batches_api.batches  # the conversations went through one Message Batch
    assert len(batch.requests) == 1
    pattern_insights = [
        i
        for i in insights(db, dataset_id=world.dataset_id)
        if i["pattern_key"].startswith("pattern:")
    ]
    assert [i["title"] for i in pattern_insights] == [
        "Works well: The agent mentions a payment plan or monthly payments"
    ]

    # With a higher bar, the same data is not enough.
    with BackgroundSophie(db_url, ai_settings, claude=claude, kinds=("sophie.patterns",)):
        strict = _post(
            api,
            token_for,
            world.admin,
            "detect-patterns",
            {"dataset_id": str(world.dataset_id), "min_occurrences": 20},
        )
    assert {p["recommended_action"] for p in strict.json()["patterns"]} == {"test_more"}

    other = make_world(db)
    refused = _post(
        api, token_for, other.admin, "detect-patterns", {"dataset_id": str(world.dataset_id)}
    )
    assert refused.status_code == 404
