"""Wake-up signals for the worker pool: they only cut latency, they never carry work.

Jobs are rows; a worker finds them by claiming. A signal just says "claim now" instead of
at the next poll. Two backends:

- `ListenNotify` (local, or any direct Postgres connection): LISTEN on `dbr_jobs`, which
  `private.wake_workers()` NOTIFYs once per enqueue statement. LISTEN needs a session that
  stays open, so it uses its own direct connection, never a transaction pooler (Supavisor
  port 6543 drops notifications).
- `RealtimeSignals` (Supabase): a postgres_changes subscription, through Supabase Realtime,
  on INSERTs into `public.job_signals` (one content-free row per enqueue statement; see
  migration 20261124020000_jobs.sql). Realtime is best effort and its client has dropped
  subscriptions on reconnect, so the channel is torn down and rebuilt on any error.

Both fire the signal after every (re)connect, so the pool re-scans for whatever was
enqueued while it was deaf. Whatever the backend, the pool also polls every
`worker_poll_seconds`: that backstop is the guarantee.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol
from urllib.parse import urlsplit

import psycopg

log = logging.getLogger("workers.wakeup")

CHANNEL = "dbr_jobs"


class WakeSignal:
    """A broadcast edge: every waiter that took `current()` before `fire()` wakes up.

    A waiter takes the event BEFORE it looks for work, so a signal that arrives between an
    empty claim and the wait is never lost.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.fired = 0

    def current(self) -> asyncio.Event:
        return self._event

    def fire(self) -> None:
        self.fired += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    @staticmethod
    async def wait(event: asyncio.Event, timeout: float) -> bool:
        """True when signalled, False when the timeout (the poll backstop) passed."""
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True


class Wakeup(Protocol):
    connected: bool

    async def run(self, signal: WakeSignal) -> None: ...


class ListenNotify:
    """LISTEN/NOTIFY on a dedicated direct connection, reconnecting with backoff."""

    def __init__(self, url: str, channel: str = CHANNEL, *, health_seconds: float = 30.0) -> None:
        self.url = url
        self.channel = channel
        self.health_seconds = health_seconds
        self.connected = False
        self.connections = 0
        if urlsplit(url).port == 6543:
            log.warning(
                "LISTEN through a transaction pooler (port 6543) loses notifications; "
                "use the direct database URL (port 5432)"
            )

    async def run(self, signal: WakeSignal) -> None:
        backoff = 0.2
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.url,
                    autocommit=True,
                    # Detect a silently dead link (NAT, failover) within ~30 s.
                    keepalives=1,
                    keepalives_idle=10,
                    keepalives_interval=5,
                    keepalives_count=3,
                    application_name="dbr-worker-listen",
                )
            except psycopg.OperationalError as exc:
                log.warning("LISTEN connection failed (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 15.0)
                continue
            try:
                async with conn:
                    await conn.execute(f"listen {self.channel}")
                    self.connected = True
                    self.connections += 1
                    backoff = 0.2
                    signal.fire()  # re-scan: jobs enqueued while we were not listening
                    while True:
                        async for _ in conn.notifies(timeout=self.health_seconds):
                            signal.fire()
                        await conn.execute("select 1")  # idle: prove the link is alive
            except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as exc:
                log.warning("LISTEN connection lost (%s); reconnecting", exc)
            finally:
                self.connected = False
            await asyncio.sleep(backoff)


class RealtimeSignals:
    """Supabase Realtime postgres_changes on public.job_signals (service role key)."""

    def __init__(self, supabase_url: str, api_key: str, *, table: str = "job_signals") -> None:
        self.url = supabase_url.rstrip("/") + "/realtime/v1"
        self.api_key = api_key
        self.table = table
        self.connected = False
        self.connections = 0

    async def run(self, signal: WakeSignal) -> None:
        from realtime import AsyncRealtimeClient, RealtimeSubscribeStates

        backoff = 0.5
        while True:
            broken = asyncio.Event()
            client = AsyncRealtimeClient(self.url, self.api_key, auto_reconnect=False)

            def on_state(state: Any, err: Exception | None, broken: asyncio.Event = broken) -> None:
                if state == RealtimeSubscribeStates.SUBSCRIBED:
                    self.connected = True
                    self.connections += 1
                    signal.fire()  # re-scan after every (re)subscribe
                else:
                    log.warning("realtime channel %s (%s)", state, err)
                    broken.set()

            channel = client.channel("dbr-job-signals")
            channel.on_postgres_changes(
                "INSERT", lambda _payload: signal.fire(), table=self.table, schema="public"
            )
            try:
                await client.connect()
                await channel.subscribe(on_state)
                backoff = 0.5
                # The client can lose its socket without telling the channel: check it too.
                while not broken.is_set() and client.is_connected:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(broken.wait(), 5.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the client raises bare Exceptions on connect failure
                log.warning("realtime connection failed (%s); retrying in %.1fs", exc, backoff)
            finally:
                self.connected = False
                with contextlib.suppress(Exception):
                    await client.close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
