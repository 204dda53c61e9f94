"""Fixtures for the outreach engine tests: the Twilio stand-in (in-process), the edge functions
server (deno, subprocess) and worker processes against the session's test database, plus
builders for a sending client, a dataset with its campaign, leads and queued messages."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from dbr.dev import stack
from dbr.dev.standins.twilio import Running, TwilioStandin, serve_in_thread
from dbr.providers.twilio import LOCAL_AUTH_TOKEN
from dbr.settings import ROOT, Settings
from workers.runtime import WorkerPool

Conn = psycopg.Connection[Any]
# Nothing listens here: status callbacks of tests that do not run the functions server fail
# fast instead of reaching a developer's running stack.
NOWHERE = "http://127.0.0.1:9/functions/v1"


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:.0f}s")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def run_pool(
    settings: Settings,
    handlers: dict[str, Any],
    until: Callable[[], bool],
    *,
    during: Callable[[WorkerPool], Any] | None = None,
    **kw: Any,
) -> WorkerPool:
    """Run a pool until `until()` holds, then stop it gracefully and return it."""

    async def main() -> WorkerPool:
        pool = WorkerPool(settings, handlers=handlers, **{"poll_seconds": 60, **kw})
        task = asyncio.create_task(pool.run())
        await pool.started.wait()
        await _until(lambda: pool.wakeup.connected)
        if during:
            # Every loop has looked for work once and is asleep: what `during` enqueues can
            # only be found through the wake-up path under test.
            await _until(lambda: pool.stats["idle_waits"] >= pool.concurrency)
            await asyncio.sleep(0.3)  # let a claim round started by the connect signal finish
            res = during(pool)
            if asyncio.iscoroutine(res):
                await res
        try:
            await _until(until)
        finally:
            pool.request_stop()
            await task
        return pool

    return asyncio.run(main())


# ---------------------------------------------------------------------- servers


@pytest.fixture(scope="session")
def twilio_server() -> Iterator[Running]:
    with serve_in_thread(TwilioStandin(callbacks=False)) as running:
        yield running


@pytest.fixture
def twilio(twilio_server: Running) -> Iterator[Running]:
    """The stand-in, emptied and reset to defaults for this test."""
    fake = twilio_server.fake
    httpx.delete(f"{twilio_server.base_url}/_standin/messages")
    httpx.post(
        f"{twilio_server.base_url}/_standin/config",
        json={"callbacks": False, "out_of_order": False, "latency": 0, "stall": False},
    )
    fake.callback_delay = 0.02
    yield twilio_server


@dataclass
class FunctionsServer:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/functions/v1"

    @property
    def twilio_webhook(self) -> str:
        return f"{self.base_url}/twilio-webhook"


@contextmanager
def serve_functions(db_url: str, settings: Settings, log: Path) -> Iterator[FunctionsServer]:
    """`supabase/functions/_dev/serve.ts` on a free port against `db_url`, logging to `log`."""
    port = free_port()
    env = {
        **os.environ,
        "SUPABASE_DB_URL": db_url,
        "PUBLIC_WEBHOOK_BASE_URL": f"http://127.0.0.1:{port}/functions/v1",
        "TWILIO_AUTH_TOKEN": LOCAL_AUTH_TOKEN,
        "NO_COLOR": "1",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(stack.deno_bin(settings)),
                "run",
                "-A",
                "supabase/functions/_dev/serve.ts",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        if not stack.wait_for_port(port, timeout=60):
            raise RuntimeError(f"functions server did not start:\n{log.read_text()}")
        yield FunctionsServer(port, proc, log)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="session")
def functions_server(
    db_url: str, base_settings: Settings, tmp_path_factory
) -> Iterator[FunctionsServer]:
    """The edge functions on an ephemeral port against the test database."""
    log = tmp_path_factory.mktemp("functions") / "functions.log"
    with serve_functions(db_url, base_settings, log) as server:
        yield server


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def start_worker(db_url: str, tmp_path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start `python -m workers` (sms.send only) against the test DB and a given stand-in."""
    started: list[WorkerProcess] = []

    def start(
        twilio_url: str, *args: str, visibility: int = 3, webhook_base: str = NOWHERE
    ) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        env = {
            **os.environ,
            "SUPABASE_DB_URL": db_url,
            "TWILIO_BASE_URL": twilio_url,
            "PUBLIC_WEBHOOK_BASE_URL": webhook_base,
            "WORKER_VISIBILITY_SECONDS": str(visibility),
            "WORKER_POLL_SECONDS": "0.5",
        }
        for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "SUPABASE_URL"):
            env.pop(key, None)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "workers", "--kinds", "sms.send", *args],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        worker = WorkerProcess(proc, log)
        started.append(worker)
        return worker

    yield start
    for w in started:
        if w.proc.poll() is None:
            w.kill()


# ---------------------------------------------------------------------- data


def random_number(prefix: str = "+4477009", length: int = 13) -> str:
    return prefix + "".join(secrets.choice("0123456789") for _ in range(length - len(prefix)))


@dataclass
class Sender:
    client_id: uuid.UUID
    number: str
    service_sid: str | None


def make_sender(db: Conn, *, service: bool = True, **client_settings: Any) -> Sender:
    """A client that can send: its own number, optionally a messaging service (not paced),
    and limits high enough that tests are never rate limited unless they ask to be."""
    # Client numbers are unique: ten random digits keep hundreds of senders per run apart
    # (six gave a collision in a few percent of runs).
    number = random_number("+4470", length=15)
    service_sid = "MG" + secrets.token_hex(16) if service else None
    row = db.execute(
        "insert into public.clients"
        " (name, twilio_phone_number, twilio_messaging_service_sid, settings)"
        " values (%s, %s, %s, %s) returning id",
        (
            f"Sender {number}",
            number,
            service_sid,
            Jsonb({"sms_per_hour": 1_000_000, "number_pace_per_second": 0, **client_settings}),
        ),
    ).fetchone()
    return Sender(row["id"], number, service_sid)


def make_dataset(
    db: Conn, client_id: uuid.UUID, status: str = "active", **campaign: Any
) -> uuid.UUID:
    ds = db.execute(
        "insert into public.datasets (client_id, name, campaign_status)"
        " values (%s, %s, %s) returning id",
        (client_id, f"Dataset {uuid.uuid4().hex[:6]}", status),
    ).fetchone()["id"]
    cols = {"rate_limit_messages_per_minute": 6000, "hours_start": 0, "hours_end": 24, **campaign}
    names = ", ".join(cols)
    marks = ", ".join(["%s"] * len(cols))
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols)
    db.execute(
        f"insert into public.campaigns (dataset_id, client_id, {names}) values (%s, %s, {marks})"
        f" on conflict (dataset_id) do update set {updates}",
        (ds, client_id, *cols.values()),
    )
    return ds


def make_lead(
    db: Conn, sender: Sender, dataset_id: uuid.UUID, phone: str | None = None, **cols: Any
) -> uuid.UUID:
    fields = {"first_name": "Sam", "phone_number": phone or random_number(), **cols}
    names = ", ".join(fields)
    marks = ", ".join(["%s"] * len(fields))
    return db.execute(
        f"insert into public.leads (client_id, dataset_id, {names})"
        f" values (%s, %s, {marks}) returning id",
        (sender.client_id, dataset_id, *fields.values()),
    ).fetchone()["id"]


def make_leads(db: Conn, sender: Sender, dataset_id: uuid.UUID, n: int) -> list[dict[str, Any]]:
    """n leads with distinct numbers in one statement."""
    base = random_number("+44771")[:-4]
    return db.execute(
        "insert into public.leads (client_id, dataset_id, first_name, phone_number)"
        " select %s, %s, 'Lead ' || g, %s || lpad(g::text, 4, '0') from generate_series(1, %s) g"
        " returning id, phone_number",
        (sender.client_id, dataset_id, base, n),
    ).fetchall()


def queue_sms(db: Conn, lead_id: uuid.UUID, text: str, category: str = "human_manual") -> uuid.UUID:
    return db.execute(
        "select private.queue_sms(%s, %s, %s::public.message_category) as id",
        (lead_id, text, category),
    ).fetchone()["id"]


def message(db: Conn, message_id: uuid.UUID) -> dict[str, Any]:
    return db.execute("select * from public.messages where id = %s", (message_id,)).fetchone()


def send_job(db: Conn, message_id: uuid.UUID) -> dict[str, Any]:
    return db.execute(
        "select * from private.jobs where idempotency_key = %s", (f"sms.send:{message_id}",)
    ).fetchone()
