"""Helpers for the Sophie tests: a runner that drives sophie.* handlers the way the worker
runtime does (claim, run, complete, fail or defer) with a client the test controls."""

from __future__ import annotations

import asyncio
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

import workers.handlers.sophie  # noqa: F401 - registers sophie.*
from dbr.db import async_pool
from dbr.dev.standins.anthropic import AnthropicStandin
from dbr.settings import Settings
from tests.support.ai import claude_client
from workers.jobs import HANDLERS, Context, Job, PermanentError, RetryableError
from workers.runtime import Defer

Conn = psycopg.Connection[Any]
KINDS = ("sophie.analyze", "sophie.batch", "sophie.patterns")


@dataclass
class Outcome:
    job_id: int
    kind: str
    status: str  # done | retry | dead | deferred
    result: dict[str, Any] | None = None
    error: str | None = None


def run_sophie_jobs(
    db_url: str,
    settings: Settings,
    *,
    claude: AnthropicStandin,
    kinds: tuple[str, ...] = KINDS,
    skip_waits: bool = True,
    max_rounds: int = 30,
) -> list[Outcome]:
    """Runs queued jobs of `kinds` until none is due. With skip_waits, deferred jobs (a batch
    in progress) and retries are due at once; without, a deferred job waits its time."""

    async def main() -> list[Outcome]:
        pool = async_pool(db_url, min_size=1, max_size=3)
        await pool.open()
        client = claude_client(claude)
        ctx = Context(
            pool=pool, settings=settings, worker_id="sophie-test", clients={"anthropic": client}
        )
        outcomes: list[Outcome] = []
        try:
            for _ in range(max_rounds):
                async with pool.connection() as conn:
                    if skip_waits:
                        await conn.execute(
                            "update private.jobs set run_at = now() where status = 'queued'"
                            " and kind = any(%s)",
                            (list(kinds),),
                        )
                    rows = await (
                        await conn.execute(
                            "select * from private.claim_jobs('sophie-test', %s, 10, 60)",
                            (list(kinds),),
                        )
                    ).fetchall()
                if not rows:
                    break
                for row in rows:
                    outcomes.append(await _run_one(pool, ctx, Job.from_row(row)))
        finally:
            await client.close()
            await pool.close()
        return outcomes

    return asyncio.run(main())


async def _run_one(pool: Any, ctx: Context, job: Job) -> Outcome:
    try:
        result = await HANDLERS[job.kind](job, ctx)
    except Defer as exc:
        async with pool.connection() as conn:
            await conn.execute(
                "select private.defer_job(%s, 'sophie-test', %s, %s)",
                (job.id, exc.until, exc.reason),
            )
        return Outcome(job.id, job.kind, "deferred", error=exc.reason)
    except (RetryableError, PermanentError) as exc:
        retry = isinstance(exc, RetryableError)
        async with pool.connection() as conn:
            row = await (
                await conn.execute(
                    "select private.fail_job(%s, 'sophie-test', %s, %s, 0) as s",
                    (job.id, str(exc), retry),
                )
            ).fetchone()
        return Outcome(job.id, job.kind, "dead" if row["s"] == "dead" else "retry", error=str(exc))
    async with pool.connection() as conn:
        await conn.execute(
            "select private.complete_job(%s, 'sophie-test', %s)",
            (job.id, Jsonb(result) if result is not None else None),
        )
    return Outcome(job.id, job.kind, "done", result=result)


class BackgroundSophie:
    """Runs Sophie jobs in a thread while the test thread waits on the API."""

    def __init__(self, db_url: str, settings: Settings, **kw: Any) -> None:
        self._args = (db_url, settings)
        self._kw = kw
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sophie-jobs", daemon=True)
        self.outcomes: list[Outcome] = []

    def _run(self) -> None:
        while not self._stop.is_set():
            self.outcomes.extend(run_sophie_jobs(*self._args, **self._kw))
            self._stop.wait(0.05)

    def __enter__(self) -> BackgroundSophie:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def outbound(db: Conn, lead_id: uuid.UUID, content: str, *, status: str = "sent") -> uuid.UUID:
    """An outbound staff message of the lead's conversation (status sent: it went out)."""
    return db.execute(
        "insert into public.messages (client_id, dataset_id, conversation_id, lead_id, direction,"
        " message_category, status, content, sent_at)"
        " select l.client_id, l.dataset_id, c.id, l.id, 'outbound', 'human_manual', %s, %s, now()"
        " from public.leads l join public.conversations c on c.lead_id = l.id where l.id = %s"
        " returning id",
        (status, content, lead_id),
    ).fetchone()["id"]


def insights(db: Conn, **where: Any) -> list[dict[str, Any]]:
    cond = " and ".join(f"{k} = %s" for k in where) or "true"
    return db.execute(
        "select id, severity::text as severity, category, title, pattern_key,"
        " status::text as status, message_id, conversation_id from public.sophie_insights"
        f" where {cond} order by created_at, id",
        tuple(where.values()),
    ).fetchall()


def analyses(db: Conn, **where: Any) -> list[dict[str, Any]]:
    cond = " and ".join(f"{k} = %s" for k in where) or "true"
    return db.execute(
        f"select * from public.sophie_analyses where {cond} order by created_at, id",
        tuple(where.values()),
    ).fetchall()


def sophie_requests(claude: AnthropicStandin) -> list[Any]:
    """The stand-in's review requests sent one at a time (not through a batch)."""
    return [
        r
        for r in claude.requests
        if (r.body.get("tool_choice") or {}).get("name") == "record_review"
        and r.headers.get("x-standin-batch") != "1"
    ]
