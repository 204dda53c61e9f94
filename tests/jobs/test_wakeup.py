"""Wake-up signals: the content-free public.job_signals rows that Supabase Realtime carries, and
the Realtime backend (the real `realtime` client against a minimal Phoenix-protocol server on
loopback: join, postgres_changes, server-side disconnect)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb
from websockets.asyncio.server import ServerConnection, serve

from dbr.settings import Settings
from tests.support import acting_as, make_client, make_user
from workers.jobs import Context, Job
from workers.runtime import WorkerPool
from workers.wakeup import RealtimeSignals, WakeSignal

TOPIC = "realtime:dbr-job-signals"


def test_every_enqueue_statement_writes_one_signal_users_cannot_read(db):
    before = db.execute("select count(*) as n from public.job_signals").fetchone()["n"]
    db.execute(
        "insert into private.jobs (kind, payload)"
        " select 't_signal.bulk', '{}'::jsonb from generate_series(1, 50)"
    )
    db.execute("select private.enqueue_job('t_signal.one')")
    after = db.execute("select count(*) as n from public.job_signals").fetchone()["n"]
    assert after - before == 2
    db.execute("update private.jobs set status = 'canceled' where kind like 't_signal.%'")

    user = make_user(db, make_client(db, "Signals"), "admin")
    with acting_as(db, user) as c, pytest.raises(psycopg.errors.InsufficientPrivilege):
        c.execute("select * from public.job_signals")


class RealtimeStandin:
    """Enough of Supabase Realtime's Phoenix protocol for a postgres_changes subscription."""

    def __init__(self) -> None:
        self.connections: list[ServerConnection] = []
        self.joins: list[dict[str, Any]] = []
        self.port = 0

    async def handler(self, ws: ServerConnection) -> None:
        self.connections.append(ws)
        async for raw in ws:
            msg = json.loads(raw)
            if msg["event"] == "phx_join":
                self.joins.append(msg["payload"])
                bindings = [
                    {**b, "id": 700 + i}
                    for i, b in enumerate(msg["payload"]["config"]["postgres_changes"])
                ]
                response = {"postgres_changes": bindings}
            else:  # heartbeat, leave, access_token
                response = {}
            await ws.send(
                json.dumps(
                    {
                        "event": "phx_reply",
                        "topic": msg["topic"],
                        "payload": {"status": "ok", "response": response},
                        "ref": msg.get("ref"),
                    }
                )
            )

    async def insert_signal(self) -> None:
        change = {
            "event": "postgres_changes",
            "topic": TOPIC,
            "ref": None,
            "payload": {
                "ids": [700],
                "data": {
                    "schema": "public",
                    "table": "job_signals",
                    "commit_timestamp": "2026-11-24T10:00:00Z",
                    "type": "INSERT",
                    "errors": None,
                    "columns": [{"name": "id", "type": "int8"}],
                    "record": {"id": 1},
                },
            },
        }
        await self.connections[-1].send(json.dumps(change))


async def _eventually(check, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


def test_realtime_backend_subscribes_wakes_and_resubscribes_after_a_drop():
    async def main() -> None:
        standin = RealtimeStandin()
        async with serve(standin.handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            backend = RealtimeSignals(f"http://127.0.0.1:{port}", "service-role-key")
            signal = WakeSignal()
            task = asyncio.create_task(backend.run(signal))
            try:
                await _eventually(lambda: backend.connected and signal.fired == 1)
                assert standin.joins[0]["config"]["postgres_changes"] == [
                    {"event": "INSERT", "schema": "public", "table": "job_signals"}
                ]
                assert standin.joins[0]["access_token"] == "service-role-key"
                await standin.insert_signal()
                await _eventually(lambda: signal.fired == 2)
                # The server drops the socket: the backend builds a new client and channel,
                # and the new subscription fires a re-scan.
                await standin.connections[-1].close()
                await _eventually(lambda: backend.connections == 2 and signal.fired == 3)
                await standin.insert_signal()
                await _eventually(lambda: signal.fired == 4)
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    asyncio.run(main())


def test_pool_woken_through_realtime(settings: Settings, db):
    kind = f"t_rt_{uuid.uuid4().hex[:6]}"

    async def noop(job: Job, ctx: Context) -> dict:
        return {"ok": True}

    async def main() -> None:
        standin = RealtimeStandin()
        async with serve(standin.handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            pool = WorkerPool(
                settings,
                handlers={kind: noop},
                poll_seconds=60,
                wakeup=RealtimeSignals(f"http://127.0.0.1:{port}", "key"),
            )
            task = asyncio.create_task(pool.run())
            await _eventually(lambda: pool.wakeup.connected)
            await asyncio.sleep(0.2)  # the subscribe re-scan found nothing; loops are idle
            job_id = (
                await asyncio.to_thread(
                    lambda: db.execute(
                        "select private.enqueue_job(%s, %s) as id", (kind, Jsonb({}))
                    ).fetchone()
                )
            )["id"]
            await standin.insert_signal()  # what Realtime does for the job_signals insert

            def done() -> bool:
                row = db.execute("select status from private.jobs where id = %s", (job_id,))
                return row.fetchone()["status"] == "done"

            async with asyncio.timeout(10):
                while not await asyncio.to_thread(done):
                    await asyncio.sleep(0.05)
            pool.request_stop()
            await task

    asyncio.run(main())
