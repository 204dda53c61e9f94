"""Fixtures several domains use, registered by the root conftest (so any `tests/<domain>/`
can ask for them by name): the stand-ins of Twilio, Anthropic and Cal.com, the edge
functions server, worker processes, and settings pointing the providers at the stand-ins."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from dbr.dev.standins.anthropic import AnthropicStandin
from dbr.dev.standins.calcom import CalcomStandin
from dbr.dev.standins.twilio import Running, TwilioStandin, serve_in_thread
from dbr.providers.calcom import STANDIN_EVENT_TYPE_ID, CalcomClient
from dbr.settings import ROOT, Settings
from tests.support.ai import MODEL
from tests.support.outreach import NOWHERE
from tests.support.servers import FunctionsServer, WorkerProcess, serve_functions

# ---------------------------------------------------------------------- Twilio


@pytest.fixture(scope="session")
def twilio_server() -> Iterator[Running]:
    with serve_in_thread(TwilioStandin(callbacks=False)) as running:
        yield running


@pytest.fixture
def twilio(twilio_server: Running) -> Iterator[Running]:
    """The Twilio stand-in, emptied and reset to defaults for this test."""
    httpx.delete(f"{twilio_server.base_url}/_standin/messages")
    httpx.post(
        f"{twilio_server.base_url}/_standin/config",
        json={"callbacks": False, "out_of_order": False, "latency": 0, "stall": False},
    )
    twilio_server.standin.callback_delay = 0.02
    yield twilio_server


# ---------------------------------------------------------------------- Anthropic, Cal.com


@pytest.fixture
def claude() -> Iterator[AnthropicStandin]:
    """A fresh Anthropic stand-in per test: no requests, faults or cache entries from other
    tests, and no late request (an SDK retry after an injected timeout) landing in this one."""
    with AnthropicStandin() as standin:
        yield standin


@pytest.fixture
def cal() -> Iterator[CalcomStandin]:
    """A Cal.com stand-in for the AI tests (the AI books through it)."""
    with CalcomStandin() as standin:
        yield standin


@pytest.fixture
def ai_settings(settings: Settings, claude: AnthropicStandin, cal: CalcomStandin) -> Settings:
    """Settings with Anthropic and Cal.com pointed at this test's stand-ins."""
    return settings.model_copy(
        update={
            "anthropic_api_key": None,
            "anthropic_base_url": claude.base_url,
            "anthropic_model": MODEL,
            "calcom_api_key": None,
            "calcom_base_url": cal.base_url,
        }
    )


@pytest.fixture
def empty_ai_queue(db_url: str) -> None:
    """The test runs only the AI jobs it queues itself: `run_jobs` claims every queued AI
    job, so leftovers from other test modules sharing the session database are canceled."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "update private.jobs set status = 'canceled', finished_at = now()"
            " where status in ('queued', 'running') and kind like 'ai.%'"
        )


@pytest.fixture
def calcom_standin() -> Iterator[CalcomStandin]:
    """A Cal.com stand-in for the bookings tests."""
    with CalcomStandin() as standin:
        yield standin


@pytest.fixture
def calcom(calcom_standin: CalcomStandin) -> CalcomClient:
    """The real Cal.com client pointed at this test's stand-in."""
    return CalcomClient(calcom_standin.base_url, default_event_type_id=STANDIN_EVENT_TYPE_ID)


@pytest.fixture
def calcom_api(api: TestClient, calcom: CalcomClient) -> Iterator[TestClient]:
    """The API (session app) with its Cal.com client pointed at this test's stand-in."""
    api.app.state.calcom = calcom  # type: ignore[attr-defined]
    yield api
    api.app.state.calcom = None  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- processes


@pytest.fixture(scope="session")
def functions_server(
    db_url: str, base_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FunctionsServer]:
    """The edge functions on an ephemeral port against the test database."""
    log = tmp_path_factory.mktemp("functions") / "functions.log"
    with serve_functions(db_url, base_settings, log) as server:
        yield server


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
