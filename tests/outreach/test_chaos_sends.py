"""Chaos: real worker processes (`python -m workers`) sending through the Twilio stand-in are
killed with SIGKILL at random moments, again and again, replaced after each kill, then left
to drain cleanly. Whatever the kills interrupted, at the end every lead has its message
exactly once at Twilio, every message row agrees with what Twilio received, and no job is
left `running` or stuck.

Each seed fixes the kill schedule and the stand-in's latency (deterministic per seed; the
interleavings with the worker's own timing are not, which is the point). The figures per
seed (trials, kills, sends interrupted and reconciled, lease losses) are printed; run with
`-s` to see them, or `python -m bench.outreach.chaos_bench` for more seeds and trials.

Knobs (environment, for the bench): CHAOS_SEEDS (comma-separated), CHAOS_TRIALS,
CHAOS_LEADS, CHAOS_LEASE (seconds), CHAOS_BATCH, CHAOS_CONCURRENCY, CHAOS_DRAIN (seconds),
CHAOS_LATENCY ("lo,hi" seconds), CHAOS_KILL_WITHIN (seconds), CHAOS_KINDS.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.support import wait_for
from tests.support.outreach import make_dataset, make_leads, make_sender, queue_sms

SEEDS = [int(s) for s in os.environ.get("CHAOS_SEEDS", "1,2,3").split(",") if s.strip()]
TRIALS = int(os.environ.get("CHAOS_TRIALS", "8"))
LEADS = int(os.environ.get("CHAOS_LEADS", "300"))
LEASE = int(os.environ.get("CHAOS_LEASE", "3"))
BATCH = int(os.environ.get("CHAOS_BATCH", "10"))
CONCURRENCY = int(os.environ.get("CHAOS_CONCURRENCY", "2"))
DRAIN = float(os.environ.get("CHAOS_DRAIN", "60"))
# The stand-in's answer latency (drawn per seed); how long a trial waits for sends to kill.
LATENCY = tuple(float(x) for x in os.environ.get("CHAOS_LATENCY", "0.2,0.5").split(","))
KILL_WITHIN = float(os.environ.get("CHAOS_KILL_WITHIN", "3.0"))
# Share of trials that kill the worker holding a previously lost job (the crash loop).
CRASH_LOOP = float(os.environ.get("CHAOS_CRASH_LOOP", "0.5"))
KINDS = os.environ.get("CHAOS_KINDS", "sms.send,sms.reconcile")

pytestmark = pytest.mark.timeout(60 + TRIALS * 10 + DRAIN)


def _settled(db, keys: list[str]) -> bool:
    """Every send job finished (done or dead) and no message is mid-attempt or waiting."""
    row = db.execute(
        "select count(*) filter (where j.status not in ('done', 'dead')) as open"
        " from private.jobs j where j.idempotency_key = any(%s)",
        (keys,),
    ).fetchone()
    return row["open"] == 0


def _figures(db, keys: list[str], ids: list[Any]) -> dict[str, Any]:
    jobs = db.execute(
        "select j.status::text as status, j.result ->> 'status' as outcome,"
        " coalesce((to_jsonb(j) ->> 'lease_losses')::int, 0) as lease_losses,"
        " j.locked_until < now() as lease_passed"
        " from private.jobs j where j.idempotency_key = any(%s)",
        (keys,),
    ).fetchall()
    reconcile_jobs = db.execute(
        "select j.result ->> 'status' as outcome from private.jobs j"
        " where j.kind = 'sms.reconcile' and (j.payload ->> 'message_id')::uuid = any(%s)",
        (ids,),
    ).fetchall()
    msgs = db.execute(
        "select status::text as status, send_attempts from public.messages where id = any(%s)",
        (ids,),
    ).fetchall()
    return {
        "jobs": dict(Counter(j["status"] for j in jobs)),
        "stuck_running": sum(1 for j in jobs if j["status"] == "running" and j["lease_passed"]),
        "reconciled": sum(1 for j in jobs if j["outcome"] == "reconciled")
        + sum(1 for j in reconcile_jobs if j["outcome"] == "reconciled"),
        "lease_losses": sum(j["lease_losses"] for j in jobs),
        "messages": dict(Counter(m["status"] for m in msgs)),
        "interrupted_attempts": sum(max(0, m["send_attempts"] - 1) for m in msgs),
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_at_random_moments_loses_nothing_and_sends_nothing_twice(
    db, twilio, start_worker, seed: int
) -> None:
    rng = random.Random(seed)
    latency = round(rng.uniform(LATENCY[0], LATENCY[-1]), 2)
    httpx.post(f"{twilio.base_url}/_standin/config", json={"latency": latency})

    sender = make_sender(db)  # a messaging service: no per-number pacing
    ds = make_dataset(db, sender.client_id)
    leads = make_leads(db, sender, ds, LEADS)
    ids = [queue_sms(db, lead["id"], f"Chaos {seed} #{i}") for i, lead in enumerate(leads)]
    body_of = {
        r["to_number"]: r["content"]
        for r in db.execute(
            "select to_number, content from public.messages where id = any(%s)", (ids,)
        ).fetchall()
    }
    keys = [f"sms.send:{i}" for i in ids]
    args = ("--kinds", KINDS, "--concurrency", str(CONCURRENCY), "--batch", str(BATCH))

    def start() -> Any:
        return start_worker(twilio.base_url, *args, visibility=LEASE)

    def up(w: Any) -> bool:
        return "loops, kinds" in w.output()  # the banner: connected and claiming

    def holding_lost_job() -> Any:
        """A started worker now running one of our jobs that a killed worker held before
        (the crash loop: the same jobs taken again and killed again), or None."""
        row = db.execute(
            "select j.locked_by from private.jobs j where j.idempotency_key = any(%s)"
            " and j.status = 'running' and j.locked_until > now()"
            " and (j.attempts >= 2 or coalesce((to_jsonb(j) ->> 'lease_losses')::int, 0) >= 1)"
            " limit 1",
            (keys,),
        ).fetchone()
        if row is None:
            return None
        return next((w for w in workers if up(w) and f":{w.proc.pid}:" in row["locked_by"]), None)

    # Two worker processes at a time, so a replacement's start-up overlaps the other's work.
    # Each trial kills one at a random moment, of one of two kinds (drawn from the seed):
    #   while sending   the older worker, once 1..2 more batches reached Twilio, plus up to one
    #                   latency: before Twilio answered, between the answer and the record, or
    #                   between the record and the completion;
    #   crash loop      whichever worker holds a job a killed worker held before, as soon as
    #                   it has claimed it (what a crash-looping deploy does to its first jobs);
    #                   never the first trial: it needs a job lost before.
    # Then a fresh worker replaces it.
    t0 = time.monotonic()
    kills = trials = 0
    workers = [start(), start()]
    for _ in range(TRIALS):
        if _settled(db, keys):
            break
        trials += 1
        victim = workers[0]
        wait_for(lambda w=victim: up(w), 60, "worker started")
        crash_loop = rng.random() < CRASH_LOOP
        if crash_loop and kills:  # (a crash loop needs a job lost before)
            # (nothing lost and re-claimed in time: the older worker goes instead)
            with contextlib.suppress(AssertionError):
                victim = wait_for(holding_lost_job, LEASE + 5, "a lost job re-claimed")
        else:
            target = len(twilio.standin.messages) + rng.randint(1, 2 * BATCH)
            # (no sends coming quickly, e.g. all left work is leased: kill it anyway)
            with contextlib.suppress(AssertionError):
                wait_for(lambda t=target: len(twilio.standin.messages) >= t, KILL_WITHIN, "sends")
            time.sleep(rng.uniform(0.0, latency))
        if victim.proc.poll() is None:
            victim.kill()
            kills += 1
        workers = [w for w in workers if w is not victim] + [start()]

    # Clean drain: the workers still alive are left alone until every job is finished.
    t1 = time.monotonic()
    drained = True
    try:
        wait_for(lambda: _settled(db, keys), DRAIN, "every send job finished")
    except AssertionError:
        drained = False
    t2 = time.monotonic()
    for w in workers:
        w.terminate()

    sent = [m for m in twilio.standin.sent() if m["to"] in body_of]
    per_number = Counter(m["to"] for m in sent)
    duplicates = sum(n - 1 for n in per_number.values() if n > 1)
    without = [n for n in body_of if n not in per_number]
    rows = db.execute(
        "select to_number, twilio_sid, status::text as status, content from public.messages"
        " where id = any(%s)",
        (ids,),
    ).fetchall()
    at_twilio = {m["to"]: m for m in sent}
    disagree = [
        r["to_number"]
        for r in rows
        if r["to_number"] in at_twilio
        and (
            r["twilio_sid"] != at_twilio[r["to_number"]]["sid"]
            or r["content"] != at_twilio[r["to_number"]]["body"]
            or r["status"] not in ("queued", "sent", "delivered")
        )
    ]
    figures = {
        "seed": seed,
        "latency": latency,
        "lease": LEASE,
        "batch": BATCH,
        "leads": LEADS,
        "trials": trials,
        "kills": kills,
        "sent": len(sent),
        "duplicates": duplicates,
        "leads_without_message": len(without),
        "rows_disagreeing": len(disagree),
        "drained": drained,
        "chaos_seconds": round(t1 - t0, 1),
        "drain_seconds": round(t2 - t1, 1),
        **_figures(db, keys, ids),
    }
    print("\nCHAOS " + json.dumps(figures, sort_keys=True))

    assert duplicates == 0, f"{duplicates} duplicate sends: {figures}"
    assert drained, f"jobs left unfinished: {figures}"
    assert figures["jobs"] == {"done": LEADS}, figures
    assert not without, f"{len(without)} leads without their message: {figures}"
    assert not disagree, f"message rows disagreeing with Twilio: {disagree[:5]} {figures}"
    assert kills >= 1
