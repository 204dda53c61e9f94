"""Outreach engine benchmark: SMS send throughput and inbound webhook latency, in one run.

Send throughput: M stored messages go out through the Twilio stand-in (its own process) via
W worker processes (`python -m workers`, the same code `dbr up` runs), beside the naive way in
the same run: one connection, one message at a time, no batching (claim 1, prepare_send, a
blocking Twilio call, record_send_result, complete_job). Database time per message comes from
the server itself (pg_stat_user_functions with track_functions = all: the execution time of
the jobs and send functions, nested calls included), plus client-measured round trips for the
naive loop. Every run checks the stand-in received each message exactly once.

Inbound webhook latency: K signed inbound SMS (distinct leads and MessageSids) posted to the
twilio-webhook edge function (deno, `_dev/serve.ts`) by C concurrent clients, p50/p99, beside
the same requests one at a time.

    .venv/bin/python -m bench.outreach.engine_bench [--messages 6000] [--naive 600]
        [--workers 4] [--concurrency 8] [--batch 10] [--webhooks 3000] [--webhook-concurrency 200]

Targets (issue 4): >= 1,000 messages/s with 4 workers; webhook p99 < 50 ms at 200 concurrent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from psycopg.rows import dict_row

from dbr.dev import stack, testdb
from dbr.dev.standins.twilio import inbound_params, sign
from dbr.providers.twilio import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from dbr.settings import ROOT, Settings, get_settings

SEND_TARGET = 1000.0
P99_TARGET_MS = 50.0
DB_FUNCTIONS = (
    "claim_jobs",
    "prepare_send",
    "record_send_result",
    "complete_job",
    "fail_job",
    "defer_job",
)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.base: Settings = get_settings()
        self.tmp = Path(tempfile.mkdtemp(prefix="engine-bench-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.db_name, self.url = testdb.create_test_database(self.base, "bench")
        self.conn = psycopg.connect(self.url, autocommit=True, row_factory=dict_row)
        self.conn.execute(f"alter database \"{self.db_name}\" set track_functions = 'all'")
        self.conn.close()
        self.conn = psycopg.connect(self.url, autocommit=True, row_factory=dict_row)

    # ------------------------------------------------------------------ processes

    def spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.conn.close()
        stack.drop_database(stack.database_url(self.base), self.db_name)

    # ------------------------------------------------------------------ data

    def seed(self, n_leads: int) -> dict[str, Any]:
        client = self.conn.execute(
            "insert into public.clients (name, twilio_phone_number, twilio_messaging_service_sid,"
            " settings) values ('Bench Co', '+447000000001', 'MG' || md5('bench'),"
            " '{\"sms_per_hour\": 100000000}') returning id, twilio_messaging_service_sid"
        ).fetchone()
        ds = self.conn.execute(
            "insert into public.datasets (client_id, name, campaign_status)"
            " values (%s, 'Bench', 'active') returning id",
            (client["id"],),
        ).fetchone()["id"]
        self.conn.execute(
            "insert into public.leads (client_id, dataset_id, first_name, phone_number)"
            " select %s, %s, 'Lead ' || g, '+4477' || lpad(g::text, 8, '0')"
            " from generate_series(1, %s) g",
            (client["id"], ds, n_leads),
        )
        return {"client_id": client["id"], "dataset_id": ds}

    def lead_batch(self, offset: int, n: int) -> list[dict[str, Any]]:
        return self.conn.execute(
            "select id, phone_number from public.leads order by phone_number offset %s limit %s",
            (offset, n),
        ).fetchall()

    def queue(self, leads: list[dict[str, Any]], *, hold: bool) -> None:
        run_at = "now() + interval '1 hour'" if hold else "now()"
        self.conn.execute(
            "select count(private.queue_sms(l, 'Hello from the bench, are you still interested?',"
            f" 'human_manual', null, null, {run_at})) from unnest(%s::uuid[]) l",
            ([r["id"] for r in leads],),
        )

    def db_function_ms(self) -> dict[str, tuple[int, float]]:
        time.sleep(0.6)  # backends flush function statistics at most once a second
        self.conn.execute("select pg_stat_force_next_flush()")
        rows = self.conn.execute(
            "select funcname, calls, total_time from pg_stat_user_functions"
            " where schemaname = 'private' and funcname = any(%s)",
            (list(DB_FUNCTIONS),),
        ).fetchall()
        return {r["funcname"]: (r["calls"], r["total_time"]) for r in rows}

    def reset_stats(self) -> None:
        self.conn.execute("select pg_stat_reset()")

    # ------------------------------------------------------------------ sends

    def twilio_standin(self) -> str:
        port = free_port()
        self.twilio_pid = self.spawn(
            "twilio",
            [
                sys.executable,
                "-m",
                "dbr.dev.standins.twilio",
                "--port",
                str(port),
                "--no-callbacks",
            ],
            {},
        ).pid
        assert stack.wait_for_port(port, 20), "Twilio stand-in did not start"
        return f"http://127.0.0.1:{port}"

    def naive(self, twilio_url: str, leads: list[dict[str, Any]]) -> dict[str, float]:
        from dbr.providers.twilio import sync_client

        self.queue(leads, hold=False)
        client = sync_client(Settings(twilio_base_url=twilio_url))
        db_ms = 0.0
        sent = 0
        self.reset_stats()
        with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:

            def sql(query: str, params: tuple[Any, ...]) -> Any:
                nonlocal db_ms
                t = time.perf_counter()
                row = conn.execute(query, params).fetchone()
                db_ms += (time.perf_counter() - t) * 1000
                return row

            t0 = time.perf_counter()
            while True:
                job = sql(
                    "select * from private.claim_jobs('naive', array['sms.send'], 1, 120)", ()
                )
                if not job:
                    break
                d = sql(
                    "select private.prepare_send(%s, 'naive') as d", (job["payload"]["message_id"],)
                )["d"]
                if d["action"] == "send":
                    msg = client.messages.create(
                        to=d["to"],
                        messaging_service_sid=d["messaging_service_sid"],
                        from_=d["from"] or None,
                        body=d["body"],
                        status_callback="http://127.0.0.1:9/functions/v1/twilio-webhook",
                        validity_period=3600,
                    )
                    sql(
                        "select private.record_send_result(%s, %s, %s, null, null, %s)",
                        (job["payload"]["message_id"], msg.sid, msg.status, int(msg.num_segments)),
                    )
                    sent += 1
                sql("select private.complete_job(%s, 'naive', null)", (job["id"],))
            elapsed = time.perf_counter() - t0
        server = self.db_function_ms()
        return {
            "messages": sent,
            "seconds": elapsed,
            "rate": sent / elapsed,
            "db_ms_client": db_ms / sent,
            "db_ms_server": sum(t for _, t in server.values()) / sent,
        }

    def pool(self, twilio_url: str, leads: list[dict[str, Any]]) -> dict[str, float]:
        a = self.args
        self.queue(leads, hold=True)  # queued but not due: workers start idle
        env = {
            "SUPABASE_DB_URL": self.url,
            "TWILIO_BASE_URL": twilio_url,
            "PUBLIC_WEBHOOK_BASE_URL": "http://127.0.0.1:9/functions/v1",
            "WORKER_POLL_SECONDS": "5",
        }
        for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "SUPABASE_URL"):
            os.environ.pop(key, None)
        workers = [
            self.spawn(
                f"worker-{i}",
                [
                    sys.executable,
                    "-m",
                    "workers",
                    "--kinds",
                    "sms.send",
                    "--concurrency",
                    str(a.concurrency),
                    "--batch",
                    str(a.batch),
                    "--log-level",
                    "WARNING",
                ],
                env,
            )
            for i in range(a.workers)
        ]
        self._wait(
            lambda: (
                self.conn.execute(
                    "select count(*) as n from pg_stat_activity"
                    " where application_name = 'dbr-worker-listen' and datname = current_database()"
                ).fetchone()["n"]
                == a.workers
            ),
            30,
        )
        self.reset_stats()
        n = len(leads)
        cpu0 = sum(cpu_seconds(w.pid) for w in workers)
        standin0 = cpu_seconds(self.twilio_pid)
        t0 = time.perf_counter()
        self.conn.execute(
            "update private.jobs set run_at = now() where kind = 'sms.send' and status = 'queued'"
        )
        self.conn.execute("select pg_notify('dbr_jobs', 'bench')")
        self._wait(
            lambda: (
                self.conn.execute(
                    "select count(*) as n from private.jobs where kind = 'sms.send'"
                    " and status = 'done' and locked_by is distinct from 'naive'"
                ).fetchone()["n"]
                >= n
            ),
            600,
            step=0.05,
        )
        elapsed = time.perf_counter() - t0
        worker_cpu = sum(cpu_seconds(w.pid) for w in workers) - cpu0
        standin_cpu = cpu_seconds(self.twilio_pid) - standin0
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(30)
        server = self.db_function_ms()
        return {
            "messages": n,
            "seconds": elapsed,
            "rate": n / elapsed,
            "db_ms_server": sum(t for _, t in server.values()) / n,
            "by_function": {k: round(t / n, 3) for k, (_, t) in server.items()},
            "worker_cpu_ms": worker_cpu * 1000 / n,
            "twilio_cpu_ms": standin_cpu * 1000 / n,
        }

    @staticmethod
    def _wait(check: Any, timeout: float, step: float = 0.2) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise TimeoutError("benchmark step timed out")
            time.sleep(step)

    def check_exactly_once(self, twilio_url: str, expected: int) -> None:
        import httpx

        sent = httpx.get(f"{twilio_url}/_standin/messages", timeout=60).json()["messages"]
        tos = [m["to"] for m in sent]
        assert len(tos) == expected == len(set(tos)), (len(tos), len(set(tos)), expected)

    # ------------------------------------------------------------------ webhooks

    def functions_server(self) -> str:
        port = free_port()
        self.spawn(
            "functions",
            [
                str(stack.deno_bin(self.base)),
                "run",
                "-A",
                "supabase/functions/_dev/serve.ts",
                str(port),
            ],
            {
                "SUPABASE_DB_URL": self.url,
                "PUBLIC_WEBHOOK_BASE_URL": f"http://127.0.0.1:{port}/functions/v1",
                "TWILIO_AUTH_TOKEN": LOCAL_AUTH_TOKEN,
                "NO_COLOR": "1",
            },
        )
        assert stack.wait_for_port(port, 60), "functions server did not start"
        return f"http://127.0.0.1:{port}/functions/v1/twilio-webhook"

    async def post_all(
        self, url: str, bodies: list[dict[str, str]], concurrency: int
    ) -> tuple[list[float], float]:
        latencies: list[float] = []
        # Signed before the clock starts: the load generator shares the two cores.
        queue = [
            (
                params,
                {
                    "X-Twilio-Signature": sign(LOCAL_AUTH_TOKEN, url, params),
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            for params in reversed(bodies)
        ]
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def client() -> None:
                while queue:
                    params, headers = queue.pop()
                    t = time.perf_counter()
                    async with session.post(url, data=params, headers=headers) as resp:
                        await resp.read()
                        assert resp.status == 200, resp.status
                    latencies.append((time.perf_counter() - t) * 1000)

            t0 = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(concurrency)))
            return latencies, time.perf_counter() - t0

    def webhooks(self, leads: list[dict[str, Any]], to: str) -> dict[str, Any]:
        url = self.functions_server()
        bodies = [
            inbound_params(
                account_sid=LOCAL_ACCOUNT_SID, from_=r["phone_number"], to=to, body="Yes please"
            )
            for r in leads
        ]
        warm, seq, conc = bodies[:100], bodies[100:400], bodies[400:]
        asyncio.run(self.post_all(url, warm, 10))
        seq_lat, _ = asyncio.run(self.post_all(url, seq, 1))
        lat, elapsed = asyncio.run(self.post_all(url, conc, self.args.webhook_concurrency))
        stored = self.conn.execute(
            "select count(*) as n from public.messages where direction = 'inbound'"
        ).fetchone()["n"]
        jobs = self.conn.execute(
            "select count(*) as n from private.jobs where kind = 'ai.reply'"
        ).fetchone()["n"]
        assert stored == jobs == len(bodies), (stored, jobs, len(bodies))
        return {
            "sequential_p50": statistics.median(seq_lat),
            "sequential_p99": pct(seq_lat, 99),
            "requests": len(conc),
            "p50": statistics.median(lat),
            "p99": pct(lat, 99),
            "max": max(lat),
            "rate": len(conc) / elapsed,
        }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=6000)
    p.add_argument("--naive", type=int, default=600)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--webhooks", type=int, default=3000)
    p.add_argument("--webhook-concurrency", type=int, default=200)
    args = p.parse_args(argv)

    bench = Bench(args)
    try:
        total = args.naive + args.messages + args.webhooks + 400
        t = time.perf_counter()
        bench.seed(total)
        print(f"seeded {total} leads in {time.perf_counter() - t:.1f}s ({bench.db_name})")
        twilio_url = bench.twilio_standin()
        naive = bench.naive(twilio_url, bench.lead_batch(0, args.naive))
        ours = bench.pool(twilio_url, bench.lead_batch(args.naive, args.messages))
        bench.check_exactly_once(twilio_url, args.naive + args.messages)
        hooks = bench.webhooks(
            bench.lead_batch(args.naive + args.messages, args.webhooks + 400), "+447000000001"
        )
    finally:
        bench.close()

    print()
    print(
        "SMS send throughput through the Twilio stand-in (each message sent exactly once: checked)"
    )
    print(
        f"  naive  1 connection, 1 at a time : {naive['rate']:8.0f} msg/s "
        f"({naive['messages']} in {naive['seconds']:.1f}s); DB {naive['db_ms_server']:.2f} ms/msg "
        f"server, {naive['db_ms_client']:.2f} ms/msg with round trips"
    )
    print(
        f"  ours   {args.workers} workers x {args.concurrency} loops, batch {args.batch}: "
        f"{ours['rate']:8.0f} msg/s ({ours['messages']} in {ours['seconds']:.1f}s); "
        f"DB {ours['db_ms_server']:.2f} ms/msg server"
    )
    print(f"         by function (ms/msg): {ours['by_function']}")
    print(
        f"         CPU per message: workers {ours['worker_cpu_ms']:.2f} ms, Twilio stand-in "
        f"{ours['twilio_cpu_ms']:.2f} ms (2 cores shared with PostgreSQL)"
    )
    print(
        f"  ratio ours/naive: {ours['rate'] / naive['rate']:.1f}x; target >= {SEND_TARGET:.0f} "
        f"msg/s: {'met' if ours['rate'] >= SEND_TARGET else 'MISSED'}"
    )
    print()
    print(f"Inbound webhook through the edge function ({hooks['requests']} requests)")
    print(
        f"  1 at a time          : p50 {hooks['sequential_p50']:.1f} ms  p99 "
        f"{hooks['sequential_p99']:.1f} ms"
    )
    print(
        f"  {args.webhook_concurrency} concurrent       : p50 {hooks['p50']:.1f} ms  p99 "
        f"{hooks['p99']:.1f} ms  max {hooks['max']:.1f} ms  ({hooks['rate']:.0f} req/s)"
    )
    print(
        f"  target p99 < {P99_TARGET_MS:.0f} ms: "
        f"{'met' if hooks['p99'] < P99_TARGET_MS else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
