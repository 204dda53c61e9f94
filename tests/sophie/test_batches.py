"""The 15-minute review through the Message Batches API: one batch per run, polled without
holding a worker, results stored at half price; errored and expired requests are reviewed
again at the next run; and the stand-in's batch wire format through the real SDK."""

from __future__ import annotations

import asyncio

import anthropic
import httpx
import pytest

from dbr.sophie.costs import cost_usd
from dbr.sophie.prompt import review_request
from tests.support import acting_as
from tests.support.ai import claude_client, conversation_of, make_lead, make_world
from tests.support.sophie import analyses, insights, run_sophie_jobs


def _touch(db, lead_ids):
    db.execute(
        "update public.conversations set last_message_at = now() - interval '1 minute'"
        " where lead_id = any(%s)",
        (list(lead_ids),),
    )


def _tick(db):
    return db.execute("select private.sophie_analysis_tick() as r").fetchone()["r"]


def test_the_15_minute_job_sends_one_batch_and_stores_its_results(db, db_url, ai_settings, claude):
    world = make_world(db, sophie_auto_review=True)
    leads = [make_lead(db, world, first_name=n) for n in ("Ann", "Bob", "Cat")]
    db.execute(
        "update private.jobs set status = 'canceled' where kind = 'sophie.analyze'"
        " and client_id = %s",
        (world.client_id,),
    )
    _touch(db, leads)
    job = _tick(db)
    assert job is not None
    assert _tick(db) is None  # nothing new: the conversations are held by the batch

    claude.batches_api.set_polls_before_end(2)
    outcomes = run_sophie_jobs(db_url, ai_settings, claude=claude, kinds=("sophie.batch",))
    # Submitted, polled while in progress (the job waits, no attempt spent), then stored.
    assert [o.status for o in outcomes] == ["deferred", "deferred", "deferred", "done"]
    (batch,) = claude.batches_api.batches
    assert len(batch.requests) == 3
    assert outcomes[-1].result["analyses"] == 3 and outcomes[-1].result["failed"] == 0
    attempts = db.execute("select attempts from private.jobs where id = %s", (job,)).fetchone()
    assert attempts["attempts"] == 1

    for lead_id in leads:
        (analysis,) = analyses(db, conversation_id=conversation_of(db, lead_id), via="batch")
        usage = {
            k: analysis[k]
            for k in (
                "input_tokens",
                "cache_creation_input_tokens",
                "cache_read_input_tokens",
                "output_tokens",
            )
        }
        assert analysis["cost_usd"] == cost_usd(analysis["model"], usage, batch=True)
        full = float(cost_usd(analysis["model"], usage))
        assert float(analysis["cost_usd"]) * 2 == pytest.approx(full, abs=2e-6)  # half price
        # Each conversation's first message lacks an opt-out line: one critical finding each.
        assert [
            i["pattern_key"] for i in insights(db, conversation_id=conversation_of(db, lead_id))
        ] == ["missing_opt_out"]
        score = db.execute(
            "select quality_score from public.conversations where lead_id = %s", (lead_id,)
        ).fetchone()["quality_score"]
        assert score is not None and score < 0.7

    # The rubric is cached: every request after the first reads it from the cache.
    reads = [r.usage["cache_read_input_tokens"] for r in claude.requests]
    assert reads[0] == 0 and all(x > 0 for x in reads[1:])
    assert _tick(db) is None  # reviewed: nothing due until a new message arrives


def test_errored_and_expired_requests_are_reviewed_at_the_next_run(db, db_url, ai_settings, claude):
    world = make_world(db)
    leads = [make_lead(db, world, first_name=n) for n in ("Dee", "Eve")]
    _touch(db, leads)
    _tick(db)
    claude.batches_api.error_next(custom_ids=["c1"])
    (done,) = [
        o
        for o in run_sophie_jobs(db_url, ai_settings, claude=claude, kinds=("sophie.batch",))
        if o.status == "done"
    ]
    assert done.result["analyses"] == 1 and done.result["failed"] == 1
    assert done.result["results"] == {"succeeded": 1, "errored": 1}

    # The errored conversation is due again; the next batch expires entirely.
    assert _tick(db) is not None
    claude.batches_api.expire_next()
    (expired,) = [
        o
        for o in run_sophie_jobs(db_url, ai_settings, claude=claude, kinds=("sophie.batch",))
        if o.status == "done"
    ]
    assert expired.result["failed"] == 1 and expired.result["results"] == {"expired": 1}

    # Still not lost: the third run stores it.
    assert _tick(db) is not None
    run_sophie_jobs(db_url, ai_settings, claude=claude, kinds=("sophie.batch",))
    for lead_id in leads:
        assert len(analyses(db, conversation_id=conversation_of(db, lead_id), via="batch")) == 1


def test_the_stand_in_speaks_the_batches_wire_format(claude):
    ctx = {
        "message_id": None,
        "client": {"name": "Acme"},
        "messages": [
            {"id": "m1", "direction": "outbound", "category": "m1", "content": "Hi, act now!"}
        ],
    }
    params = review_request(ctx, model="claude-sonnet-4-6")

    async def main():
        client = claude_client(claude)
        try:
            with pytest.raises(anthropic.BadRequestError):
                await client.messages.batches.create(
                    requests=[{"custom_id": "bad id!", "params": params}]
                )
            batch = await client.messages.batches.create(
                requests=[
                    {"custom_id": "ok", "params": params},
                    {"custom_id": "broken", "params": {**params, "max_tokens": 0}},
                ]
            )
            assert batch.processing_status == "in_progress" and batch.results_url is None
            first = await client.messages.batches.retrieve(batch.id)
            assert first.processing_status == "in_progress"
            assert first.request_counts.processing == 2
            ended = await client.messages.batches.retrieve(batch.id)
            assert ended.processing_status == "ended" and ended.results_url
            assert (ended.request_counts.succeeded, ended.request_counts.errored) == (1, 1)
            results = {
                r.custom_id: r.result async for r in await client.messages.batches.results(batch.id)
            }
            assert results["broken"].type == "errored"
            assert results["broken"].error.error.type == "invalid_request_error"
            message = results["ok"].message
            (block,) = message.content
            assert block.name == "record_review"
            assert block.input["findings"][0]["pattern"] == "missing_opt_out"
            with pytest.raises(anthropic.NotFoundError):
                await client.messages.batches.retrieve("msgbatch_nope")
        finally:
            await client.close()

    asyncio.run(main())
    # The local stack's view of the same batches.
    listed = httpx.get(claude.base_url + "/_standin/batches").json()["batches"]
    assert [(b["processing_status"], b["requests"]) for b in listed] == [("ended", 2)]


def test_a_failed_pattern_chunk_is_asked_again_never_half_counted(db, db_url, ai_settings, claude):
    world = make_world(db)
    for i in range(3):
        lead_id = make_lead(db, world, first_name=f"Q{i}")
        db.execute(
            "update public.conversations set message_count = 1, last_message_at = now()"
            " where lead_id = %s",
            (lead_id,),
        )
    with acting_as(db, world.admin) as conn:
        job = conn.execute(
            "select public.detect_patterns(%s, 2) as r", (world.dataset_id,)
        ).fetchone()["r"]["job_id"]
    claude.batches_api.set_polls_before_end(0)
    claude.batches_api.error_next(count=1)  # the only chunk of the first batch errors
    outcomes = run_sophie_jobs(db_url, ai_settings, claude=claude, kinds=("sophie.patterns",))
    assert [o.status for o in outcomes] == ["deferred", "retry", "deferred", "done"], outcomes
    assert "pattern chunks failed" in (outcomes[1].error or "")
    assert len(claude.batches_api.batches) == 2  # every chunk submitted again
    done = outcomes[-1].result
    assert done["chunks_failed"] == 0
    (question,) = [p for p in done["patterns"] if "question" in p["pattern_description"]]
    assert question["occurrences"] == 3
    stored = db.execute(
        "select count(*) as n from public.sophie_patterns where job_id = %s", (job,)
    ).fetchone()["n"]
    assert stored == len(done["patterns"])
