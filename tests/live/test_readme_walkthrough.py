"""The README walkthrough, typed by a machine: a complete stack of its own (`bin/dbr up` on
free ports and a fresh cluster, never the user's), then every command block of the README's
walkthrough run verbatim in one shell, in order. After each block the database is checked for
what a person would see by then. Nothing here calls a tick or a worker: pg_cron sends M1, M2
and M3 on the wall clock, the worker pool talks to the Twilio, Claude and Cal.com stand-ins.

The blocks are the fenced `bash` blocks that follow `<!-- walkthrough: NAME -->` in README.md,
so the README cannot drift from what works. A block without a check here (or a check without
its block) fails the gate.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from dbr.settings import ROOT
from tests.support import free_port, wait_for

# A stack start, five minutes of wall clock for pg_cron's ticks, and the stop: more than the
# suite's default per-test timeout.
pytestmark = [pytest.mark.live, pytest.mark.timeout(900)]

README = ROOT / "README.md"
STEP = re.compile(r"<!-- walkthrough: ([a-z0-9-]+) -->\s*```bash\n(.*?)```", re.S)
ACME = "10000000-0000-4000-a000-000000000001"
# Which sample leads the walkthrough plays (examples/leads.csv).
BOOKS = "+447911123456"  # Olivia: replies, is offered slots, books the first one
STOPS = "+447400123456"  # James: texts STOP
# Credentials in the environment would make the stack talk to the real services and text the
# sample numbers: the gate always runs on the stand-ins.
REAL_SERVICE_VARS = re.compile(
    r"^(TWILIO_|ANTHROPIC_|CALCOM_|RESEND_|EMAIL_|SUPABASE_|PUBLIC_WEBHOOK_BASE_URL$|DBR_|PG_PORT$|API_PORT$)"
)


def readme_steps(text: str) -> list[tuple[str, str]]:
    return STEP.findall(text)


class Shell:
    """One bash session fed block by block, so variables set by a block reach the next, as
    when a person types the walkthrough into one terminal."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.run("set -euo pipefail", timeout=10)

    def _pump(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def run(self, script: str, timeout: float) -> str:
        marker = f"__block_done_{uuid.uuid4().hex}__"
        assert self.proc.stdin
        self.proc.stdin.write(f"{script}\necho {marker}\n")
        self.proc.stdin.flush()
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"block still running after {timeout:.0f}s:\n{script}\n{''.join(out)}"
                ) from None
            if line is None:
                raise AssertionError(
                    f"a command failed (exit {self.proc.wait()}):\n{script}\n--- output ---\n"
                    + "".join(out)
                )
            if line.strip() == marker:
                return "".join(out)
            out.append(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@dataclass
class LiveStack:
    env: dict[str, str]
    db_url: str
    started_at: datetime
    conn: psycopg.Connection[dict[str, Any]] | None = None

    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(self.db_url, autocommit=True, row_factory=dict_row)
        return self.conn.execute(sql, params).fetchall()

    def one(self, sql: str, *params: Any) -> Any:
        rows = self.query(sql, *params)
        return next(iter(rows[0].values())) if rows else None


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    base: Path = tmp_path_factory.mktemp("live-stack")
    ports = {
        name: str(free_port())
        for name in (
            "PG_PORT",
            "API_PORT",
            "FUNCTIONS_PORT",
            "TWILIO_STANDIN_PORT",
            "ANTHROPIC_STANDIN_PORT",
            "CALCOM_STANDIN_PORT",
            "EMAIL_STANDIN_PORT",
            "AUTH_STANDIN_PORT",
        )
    }
    env = {k: v for k, v in os.environ.items() if not REAL_SERVICE_VARS.match(k)}
    env |= ports | {"DBR_LOCAL_DIR": str(base / ".local"), "NO_COLOR": "1", "TERM": "dumb"}
    started_at = datetime.now(UTC)
    up = subprocess.run(
        [str(ROOT / "bin" / "dbr"), "up"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    stack = LiveStack(
        env, f"postgresql://postgres:postgres@127.0.0.1:{ports['PG_PORT']}/postgres", started_at
    )
    try:
        assert up.returncode == 0, f"bin/dbr up failed:\n{up.stdout}\n{up.stderr}"
        yield stack
    finally:
        if stack.conn is not None:
            stack.conn.close()
        subprocess.run(
            [str(ROOT / "bin" / "dbr"), "stop"], cwd=ROOT, env=env, capture_output=True, timeout=120
        )
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- what each block leads to


def dataset_id(live: LiveStack) -> str:
    return live.one(
        "select id::text from public.datasets where client_id = %s"
        " order by created_at desc limit 1",
        ACME,
    )


def lead_messages(live: LiveStack, phone: str) -> list[dict[str, Any]]:
    return live.query(
        "select m.direction, m.message_category, m.status, m.content, m.created_at, m.twilio_sid"
        " from public.messages m join public.leads l on l.id = m.lead_id"
        " where l.dataset_id = %s and l.phone_number = %s order by m.created_at",
        dataset_id(live),
        phone,
    )


def check_setup(live: LiveStack, out: str) -> None:
    assert live.one("select count(*) from cron.job where active") >= 3


def check_import(live: LiveStack, out: str) -> None:
    ds = dataset_id(live)
    phones = {
        r["phone_number"]
        for r in live.query("select phone_number from public.leads where dataset_id = %s", ds)
    }
    # 13 rows: a duplicate number, a landline and a row without a number are reported, not imported.
    assert len(phones) == 10, phones
    assert "+442079460018" not in phones, "a landline cannot receive SMS"
    assert {BOOKS, STOPS} <= phones
    assert '"row"' in out, "the import reports the bad rows with their row numbers"
    stats = live.query("select total_leads, active_leads from public.datasets where id = %s", ds)
    assert stats[0]["total_leads"] == 10


def check_start(live: LiveStack, out: str) -> None:
    assert (
        live.one(
            "select campaign_status::text from public.datasets where id = %s", dataset_id(live)
        )
        == "active"
    )


def check_m1(live: LiveStack, out: str) -> None:
    ds = dataset_id(live)

    def all_sent() -> bool:
        return (
            live.one(
                "select count(*) from public.messages where dataset_id = %s"
                " and message_category = 'm1' and twilio_sid is not null",
                ds,
            )
            == 10
        )

    wait_for(all_sent, 150, "M1 sent to every lead by the pg_cron sequencing tick")


def check_reply(live: LiveStack, out: str) -> None:
    def offered() -> bool:
        msgs = lead_messages(live, BOOKS)
        return any(
            m["direction"] == "outbound"
            and m["message_category"] == "ai_response"
            and re.search(r"\d(am|pm)", m["content"])
            for m in msgs
        )

    wait_for(offered, 90, "the AI answer offering call slots")


def check_book(live: LiveStack, out: str) -> None:
    def booked() -> bool:
        return bool(
            live.query(
                "select 1 from public.bookings b join public.leads l on l.id = b.lead_id"
                " where l.dataset_id = %s and l.phone_number = %s and b.status = 'accepted'"
                " and l.contact_status = 'CALL_BOOKED'",
                dataset_id(live),
                BOOKS,
            )
        )

    wait_for(booked, 90, "the booked call (lead CALL_BOOKED, booking accepted)")


def check_stop(live: LiveStack, out: str) -> None:
    def opted_out() -> bool:
        return bool(
            live.query(
                "select 1 from public.leads l join public.suppressions s"
                " on s.client_id = l.client_id and s.phone_number = l.phone_number"
                " where l.dataset_id = %s and l.phone_number = %s and l.opted_out",
                dataset_id(live),
                STOPS,
            )
        )

    wait_for(opted_out, 30, "the STOP recorded (lead opted out, number suppressed)")


def check_status(live: LiveStack, out: str) -> None:
    assert "sequencing-tick" in out and "succeeded" in out


CHECKS: dict[str, Callable[[LiveStack, str], None]] = {
    "setup": check_setup,
    "import": check_import,
    "start": check_start,
    "m1": check_m1,
    "reply": check_reply,
    "book": check_book,
    "stop": check_stop,
    "status": check_status,
}


def test_readme_names_a_check_for_every_block() -> None:
    names = [name for name, _ in readme_steps(README.read_text())]
    assert names == list(CHECKS), "README walkthrough blocks and the gate's checks differ"


def test_readme_walkthrough_on_a_live_stack(live: LiveStack) -> None:
    shell = Shell(live.env)
    try:
        for name, block in readme_steps(README.read_text()):
            out = shell.run(block, timeout=120)
            CHECKS[name](live, out)
    finally:
        shell.close()

    # A job that cannot succeed, to see `dbr status` fail loudly once it has run.
    live.query("select cron.schedule('live-gate-broken-job', '* * * * *', 'select 1 / 0')")
    ds = dataset_id(live)
    others = live.query(
        "select phone_number from public.leads where dataset_id = %s and phone_number <> all(%s)",
        ds,
        [BOOKS, STOPS],
    )

    def m3_for_all() -> bool:
        return live.one(
            "select count(*) from public.messages where dataset_id = %s"
            " and message_category = 'm3' and twilio_sid is not null",
            ds,
        ) == len(others)

    wait_for(m3_for_all, 240, "M2 and M3 sent on their own to every lead that never replied")

    # Each lead got each step once, and the stand-in received exactly what the database says.
    per_step = live.query(
        "select l.phone_number, m.message_category, count(*) as n from public.messages m"
        " join public.leads l on l.id = m.lead_id where m.dataset_id = %s"
        " and m.message_category in ('m1', 'm2', 'm3') group by 1, 2 having count(*) > 1",
        ds,
    )
    assert per_step == [], "a sequence step went twice"
    twilio = f"http://127.0.0.1:{live.env['TWILIO_STANDIN_PORT']}/_standin/messages"
    received: dict[str, int] = {}
    for m in httpx.get(twilio, timeout=10).json()["messages"]:
        received[m["to"]] = received.get(m["to"], 0) + 1
    stored = {
        r["phone_number"]: r["n"]
        for r in live.query(
            "select l.phone_number, count(*) as n from public.messages m"
            " join public.leads l on l.id = m.lead_id where m.dataset_id = %s"
            " and m.direction = 'outbound' and m.twilio_sid is not null group by 1",
            ds,
        )
    }
    assert received == stored, "the Twilio stand-in received other messages than were recorded"
    for phone, why in ((BOOKS, "replied"), (STOPS, "said STOP")):
        msgs = lead_messages(live, phone)
        first_in = next(m["created_at"] for m in msgs if m["direction"] == "inbound")
        late = [
            m["message_category"]
            for m in msgs
            if m["created_at"] > first_in and m["message_category"] in ("m1", "m2", "m3")
        ]
        assert late == [], f"the lead who {why} still got {late}"
    stop_at = max(
        m["created_at"] for m in lead_messages(live, STOPS) if m["direction"] == "inbound"
    )
    assert not [
        m
        for m in lead_messages(live, STOPS)
        if m["direction"] == "outbound" and m["created_at"] > stop_at
    ], "a message went to the lead who said STOP"

    # pg_cron ran the sequencing on its own, every run succeeded, and nothing else did it.
    runs = live.query(
        "select j.jobname, d.status from cron.job_run_details d join cron.job j using (jobid)"
        " where d.start_time >= %s and j.jobname <> 'live-gate-broken-job'",
        live.started_at,
    )
    assert runs and all(r["status"] == "succeeded" for r in runs), runs
    ticks = live.one(
        "select count(*) from cron.job_run_details d join cron.job j using (jobid)"
        " where j.jobname = 'sequencing-tick' and d.status = 'succeeded' and d.start_time >= %s",
        live.started_at,
    )
    assert ticks >= 3, "M1, M2 and M3 each need a sequencing tick"
    wait_for(
        lambda: live.query(
            "select 1 from cron.job_run_details d join cron.job j using (jobid)"
            " where j.jobname = 'live-gate-broken-job' and d.status = 'failed'"
        ),
        75,
        "the broken job's first run",
    )
    status = subprocess.run(
        [str(ROOT / "bin" / "dbr"), "status"],
        cwd=ROOT,
        env=live.env,
        capture_output=True,
        text=True,
    )
    assert status.returncode == 1, "dbr status must fail when a scheduled job's last run failed"
    said = " ".join((status.stdout + status.stderr).split())
    assert "live-gate-broken-job last run failed" in said and "division by zero" in said, said
