"""The worker pool: N asyncio loops that claim jobs from Postgres and run their handlers.

Each loop claims a small batch with `private.claim_jobs(worker, kinds, batch, visibility)`
(`for update skip locked`, so loops and processes never share a job) and runs the jobs one
after another through `workers.jobs.HANDLERS`. Outcomes go back through the jobs functions:

  handler returns            -> complete_job (result stored for waiting callers); the
                                completions of a batch are written in one statement, at
                                most COMPLETE_WITHIN seconds after the job finished
  raises Defer(until)        -> defer_job: rescheduled, the attempt is given back
  raises RetryableError      -> fail_job(retry, retry_in): backoff, dead after max_attempts
  raises PermanentError      -> fail_job(no retry): dead-lettered now
  raises anything else       -> like RetryableError, with the traceback logged
  never reports (killed)     -> a lost lease, settled by the next claim or the sweeper: one
                                lease loss (not an attempt), re-queued behind the due work
                                with backoff, dead after max_lease_losses

A claim is a lease of `visibility` seconds. No lease extension: a job must finish inside it,
so each run is bounded by what is left of the lease (a timed-out run counts as a retryable
failure), and jobs of a batch that would start after half the lease are given back rather
than run late. A worker killed with SIGKILL holds nothing for long: when the lease passes,
the next claim (or the minute's sweep) puts its jobs back in the queue, and handlers are
written for that (the SMS handler reconciles with Twilio before it could send twice). The
same holds for a worker that dies between finishing a job and writing its completion: the
job runs again, so every handler is idempotent (the SMS handler finds the message already
sent and skips it).

A kind may also have a batch handler (`@batch_handler`): the claimed jobs of that kind then
run in one call that returns one outcome per job (a result or the exception above), so the
handler can share round trips and commits between them (sms.send records a whole batch of
attempts in one durable commit). The single-job handler stays registered as the contract.

When idle, a loop sleeps until the wake-up signal (LISTEN/NOTIFY or Realtime, see
workers.wakeup) or the poll backstop, whichever comes first; every (re)connect of the
signal fires it, which is the full re-scan.

Shutdown (SIGTERM/SIGINT): stop claiming, give back the unstarted jobs of each batch, let
running jobs finish for `grace_seconds`, cancel the rest and `release_jobs(worker)`, which
returns every claim this worker still holds without spending an attempt.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import random
import signal
import socket
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from dbr.db import async_pool
from dbr.settings import Settings
from workers.jobs import HANDLERS, Context, Handler, Job, PermanentError, RetryableError
from workers.wakeup import ListenNotify, RealtimeSignals, WakeSignal, Wakeup

log = logging.getLogger("workers")

# A finished job's completion may wait for the rest of its batch this long at most.
COMPLETE_WITHIN = 0.2
# Job bookkeeping (claim, complete, fail, defer) commits without waiting for the WAL flush:
# losing the last few of these in a database crash only means a job runs again or waits for
# its lease, exactly what a worker crash means, and handlers are built for that. WAL is
# flushed in order, so any later durable commit (a handler's own write) makes them durable
# too. Handlers' writes keep synchronous_commit: the SMS attempt record must be on disk
# before Twilio is called.
ASYNC_COMMIT = "set_config('synchronous_commit', 'off', true)"


@dataclass
class Defer(Exception):
    """Raised by a handler: run this job again at `until`; the attempt is not spent."""

    until: datetime | None
    reason: str = ""

    def __str__(self) -> str:
        return f"deferred until {self.until} ({self.reason})"


# A batch handler runs several claimed jobs of its kind in one call (so it can share round
# trips and commits between them) and returns one outcome per job, in order: the job's result,
# or the exception it would have raised (Defer, RetryableError, PermanentError, ...). Kinds
# with a batch handler keep their single-job handler in HANDLERS as the contract and fallback.
BatchHandler = Callable[[list[Job], Context], Awaitable[Sequence[Any]]]
BATCH_HANDLERS: dict[str, BatchHandler] = {}


def batch_handler(kind: str) -> Callable[[BatchHandler], BatchHandler]:
    """Register `fn` to run claimed `kind` jobs together: `@batch_handler("sms.send")`."""

    def register(fn: BatchHandler) -> BatchHandler:
        if kind in BATCH_HANDLERS:
            raise ValueError(f"two batch handlers for job kind {kind!r}")
        BATCH_HANDLERS[kind] = fn
        return fn

    return register


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def default_wakeup(settings: Settings) -> Wakeup:
    if settings.supabase_url and settings.supabase_service_role_key:
        return RealtimeSignals(settings.supabase_url, settings.supabase_service_role_key)
    return ListenNotify(settings.database_url)


class WorkerPool:
    def __init__(
        self,
        settings: Settings,
        *,
        handlers: Mapping[str, Handler] | None = None,
        batch_handlers: Mapping[str, BatchHandler] | None = None,
        kinds: list[str] | None = None,
        concurrency: int | None = None,
        batch_size: int = 5,
        poll_seconds: float | None = None,
        visibility_seconds: int | None = None,
        grace_seconds: float = 20.0,
        worker_id: str | None = None,
        wakeup: Wakeup | None = None,
    ) -> None:
        self.settings = settings
        self.handlers = dict(HANDLERS if handlers is None else handlers)
        # A batch handler serves a kind only where the single-job handler is served too.
        batches = BATCH_HANDLERS if batch_handlers is None else batch_handlers
        self.batch_handlers = {k: fn for k, fn in batches.items() if k in self.handlers}
        wanted = kinds or sorted(self.handlers)
        missing = [k for k in wanted if k not in self.handlers]
        if missing:
            raise ValueError(f"no handler for job kinds {missing}")
        self.kinds = wanted
        self.concurrency = max(1, concurrency or settings.worker_concurrency)
        self.batch_size = max(1, batch_size)
        self.poll_seconds = poll_seconds or settings.worker_poll_seconds
        self.visibility = visibility_seconds or settings.worker_visibility_seconds
        self.grace_seconds = grace_seconds
        self.worker_id = worker_id or default_worker_id()
        self.wakeup = wakeup or default_wakeup(settings)
        self.signal = WakeSignal()
        self.stats: Counter[str] = Counter()
        self._stop = asyncio.Event()
        self._pool: AsyncConnectionPool | None = None
        self.ctx: Context | None = None
        self.started = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    def request_stop(self) -> None:
        """Stop claiming; running jobs get `grace_seconds` to finish (see run())."""
        if not self._stop.is_set():
            log.info("worker %s stopping", self.worker_id)
            self._stop.set()
            self.signal.fire()  # wake idle loops so they notice

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)

    async def run(self) -> None:
        pool = async_pool(self.settings.database_url, min_size=1, max_size=self.concurrency + 2)
        await pool.open(wait=True, timeout=30)
        self._pool = pool
        self.ctx = Context(pool=pool, settings=self.settings, worker_id=self.worker_id)
        wake_task = asyncio.create_task(self.wakeup.run(self.signal), name="wakeup")
        loops = [
            asyncio.create_task(self._loop(), name=f"job-loop-{i}") for i in range(self.concurrency)
        ]
        log.info(
            "worker %s: %d loops, kinds %s, batch %d, lease %ss, poll %ss",
            self.worker_id,
            self.concurrency,
            ",".join(self.kinds),
            self.batch_size,
            self.visibility,
            self.poll_seconds,
        )
        self.started.set()
        try:
            await self._stop.wait()
            _done, pending = await asyncio.wait(loops, timeout=self.grace_seconds)
            if pending:
                log.warning(
                    "%d job(s) still running after the grace period: cancelling", len(pending)
                )
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            try:
                async with pool.connection() as conn:
                    row = await (
                        await conn.execute(
                            "select private.release_jobs(%s) as n", (self.worker_id,)
                        )
                    ).fetchone()
                self.stats["released"] += row["n"] if row else 0
                log.info("worker %s released %s claim(s)", self.worker_id, row["n"] if row else 0)
            except psycopg.Error as exc:  # the leases expire on their own
                log.warning("could not release claims: %s", exc)
            wake_task.cancel()
            await asyncio.gather(wake_task, return_exceptions=True)
            await _close_clients(self.ctx.clients)
            await pool.close()
            log.info("worker %s stopped: %s", self.worker_id, dict(self.stats))

    # ------------------------------------------------------------------ the loop

    async def _loop(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            signalled = self.signal.current()  # taken before claiming: no lost wake-up
            try:
                jobs = await self._claim()
                backoff = 0.5
            except (psycopg.Error, OSError) as exc:
                log.warning("claim failed (%s); retrying in %.1fs", exc, backoff)
                await self.signal.wait(signalled, backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            if not jobs:
                self.stats["idle_waits"] += 1
                await self.signal.wait(signalled, self.poll_seconds * random.uniform(0.8, 1.2))
                continue
            try:
                await self._run_batch(jobs)
            except (psycopg.Error, OSError) as exc:  # bookkeeping lost: the leases expire
                log.warning("batch bookkeeping failed (%s)", exc)
            except Exception:  # a bug must not silently cost the pool one of its loops
                log.exception("job loop error; carrying on")
                await self.signal.wait(signalled, 1.0)

    async def _claim(self) -> list[Job]:
        assert self._pool is not None
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"select j.*, {ASYNC_COMMIT} from private.claim_jobs(%s, %s, %s, %s) j",
                (self.worker_id, self.kinds, self.batch_size, self.visibility),
            )
            rows = await cur.fetchall()
        self.stats["claimed"] += len(rows)
        return [Job.from_row(r) for r in rows]

    async def _run_batch(self, jobs: list[Job]) -> None:
        # The lease runs from the claim; keep a margin for the final SQL call.
        deadline = time.monotonic() + self.visibility - min(5.0, self.visibility * 0.1)
        finished: list[tuple[Job, Any]] = []
        first_finished = 0.0
        # Kinds with a batch handler run their share of the claim in one call, first.
        grouped = [j for j in jobs if j.kind in self.batch_handlers]
        rest = [j for j in jobs if j.kind not in self.batch_handlers]
        try:
            if grouped:
                finished += await self._execute_group(grouped, deadline - time.monotonic())
                first_finished = time.monotonic()
            for i, job in enumerate(rest):
                left = deadline - time.monotonic()
                if self._stop.is_set() or left < self.visibility / 2:
                    await self._give_back(rest[i:])
                    return
                # Completions are written together, one statement per batch, unless a
                # caller could be kept waiting for a result (then at most ~0.2 s late).
                if finished and time.monotonic() - first_finished > COMPLETE_WITHIN:
                    await self._complete(finished)
                    finished = []
                ok, result = await self._execute(job, left)
                if ok:
                    if not finished:
                        first_finished = time.monotonic()
                    finished.append((job, result))
        finally:
            if finished:
                await self._complete(finished)

    async def _execute(self, job: Job, time_left: float) -> tuple[bool, Any]:
        """Run one job; failures are recorded here, success is returned for _complete."""
        assert self.ctx is not None
        fn = self.handlers[job.kind]
        t0 = time.perf_counter()
        try:
            result = await asyncio.wait_for(fn(job, self.ctx), timeout=time_left)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            await self._settle(job, TimeoutError(f"ran past its lease ({time_left:.0f}s)"))
        except Exception as exc:
            await self._settle(job, exc)
        else:
            return True, result
        finally:
            self.stats[f"seconds:{job.kind}"] += time.perf_counter() - t0
        return False, None

    async def _execute_group(self, jobs: list[Job], time_left: float) -> list[tuple[Job, Any]]:
        """Run jobs of batch-handled kinds, one handler call per kind; settle the failures."""
        assert self.ctx is not None
        finished: list[tuple[Job, Any]] = []
        for kind in dict.fromkeys(j.kind for j in jobs):
            group = [j for j in jobs if j.kind == kind]
            if self._stop.is_set():
                await self._give_back(group)
                continue
            t0 = time.perf_counter()
            outcomes: list[Any]
            raised = False
            try:
                outcomes = list(
                    await asyncio.wait_for(
                        self.batch_handlers[kind](group, self.ctx), timeout=time_left
                    )
                )
                if len(outcomes) != len(group):
                    raise RuntimeError(f"{kind} batch handler returned {len(outcomes)} outcomes")
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                outcomes = [TimeoutError(f"ran past its lease ({time_left:.0f}s)")] * len(group)
            except Exception as exc:
                log.exception("batch of %d %s job(s) failed", len(group), kind)
                outcomes, raised = [exc] * len(group), True
            finally:
                self.stats[f"seconds:{kind}"] += time.perf_counter() - t0
            for job, outcome in zip(group, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    await self._settle(job, outcome, logged=raised)
                else:
                    finished.append((job, outcome))
        return finished

    async def _settle(self, job: Job, exc: BaseException, *, logged: bool = False) -> None:
        """Record a job that did not complete: deferred, retried or dead-lettered."""
        if isinstance(exc, Defer):
            await self._sql(
                f"select private.defer_job(%s, %s, %s, %s), {ASYNC_COMMIT}",
                (job.id, self.worker_id, exc.until, exc.reason),
            )
            self.stats["deferred"] += 1
        elif isinstance(exc, PermanentError):
            await self._fail(job, exc, retry=False)
        elif isinstance(exc, RetryableError):
            await self._fail(job, exc, retry=True, retry_in=exc.retry_in)
        else:
            if not logged and not isinstance(exc, TimeoutError):
                log.error("job %s (%s) failed", job.id, job.kind, exc_info=exc)
            await self._fail(job, exc, retry=True)

    async def _complete(self, finished: list[tuple[Job, Any]]) -> None:
        """complete_job for every finished job of a batch, in one round trip."""
        completed = await self._sql(
            f"select count(private.complete_job(j.id, %s, j.result)), {ASYNC_COMMIT}"
            " from unnest(%s::bigint[], %s::jsonb[]) as j(id, result)",
            (
                self.worker_id,
                [job.id for job, _ in finished],
                [Jsonb(r) if r is not None else None for _, r in finished],
            ),
        )
        self.stats["done"] += len(finished)
        if completed is not None and completed < len(finished):
            log.warning(
                "%d of %d job(s) finished after their claim was lost",
                len(finished) - completed,
                len(finished),
            )

    async def _fail(
        self, job: Job, exc: BaseException, *, retry: bool, retry_in: int | None = None
    ) -> None:
        text = f"{exc.__class__.__name__}: {exc}"
        status = await self._sql(
            f"select private.fail_job(%s, %s, %s, %s, %s), {ASYNC_COMMIT}",
            (job.id, self.worker_id, text, retry, retry_in),
        )
        if status == "dead":
            self.stats["dead"] += 1
            log.error(
                "job %s (%s) dead-lettered after %d attempt(s): %s",
                job.id,
                job.kind,
                job.attempt,
                text,
            )
        else:
            self.stats["retried"] += 1
            log.info("job %s (%s) attempt %d failed: %s", job.id, job.kind, job.attempt, text)

    async def _give_back(self, jobs: list[Job]) -> None:
        await self._sql(
            f"select count(private.defer_job(j, %s, now(), null)), {ASYNC_COMMIT}"
            " from unnest(%s::bigint[]) j",
            (self.worker_id, [j.id for j in jobs]),
        )
        self.stats["given_back"] += len(jobs)

    async def _sql(self, query: str, params: tuple[Any, ...]) -> Any:
        """Run one jobs-bookkeeping call and return its single value.

        Failures are logged, not raised: the lease expiring is the fallback for every one.
        """
        assert self._pool is not None
        try:
            async with self._pool.connection() as conn:
                row = await (await conn.execute(query, params)).fetchone()
        except (psycopg.Error, OSError) as exc:
            log.warning("jobs bookkeeping failed (%s); the lease will expire instead", exc)
            return None
        return next(iter(row.values())) if row else None


async def _close_clients(clients: dict[str, Any]) -> None:
    """Close provider clients the handlers opened (aiohttp sessions and the like)."""
    for client in clients.values():
        for target in (client, getattr(client, "http_client", None)):
            closer = getattr(target, "aclose", None) or getattr(target, "close", None)
            if closer is None:
                continue
            try:
                res = closer()
                if inspect.isawaitable(res):
                    await res
            except Exception as exc:
                log.debug("closing %r: %s", target, exc)
            break
