"""The worker pool in-process against the test database: claim, complete, retry, dead letter,
defer, wake-up by NOTIFY and by re-scan after a reconnect, graceful shutdown, lost leases.

Each test uses its own job kinds, so jobs of other tests (or other capabilities) sharing the
session database are never touched.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tests.support import acting_as, make_client, make_user, refusal
from tests.support.outreach import run_pool
from workers.jobs import Context, Job, PermanentError, RetryableError
from workers.runtime import Defer, WorkerPool

Handler = Callable[[Job, Context], Any]


def kind(tag: str) -> str:
    return f"t_{tag}_{uuid.uuid4().hex[:6]}"


def enqueue(db, kind_: str, payload: dict | None = None, *, max_attempts: int = 5, **kw) -> int:
    return db.execute(
        "select private.enqueue_job(%s, %s, now(), %s, %s, %s) as id",
        (kind_, Jsonb(payload or {}), kw.get("key"), kw.get("client_id"), max_attempts),
    ).fetchone()["id"]


def job(db, job_id: int) -> dict:
    return db.execute("select * from private.jobs where id = %s", (job_id,)).fetchone()


def test_jobs_run_once_and_store_results(settings, db):
    k = kind("echo")
    seen: list[int] = []

    async def echo(j: Job, ctx: Context) -> dict:
        seen.append(j.id)
        return {"echo": j.payload["n"], "worker": ctx.worker_id}

    ids = [enqueue(db, k, {"n": n}) for n in range(12)]
    pool = run_pool(
        settings,
        {k: echo},
        lambda: all(job(db, i)["status"] == "done" for i in ids),
        concurrency=3,
        batch_size=2,
    )
    assert sorted(seen) == sorted(ids)  # each exactly once
    rows = [job(db, i) for i in ids]
    assert [r["result"]["echo"] for r in rows] == list(range(12))
    assert all(r["attempts"] == 1 and r["locked_until"] is None for r in rows)
    assert pool.stats["done"] == 12


def test_retryable_errors_back_off_then_dead_letter_visible_to_admins(settings, db):
    k = kind("flaky")
    client_id = make_client(db, "Dead letters")
    admin = make_user(db, client_id, "admin")
    rep = make_user(db, client_id, "sales_rep")
    other_admin = make_user(db, make_client(db, "Other"), "admin")

    async def always_down(j: Job, ctx: Context) -> None:
        raise RetryableError("provider down", retry_in=0)

    jid = enqueue(db, k, max_attempts=3, client_id=client_id)
    run_pool(settings, {k: always_down}, lambda: job(db, jid)["status"] == "dead")
    row = job(db, jid)
    assert row["attempts"] == 3
    assert "provider down" in row["last_error"]
    assert row["finished_at"] is not None

    with acting_as(db, admin) as c:
        seen = c.execute("select id, kind, last_error from public.dead_jobs").fetchall()
        alerts = c.execute(
            "select title, data from public.notifications where user_id = %s", (admin,)
        ).fetchall()
    assert [r["id"] for r in seen] == [jid]
    assert [(a["title"], a["data"]["job_id"]) for a in alerts] == [("A background job failed", jid)]
    for user in (rep, other_admin):
        with acting_as(db, user) as c:
            assert c.execute("select id from public.dead_jobs").fetchall() == []
    err = refusal(db, rep, "select public.retry_dead_job(%s)", jid)
    assert (err.status, err.code) == (403, "FORBIDDEN")
    with acting_as(db, admin) as c:
        c.execute("select public.retry_dead_job(%s)", (jid,))
    row = job(db, jid)
    assert (row["status"], row["attempts"]) == ("queued", 0)
    db.execute("update private.jobs set status = 'canceled' where id = %s", (jid,))


def test_permanent_error_dead_letters_at_once(settings, db):
    k = kind("perm")

    async def broken(j: Job, ctx: Context) -> None:
        raise PermanentError("payload refers to a deleted message")

    jid = enqueue(db, k, max_attempts=5)
    run_pool(settings, {k: broken}, lambda: job(db, jid)["status"] == "dead")
    row = job(db, jid)
    assert row["attempts"] == 1
    assert row["last_error"].startswith("PermanentError: payload refers")


def test_unexpected_exception_is_retried(settings, db):
    k = kind("bug")
    calls = 0

    async def fails_once(j: Job, ctx: Context) -> dict:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("transient bug")
        return {"ok": True}

    jid = enqueue(db, k)
    # Backoff after the first failure is ~2 s (2^1 with jitter): the poll must come round.
    run_pool(settings, {k: fails_once}, lambda: job(db, jid)["status"] == "done", poll_seconds=0.5)
    row = job(db, jid)
    assert row["attempts"] == 2 and row["result"] == {"ok": True} and row["last_error"] is None


def test_defer_reschedules_without_spending_attempts(settings, db):
    k = kind("defer")
    runs = 0

    async def wait_for_window(j: Job, ctx: Context) -> dict:
        nonlocal runs
        runs += 1
        if runs <= 3:
            raise Defer(datetime.now(UTC) + timedelta(milliseconds=100), "outside_window")
        return {"sent": True}

    jid = enqueue(db, k, max_attempts=1)  # one attempt: deferrals must not use it up
    run_pool(
        settings, {k: wait_for_window}, lambda: job(db, jid)["status"] == "done", poll_seconds=0.2
    )
    assert runs == 4
    assert job(db, jid)["attempts"] == 1


def test_notify_wakes_an_idle_pool(settings, db):
    k = kind("wake")

    async def noop(j: Job, ctx: Context) -> None:
        return None

    box: dict[str, int] = {}

    def enqueue_later(pool: WorkerPool) -> None:
        box["id"] = enqueue(db, k)

    # poll backstop of 60 s: only the NOTIFY can get this done within the test's timeout.
    pool = run_pool(
        settings, {k: noop}, lambda: job(db, box["id"])["status"] == "done", during=enqueue_later
    )
    assert pool.signal.fired >= 2  # the connect re-scan plus the notification


def test_rescan_after_reconnect_finds_jobs_enqueued_while_deaf(settings, db, db_url):
    k = kind("rescan")

    async def noop(j: Job, ctx: Context) -> None:
        return None

    box: dict[str, int] = {}

    async def lose_connection(pool: WorkerPool) -> None:
        # Enqueue with triggers off (no NOTIFY), then kill the LISTEN session: only the
        # re-scan after reconnecting can find the job (poll backstop is 60 s).
        with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as c:
            c.execute("set session_replication_role = replica")
            box["id"] = enqueue(c, k)
            c.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity"
                " where application_name = 'dbr-worker-listen' and datname = current_database()"
            )

    pool = run_pool(
        settings, {k: noop}, lambda: job(db, box["id"])["status"] == "done", during=lose_connection
    )
    assert pool.wakeup.connections >= 2


def test_graceful_stop_finishes_running_job_and_releases_the_rest(settings, db):
    k = kind("stop")
    started = asyncio.Event()
    finished: list[int] = []

    async def slow(j: Job, ctx: Context) -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.append(j.id)

    ids = [enqueue(db, k) for _ in range(4)]

    async def main() -> None:
        pool = WorkerPool(
            settings, handlers={k: slow}, concurrency=1, batch_size=4, poll_seconds=60
        )
        task = asyncio.create_task(pool.run())
        await started.wait()
        pool.request_stop()  # as SIGTERM does
        await task

    asyncio.run(main())
    assert len(finished) == 1
    rows = {i: job(db, i) for i in ids}
    assert rows[finished[0]]["status"] == "done"
    for i in ids:
        if i != finished[0]:
            assert rows[i]["status"] == "queued"
            assert rows[i]["attempts"] == 0 and rows[i]["locked_by"] is None


def test_grace_period_expiry_releases_the_hung_job(settings, db):
    k = kind("hang")
    started = asyncio.Event()

    async def hangs(j: Job, ctx: Context) -> None:
        started.set()
        await asyncio.sleep(3600)

    jid = enqueue(db, k)

    async def main() -> None:
        pool = WorkerPool(settings, handlers={k: hangs}, grace_seconds=0.2, poll_seconds=60)
        task = asyncio.create_task(pool.run())
        await started.wait()
        pool.request_stop()
        await task

    asyncio.run(main())
    row = job(db, jid)
    assert (row["status"], row["attempts"], row["locked_by"]) == ("queued", 0, None)


def test_job_of_a_vanished_worker_is_claimed_after_its_lease(settings, db):
    k = kind("lease")
    jid = enqueue(db, k)
    # A worker that claimed and then died (SIGKILL): the lease is 1 s.
    db.execute("select * from private.claim_jobs('dead-worker', array[%s], 1, 1)", (k,))
    assert job(db, jid)["locked_by"] == "dead-worker"

    async def noop(j: Job, ctx: Context) -> dict:
        return {"attempt": j.attempt, "lease_losses": j.lease_losses}

    run_pool(settings, {k: noop}, lambda: job(db, jid)["status"] == "done", poll_seconds=0.3)
    row = job(db, jid)
    # The vanished worker cost a lease loss, not an attempt: this is the first attempt.
    assert row["result"] == {"attempt": 1, "lease_losses": 1}
    assert (row["attempts"], row["lease_losses"]) == (1, 1)


def test_unknown_kinds_are_refused(settings):
    with pytest.raises(ValueError, match="no handler"):
        WorkerPool(settings, handlers={}, kinds=["nobody.handles"])
