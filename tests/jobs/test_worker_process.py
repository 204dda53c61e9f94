"""`python -m workers` as a real process: killed with SIGKILL mid-batch, every message still
reaches Twilio exactly once; stopped with SIGTERM, it finishes what it started and gives the
rest back."""

from __future__ import annotations

import httpx
import pytest

from tests.support import wait_for
from tests.support.outreach import make_dataset, make_leads, make_sender, queue_sms

pytestmark = pytest.mark.timeout(120)


def _queue_batch(db, n: int, text: str):
    sender = make_sender(db)  # messaging service: no per-number pacing
    ds = make_dataset(db, sender.client_id)
    leads = make_leads(db, sender, ds, n)
    ids = [queue_sms(db, lead["id"], f"{text} #{i}") for i, lead in enumerate(leads)]
    return ids, {lead["phone_number"] for lead in leads}


def _states(db, ids) -> dict[str, int]:
    rows = db.execute(
        "select status::text as s, count(*) as n from public.messages"
        " where id = any(%s) group by 1",
        (ids,),
    ).fetchall()
    return {r["s"]: r["n"] for r in rows}


def _jobs(db, ids) -> dict[str, int]:
    keys = [f"sms.send:{i}" for i in ids]
    rows = db.execute(
        "select status::text as s, count(*) as n from private.jobs"
        " where idempotency_key = any(%s) group by 1",
        (keys,),
    ).fetchall()
    return {r["s"]: r["n"] for r in rows}


def test_sigkill_mid_batch_loses_no_job_and_sends_nothing_twice(db, twilio, start_worker):
    n = 120
    ids, numbers = _queue_batch(db, n, "Kill test")
    ctl = f"{twilio.base_url}/_standin/config"
    # After 40 messages Twilio keeps accepting but stops answering: every loop of the worker
    # ends up inside a send whose outcome it cannot know. That is when it gets SIGKILLed.
    httpx.post(ctl, json={"stall_after": 40})
    first = start_worker(twilio.base_url, "--concurrency", "4", "--batch", "5")
    wait_for(lambda: twilio.standin.stalled >= 4, 30, "four sends in flight")
    first.kill()
    in_flight = twilio.standin.stalled
    httpx.post(ctl, json={"stall": False})
    ambiguous = _states(db, ids).get("sending", 0)
    assert ambiguous >= 4, "the kill should leave attempts with no recorded result"

    # A new worker: claimed-but-unfinished jobs come back after the 3 s lease.
    second = start_worker(twilio.base_url, "--concurrency", "4", "--batch", "5")
    wait_for(lambda: _jobs(db, ids) == {"done": n}, 60, "all jobs done")
    second.terminate()

    sent = [m for m in twilio.standin.sent() if m["to"] in numbers]
    assert len(sent) == n, f"{len(sent)} sends for {n} messages"
    assert len({m["to"] for m in sent}) == n  # nobody got it twice
    rows = db.execute(
        "select to_number, twilio_sid, status::text from public.messages where id = any(%s)", (ids,)
    ).fetchall()
    assert {r["to_number"]: r["twilio_sid"] for r in rows} == {m["to"]: m["sid"] for m in sent}
    results = db.execute(
        "select result ->> 'status' as s, count(*) as n from private.jobs"
        " where idempotency_key = any(%s) group by 1",
        ([f"sms.send:{i}" for i in ids],),
    ).fetchall()
    reconciled = {r["s"]: r["n"] for r in results}.get("reconciled", 0)
    assert reconciled >= in_flight >= 4  # the killed worker's sends were found, not repeated


def test_sigterm_finishes_running_sends_and_releases_the_rest(db, twilio, start_worker):
    n = 60
    ids, numbers = _queue_batch(db, n, "Term test")
    httpx.post(f"{twilio.base_url}/_standin/config", json={"latency": 0.05})
    worker = start_worker(twilio.base_url, "--concurrency", "2", "--batch", "10", visibility=120)
    wait_for(lambda: len(twilio.standin.sent()) >= 10, 60, "10 sends")
    assert worker.terminate(30) == 0
    out = worker.output()
    assert "released" in out

    states = _states(db, ids)
    assert "sending" not in states  # every send it started, it finished and recorded
    jobs = _jobs(db, ids)
    assert "running" not in jobs  # nothing left locked for 120 s
    accepted = sum(states.get(s, 0) for s in ("queued", "sent", "delivered"))
    assert jobs.get("done", 0) == accepted < n
    sent_before = len([m for m in twilio.standin.sent() if m["to"] in numbers])
    assert sent_before == jobs["done"]

    httpx.post(f"{twilio.base_url}/_standin/config", json={"latency": 0})
    again = start_worker(twilio.base_url, "--concurrency", "4")
    wait_for(lambda: _jobs(db, ids) == {"done": n}, 60, "all jobs done")
    again.terminate()
    sent = [m for m in twilio.standin.sent() if m["to"] in numbers]
    assert len(sent) == n and len({m["to"] for m in sent}) == n
