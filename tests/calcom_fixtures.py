"""Fixtures for the Cal.com tests: the stand-in, the API pointed at it, and the calcom-webhook
edge function served by Deno against the test database. Load with
`pytest_plugins = ("tests.calcom_fixtures",)`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dbr.dev.stack import deno_bin
from dbr.dev.standins.calcom import CalcomStandin, sign
from dbr.providers.calcom import STANDIN_EVENT_TYPE_ID, CalcomClient
from dbr.settings import ROOT, Settings
from tests.calcom_support import WEBHOOK_SECRET


@pytest.fixture
def fake_calcom() -> Iterator[CalcomStandin]:
    with CalcomStandin() as fake:
        yield fake


@pytest.fixture
def calcom(fake_calcom: CalcomStandin) -> CalcomClient:
    return CalcomClient(fake_calcom.base_url, default_event_type_id=STANDIN_EVENT_TYPE_ID)


@pytest.fixture
def calcom_api(api, calcom: CalcomClient):
    """The API (session app) with its Cal.com client pointed at this test's stand-in."""
    api.app.state.calcom = calcom
    yield api
    api.app.state.calcom = None


class EdgeFunction:
    """The calcom-webhook function served by Deno on an ephemeral port."""

    def __init__(self, url: str) -> None:
        self.url = url

    def post(self, body: bytes, signature: str | None) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-Cal-Signature-256"] = signature
        return httpx.post(self.url, content=body, headers=headers, timeout=15)

    def post_event(self, event: dict[str, Any], secret: str | None = WEBHOOK_SECRET):
        body = json.dumps(event).encode()
        return self.post(body, sign(body, secret))


@pytest.fixture(scope="module")
def edge_function(db_url: str, settings: Settings, tmp_path_factory) -> Iterator[EdgeFunction]:
    """The local functions router (`_dev/serve.ts`, as `dbr up` runs it) on a free port, with
    this test database and webhook secret."""
    log = tmp_path_factory.mktemp("calcom-functions") / "functions.log"
    env = {
        **os.environ,
        "SUPABASE_DB_URL": db_url,
        "CALCOM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "NO_COLOR": "1",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(deno_bin(settings)), "run", "-A", "supabase/functions/_dev/serve.ts", "0"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        port = None
        while port is None and time.monotonic() < deadline and proc.poll() is None:
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read_text())
            port = int(found.group(1)) if found else None
            if port is None:
                time.sleep(0.05)
        if port is None:
            raise RuntimeError(f"functions server did not start:\n{log.read_text()}")
        yield EdgeFunction(f"http://127.0.0.1:{port}/functions/v1/calcom-webhook")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
