"""Fixtures for the Cal.com tests: the calcom-webhook edge function served by Deno against the
test database with this suite's webhook secret. The stand-in (`calcom_standin`), the client
pointed at it (`calcom`) and the API using it (`calcom_api`) are shared fixtures
(tests/support/fixtures.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dbr.dev.standins.calcom import sign
from dbr.settings import Settings
from tests.support.bookings import WEBHOOK_SECRET
from tests.support.servers import serve_functions


class EdgeFunction:
    """The calcom-webhook function of a running functions server."""

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
def edge_function(
    db_url: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EdgeFunction]:
    """The local functions router (`_dev/serve.ts`, as `dbr up` runs it) on a free port, with
    this test database and webhook secret."""
    log = tmp_path_factory.mktemp("calcom-functions") / "functions.log"
    with serve_functions(db_url, settings, log, {"CALCOM_WEBHOOK_SECRET": WEBHOOK_SECRET}) as fn:
        yield EdgeFunction(fn.calcom_webhook)
