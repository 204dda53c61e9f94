"""Helpers for the AI tests: a tenant that can receive and send SMS, inbound messages through
the real Twilio ingest, and a small job runner that drives ai.* handlers the way the worker
runtime does (claim, run, complete or fail) with provider clients the test controls."""

from __future__ import annotations

import asyncio
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from anthropic import AsyncAnthropic
from psycopg.types.json import Jsonb

import workers.handlers.ai  # noqa: F401 - registers ai.reply / ai.draft
from dbr.db import async_pool
from dbr.dev.standins.anthropic import AnthropicStandin
from dbr.dev.standins.calcom import CalcomStandin
from dbr.providers.calcom import STANDIN_EVENT_TYPE_ID, CalcomClient
from dbr.settings import Settings
from tests.support import make_user
from workers.jobs import HANDLERS, Context, Job, PermanentError, RetryableError

Conn = psycopg.Connection[Any]
MODEL = "claude-sonnet-4-6"


# ---------------------------------------------------------------------- tenants


@dataclass
class World:
    client_id: uuid.UUID
    number: str
    dataset_id: uuid.UUID
    admin: uuid.UUID
    leads: list[uuid.UUID] = field(default_factory=list)


def _number(prefix: str) -> str:
    return prefix + "".join(secrets.choice("0123456789") for _ in range(13 - len(prefix)))


def make_world(db: Conn, *, dataset_ai_mode: str | None = None, **client_settings: Any) -> World:
    """A client with a Twilio number, an admin, an active dataset and no send limits."""
    number = _number("+4470001")
    client_id = db.execute(
        "insert into public.clients (name, twilio_phone_number, settings)"
        " values (%s, %s, %s) returning id",
        (
            "Acme Windows",
            number,
            Jsonb({"sms_per_hour": 1_000_000, "number_pace_per_second": 0, **client_settings}),
        ),
    ).fetchone()["id"]
    dataset_id = db.execute(
        "insert into public.datasets (client_id, name, source, campaign_status, ai_mode)"
        " values (%s, '2023 enquiries', 'website', 'active', %s) returning id",
        (client_id, dataset_ai_mode),
    ).fetchone()["id"]
    return World(client_id, number, dataset_id, make_user(db, client_id, "admin"))


def make_lead(db: Conn, world: World, first_name: str = "Sam") -> uuid.UUID:
    lead_id = db.execute(
        "insert into public.leads (client_id, dataset_id, first_name, last_name, phone_number,"
        " notes, custom_fields, contact_status, m1_sent_at)"
        " values (%s, %s, %s, 'Taylor', %s, 'Asked about sash windows', %s, 'M1_SENT', now())"
        " returning id",
        (
            world.client_id,
            world.dataset_id,
            first_name,
            _number("+4477009"),
            Jsonb({"product": "sash windows"}),
        ),
    ).fetchone()["id"]
    # The campaign's first message, as the sequence would have sent it.
    db.execute(
        "insert into public.conversations (client_id, dataset_id, lead_id) values (%s, %s, %s)",
        (world.client_id, world.dataset_id, lead_id),
    )
    db.execute(
        "insert into public.messages (client_id, dataset_id, conversation_id, lead_id, direction,"
        " message_category, status, content, sent_at, created_at)"
        " select l.client_id, l.dataset_id, c.id, l.id, 'outbound', 'm1', 'sent',"
        " 'Hi ' || l.first_name || ', it''s Acme Windows. Are you still thinking about new"
        " windows?', now() - interval '1 hour', now() - interval '1 hour'"
        " from public.leads l join public.conversations c on c.lead_id = l.id where l.id = %s",
        (lead_id,),
    )
    world.leads.append(lead_id)
    return lead_id


def lead_phone(db: Conn, lead_id: uuid.UUID) -> str:
    return db.execute("select phone_number from public.leads where id = %s", (lead_id,)).fetchone()[
        "phone_number"
    ]


def conversation_of(db: Conn, lead_id: uuid.UUID) -> uuid.UUID:
    return db.execute(
        "select id from public.conversations where lead_id = %s", (lead_id,)
    ).fetchone()["id"]


def inbound(db: Conn, world: World, lead_id: uuid.UUID, body: str) -> dict[str, Any]:
    """The lead texts us: through the real Twilio ingest (stores, enqueues ai.reply)."""
    sid = "SM" + secrets.token_hex(16)
    params = {
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": lead_phone(db, lead_id),
        "To": world.number,
        "Body": body,
        "SmsStatus": "received",
    }
    return db.execute("select private.ingest_twilio_webhook(%s) as r", (Jsonb(params),)).fetchone()[
        "r"
    ]


def ai_messages(db: Conn, lead_id: uuid.UUID, *, status: str | None = None) -> list[dict[str, Any]]:
    return db.execute(
        "select id, content, status::text as status, message_category::text as category,"
        " ai_generated, ai_confidence, ai_reasoning, ai_metadata, sent_by"
        " from public.messages where lead_id = %s and direction = 'outbound'"
        " and message_category <> 'm1' and (%s::text is null or status::text = %s)"
        " order by created_at, id",
        (lead_id, status, status),
    ).fetchall()


def lead(db: Conn, lead_id: uuid.UUID) -> dict[str, Any]:
    return db.execute(
        "select l.*, l.contact_status::text as status, l.lead_sentiment::text as sentiment,"
        " c.status::text as conversation_status, c.ai_consecutive_messages"
        " from public.leads l join public.conversations c on c.lead_id = l.id where l.id = %s",
        (lead_id,),
    ).fetchone()


def notifications(db: Conn, client_id: uuid.UUID) -> list[str]:
    return [
        r["title"]
        for r in db.execute(
            "select distinct title, min(created_at) from public.notifications where client_id = %s"
            " group by title order by 2",
            (client_id,),
        ).fetchall()
    ]


# ---------------------------------------------------------------------- running jobs


def claude_client(standin: AnthropicStandin, **kw: Any) -> AsyncAnthropic:
    kw.setdefault("max_retries", 0)
    kw.setdefault("timeout", 5.0)
    return AsyncAnthropic(api_key="sk-test", base_url=standin.base_url, **kw)


def calcom_client(standin: CalcomStandin) -> CalcomClient:
    return CalcomClient(standin.base_url, default_event_type_id=STANDIN_EVENT_TYPE_ID)


@dataclass
class Outcome:
    job_id: int
    kind: str
    status: str  # done | retry | dead
    result: dict[str, Any] | None = None
    error: str | None = None


def run_jobs(
    db_url: str,
    settings: Settings,
    *,
    claude: AnthropicStandin,
    cal: CalcomStandin | None = None,
    kinds: tuple[str, ...] = ("ai.reply",),
    anthropic: Any = None,
    max_rounds: int = 20,
) -> list[Outcome]:
    """Runs every queued job of `kinds` now (delays and retry backoff skipped) until none is
    left, the way the runtime does: claim, handler, complete or fail."""

    async def main() -> list[Outcome]:
        pool = async_pool(db_url, min_size=1, max_size=3)
        await pool.open()
        clients = {
            "anthropic": anthropic or claude_client(claude),
            "calcom": calcom_client(cal) if cal else None,
        }
        ctx = Context(pool=pool, settings=settings, worker_id="ai-test", clients=clients)
        outcomes: list[Outcome] = []
        try:
            for _ in range(max_rounds):
                async with pool.connection() as conn:
                    await conn.execute(
                        "update private.jobs set run_at = now() where status = 'queued'"
                        " and kind = any(%s)",
                        (list(kinds),),
                    )
                    rows = await (
                        await conn.execute(
                            "select * from private.claim_jobs('ai-test', %s, 10, 60)",
                            (list(kinds),),
                        )
                    ).fetchall()
                if not rows:
                    break
                for row in rows:
                    outcomes.append(await _run_one(pool, ctx, Job.from_row(row)))
        finally:
            if anthropic is None:  # the client made here is closed while its loop still runs
                await clients["anthropic"].close()
            await pool.close()
        return outcomes

    return asyncio.run(main())


async def _run_one(pool: Any, ctx: Context, job: Job) -> Outcome:
    try:
        result = await HANDLERS[job.kind](job, ctx)
    except (RetryableError, PermanentError) as exc:
        retry = isinstance(exc, RetryableError)
        async with pool.connection() as conn:
            row = await (
                await conn.execute(
                    "select private.fail_job(%s, 'ai-test', %s, %s, 0) as s",
                    (job.id, str(exc), retry),
                )
            ).fetchone()
        return Outcome(job.id, job.kind, "dead" if row["s"] == "dead" else "retry", error=str(exc))
    async with pool.connection() as conn:
        await conn.execute(
            "select private.complete_job(%s, 'ai-test', %s)",
            (job.id, Jsonb(result) if result is not None else None),
        )
    return Outcome(job.id, job.kind, "done", result=result)


class HookedAnthropic:
    """Wraps a client: runs `hook()` (in a thread) after each answer, before the handler
    continues. Lets a test change the world while Claude is 'thinking'."""

    def __init__(self, inner: AsyncAnthropic, hook: Callable[[], Any], times: int = 1) -> None:
        self._inner = inner
        self._hook = hook
        self._times = times
        self.messages = self

    async def create(self, **kw: Any) -> Any:
        message = await self._inner.messages.create(**kw)
        if self._times > 0:
            self._times -= 1
            await asyncio.to_thread(self._hook)
        return message


class BackgroundJobs:
    """Runs queued jobs of `kinds` in a thread while the test thread waits on the API."""

    def __init__(self, db_url: str, settings: Settings, **kw: Any) -> None:
        self._args = (db_url, settings)
        self._kw = kw
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ai-jobs", daemon=True)
        self.outcomes: list[Outcome] = []

    def _run(self) -> None:
        while not self._stop.is_set():
            self.outcomes.extend(run_jobs(*self._args, **self._kw))
            self._stop.wait(0.05)

    def __enter__(self) -> BackgroundJobs:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
