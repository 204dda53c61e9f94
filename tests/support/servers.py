"""Processes the tests run against the session's test database: the edge functions
(`supabase/functions/_dev/serve.ts` under deno, as `dbr up` runs it) and worker processes
(`python -m workers`)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dbr.dev import stack
from dbr.providers.twilio import LOCAL_AUTH_TOKEN
from dbr.settings import ROOT, Settings
from tests.support import free_port


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

    @property
    def calcom_webhook(self) -> str:
        return f"{self.base_url}/calcom-webhook"


@contextmanager
def serve_functions(
    db_url: str, settings: Settings, log: Path, env: dict[str, str] | None = None
) -> Iterator[FunctionsServer]:
    """`supabase/functions/_dev/serve.ts` on a free port against `db_url`, logging to `log`;
    `env` adds to (or overrides) the functions' environment."""
    port = free_port()
    full_env = {
        **os.environ,
        "SUPABASE_DB_URL": db_url,
        "PUBLIC_WEBHOOK_BASE_URL": f"http://127.0.0.1:{port}/functions/v1",
        "TWILIO_AUTH_TOKEN": LOCAL_AUTH_TOKEN,
        "NO_COLOR": "1",
        **(env or {}),
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
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        if not stack.wait_for_port(port, timeout=60):
            raise RuntimeError(f"functions server did not start:\n{log.read_text()}")
        yield FunctionsServer(port, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


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
