"""Sophie's reviews end to end: the automatic review of outbound messages through the real
worker handler and the Anthropic SDK against the stand-in, findings stored once, teachings
honoured, bad output never stored, the per-client budget deferring without loss."""

from __future__ import annotations

import pytest

from dbr.sophie.costs import cost_usd
from tests.support import acting_as
from tests.support.ai import conversation_of, make_lead, make_world
from tests.support.sophie import (
    analyses,
    insights,
    outbound,
    run_sophie_jobs,
    sophie_requests,
)


def _first_message(db, lead_id):
    return db.execute(
        "select id from public.messages where lead_id = %s and message_category = 'm1'", (lead_id,)
    ).fetchone()["id"]


def test_an_outbound_message_is_analysed_once(db, db_url, ai_settings, claude):
    world = make_world(db)
    lead_id = make_lead(db, world)
    m1 = _first_message(db, lead_id)
    pending = outbound(db, lead_id, "Are you free on Tuesday?", status="pending")

    outcomes = run_sophie_jobs(db_url, ai_settings, claude=claude)
    assert [o.status for o in outcomes] == ["done"], outcomes
    assert len(sophie_requests(claude)) == 1
    (analysis,) = analyses(db, message_id=m1)
    assert analysis["via"] == "request" and analysis["input_tokens"] > 0
    assert analysis["cost_usd"] == cost_usd(
        analysis["model"],
        {
            k: analysis[k]
            for k in (
                "input_tokens",
                "cache_creation_input_tokens",
                "cache_read_input_tokens",
                "output_tokens",
            )
        },
    )

    # The pending one goes out later, then is delivered: one more review, never two.
    db.execute("update public.messages set status = 'sent' where id = %s", (pending,))
    db.execute("update public.messages set status = 'delivered' where id = %s", (pending,))
    db.execute("update public.messages set status = 'delivered' where id = %s", (m1,))
    run_sophie_jobs(db_url, ai_settings, claude=claude)
    run_sophie_jobs(db_url, ai_settings, claude=claude)
    assert len(sophie_requests(claude)) == 2
    assert len(analyses(db, message_id=m1)) == 1 and len(analyses(db, message_id=pending)) == 1


def test_findings_fill_the_conversation_shape_and_critical_ones_notify(
    db, db_url, ai_settings, claude
):
    world = make_world(db)
    lead_id = make_lead(db, world)
    m1 = _first_message(db, lead_id)
    run_sophie_jobs(db_url, ai_settings, claude=claude)

    (finding,) = insights(db, message_id=m1)
    assert (finding["severity"], finding["category"], finding["pattern_key"]) == (
        "critical",
        "compliance",
        "missing_opt_out",
    )
    # The API contract's conversation shape now carries Sophie's score and feedback for the message.
    with acting_as(db, world.admin) as conn:
        thread = conn.execute(
            "select public.get_conversation(%s) as r", (conversation_of(db, lead_id),)
        ).fetchone()["r"]
    (message,) = [m for m in thread["messages"] if m["id"] == str(m1)]
    assert 0 < message["ai_quality_score"] < 0.7
    assert "opt-out" in message["sophie_feedback"]
    assert message["sophie_feedback_status"] == "issues_found"

    titles = db.execute(
        "select n.title, m.role::text as role from public.notifications n"
        " join public.client_members m on m.user_id = n.user_id"
        " where n.client_id = %s and n.data ->> 'insight_id' = %s",
        (world.client_id, str(finding["id"])),
    ).fetchall()
    assert [(t["title"], t["role"]) for t in titles] == [
        ("Sophie: critical compliance issue", "admin")
    ]


def test_the_same_finding_is_not_stored_twice(db, db_url, ai_settings, claude):
    world = make_world(db)
    lead_id = make_lead(db, world)
    mid = outbound(db, lead_id, "Definately worth a look. Act now, last chance!")
    run_sophie_jobs(db_url, ai_settings, claude=claude)
    first = insights(db, message_id=mid)
    assert {f["pattern_key"] for f in first} == {"misspelling:definately", "pressure_language"}

    # Staff ask for the same message again: Sophie answers the same, nothing new is stored.
    with acting_as(db, world.admin) as conn:
        conn.execute("select public.analyze_message(%s)", (mid,))
    (outcome,) = run_sophie_jobs(db_url, ai_settings, claude=claude)
    assert outcome.result["duplicates"] == 2 and outcome.result["stored"] == 0
    assert insights(db, message_id=mid) == first


@pytest.mark.parametrize("model_honours_teaching", [True, False])
def test_a_disagreed_finding_is_not_raised_again(
    db, db_url, ai_settings, claude, model_honours_teaching
):
    world = make_world(db)
    lead_id = make_lead(db, world)
    run_sophie_jobs(db_url, ai_settings, claude=claude)
    first = outbound(db, lead_id, "Act now and we'll fit them this month.")
    run_sophie_jobs(db_url, ai_settings, claude=claude)
    (pressure,) = insights(db, message_id=first)
    with acting_as(db, world.admin) as conn:
        conn.execute(
            "select public.disagree_insight(%s, %s, %s)",
            (pressure["id"], "Our customers like urgency.", "Keep the direct close."),
        )

    # Sophie's prompt now carries the teaching; whether or not the model honours it, the
    # same kind of finding is not raised again.
    claude.sophie_ignore_teachings = not model_honours_teaching
    second = outbound(db, lead_id, "Act now, Sam, there's a slot on Friday. Definately worth it.")
    (outcome,) = run_sophie_jobs(db_url, ai_settings, claude=claude)
    request = sophie_requests(claude)[-1]
    assert 'pattern="pressure_language"' in request.system_text
    assert "Our customers like urgency." in request.system_text
    assert [f["pattern_key"] for f in insights(db, message_id=second)] == ["misspelling:definately"]
    assert outcome.result["suppressed"] == (0 if model_honours_teaching else 1)


def test_malformed_output_is_asked_again_and_never_stored(db, db_url, ai_settings, claude):
    world = make_world(db)
    lead_id = make_lead(db, world)
    m1 = _first_message(db, lead_id)
    claude.malformed_next(times=3)  # every call of the first run
    (failed,) = run_sophie_jobs(db_url, ai_settings, claude=claude, max_rounds=1)
    assert failed.status == "retry" and "rejected" in (failed.error or "")
    assert analyses(db, message_id=m1) == [] and insights(db, message_id=m1) == []
    assert (
        db.execute("select ai_quality_score from public.messages where id = %s", (m1,)).fetchone()[
            "ai_quality_score"
        ]
        is None
    )

    claude.malformed_next(times=1)  # the next run: one bad answer, then a good one
    (done,) = run_sophie_jobs(db_url, ai_settings, claude=claude)
    assert done.status == "done"
    (analysis,) = analyses(db, message_id=m1)
    assert analysis["claude_calls"] == 2 and analysis["rejected_outputs"] == 1


def test_the_budget_defers_reviews_and_loses_none(db, db_url, ai_settings, claude):
    world = make_world(db)
    leads = [make_lead(db, world, first_name=f"L{i}") for i in range(3)]
    # 999 of the client's 1,000 analyses this hour are spent: one review now, two wait.
    db.execute(
        "insert into private.hourly_budget_uses (bucket, client_id)"
        " select 'sophie_analysis', %s from generate_series(1, 999)",
        (world.client_id,),
    )
    outcomes = run_sophie_jobs(db_url, ai_settings, claude=claude, skip_waits=False)
    assert sorted(o.status for o in outcomes) == ["deferred", "deferred", "done"]
    waiting = db.execute(
        "select status::text as status, attempts, run_at > now() + interval '59 minutes' as later"
        " from private.jobs where kind = 'sophie.analyze' and client_id = %s"
        " and status <> 'done'",
        (world.client_id,),
    ).fetchall()
    assert waiting == [{"status": "queued", "attempts": 0, "later": True}] * 2

    # An hour later the budget is back: the waiting reviews run; none was lost.
    db.execute("delete from private.hourly_budget_uses where client_id = %s", (world.client_id,))
    run_sophie_jobs(db_url, ai_settings, claude=claude)
    for lead_id in leads:
        assert len(analyses(db, message_id=_first_message(db, lead_id))) == 1
