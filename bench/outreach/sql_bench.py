"""Outreach rules benchmark, SQL half: campaign start and one sequencing tick at a million
leads, ours beside a row-by-row way (a plpgsql loop doing the same per lead) in the same run.

Builds a throw-away database from the migration template with N leads (default 1,000,000)
in one dataset, then measures:

  start   public.start_campaign as the admin (role + JWT claims, as PostgREST calls it):
          validate, store settings, activate, queue the first minute's batch, estimate.
          Beside it the API contract's naive start: loop over the READY leads and queue an M1 for
          each (conversation, message, sms.send job, lead step), measured on a slice
          (--naive-start-leads) and extrapolated linearly to N.
  tick    private.run_sequencing_tick at 10, 1,000 and 6,000 messages per minute in two
          states: "fresh" (every lead READY) and "late" (90% already messaged and waiting,
          10,000 leads due for M2, the READY ones at the end of the list). Beside it a
          row-by-row tick: walk the campaign's leads in list order, decide each one (status,
          window in its zone, due time, nothing queued yet, client budget count), queue until
          the caps are reached.

Every measurement runs in a transaction that is rolled back, so each starts from the same
state; figures are medians of --runs runs.

    .venv/bin/python -m bench.outreach.sql_bench [--leads 1000000] [--naive-start-leads 20000]
        [--runs 3] [--explain]

Targets (issue 4): start < 10 s at 1M leads; one tick < 1 s at 1M leads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from dbr.auth import Caller
from dbr.db import as_caller_sync
from dbr.dev import stack, testdb
from dbr.settings import get_settings

START_TARGET_S = 10.0
TICK_TARGET_S = 1.0
ALL_DAY = {"hours_start": 0, "hours_end": 24}

NAIVE_SQL = Path(__file__).with_name("sql_bench_naive.sql")


def median_time(runs: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.settings = get_settings()
        self.name, self.url = testdb.create_test_database(self.settings, "orsqlbench")
        self.conn = psycopg.connect(self.url, autocommit=True, row_factory=dict_row)
        self.conn.execute("set jit = off")

    def close(self) -> None:
        self.conn.close()
        stack.drop_database(stack.database_url(self.settings), self.name)

    # -------------------------------------------------------------- data
    def build(self) -> None:
        c = self.conn
        t0 = time.perf_counter()
        self.client_id = c.execute(
            "insert into public.clients (name, twilio_phone_number, settings) values"
            " ('Bench Ltd', '+447700800001', %s) returning id",
            (Jsonb({"sms_per_hour": 1_000_000, "number_pace_per_second": 0}),),
        ).fetchone()["id"]
        self.admin = uuid.uuid4()
        c.execute(
            "insert into auth.users (id, aud, role, email) values (%s, 'authenticated',"
            " 'authenticated', 'admin@bench.test')",
            (self.admin,),
        )
        c.execute(
            "insert into public.client_members (client_id, user_id, role, status, email)"
            " values (%s, %s, 'admin', 'active', 'admin@bench.test')",
            (self.client_id, self.admin),
        )
        self.dataset_id = c.execute(
            "insert into public.datasets (client_id, name) values (%s, 'A million') returning id",
            (self.client_id,),
        ).fetchone()["id"]
        # 80% of the leads carry no zone (the client's), the rest a zone from their number.
        c.execute(
            """
            insert into public.leads (client_id, dataset_id, first_name, last_name, phone_number,
              timezone, created_at)
            select %s, %s, (array['Ann', 'Bob', null, 'Cara', 'Dev'])[1 + g %% 5], 'Lead' || g,
              '+447' || lpad(g::text, 9, '0'),
              case when g %% 10 = 0 then 'Europe/London' when g %% 10 = 1 then 'Europe/Dublin' end,
              now() - interval '30 days' + g * interval '1 millisecond'
            from generate_series(1, %s) g
            """,
            (self.client_id, self.dataset_id, self.args.leads),
        )
        c.execute("vacuum analyze public.leads")
        print(f"built {self.args.leads:,} READY leads in {time.perf_counter() - t0:.1f}s")
        c.execute(NAIVE_SQL.read_text())

    def caller(self) -> Caller:
        claims = {"sub": str(self.admin), "role": "authenticated", "aud": "authenticated"}
        return Caller(user_id=self.admin, role="authenticated", claims=claims)

    # -------------------------------------------------------------- start
    def start_ours(self, rate: int) -> dict[str, Any]:
        settings = Jsonb({"rate_limit_messages_per_minute": rate, "schedule": ALL_DAY})
        with (
            self.conn.transaction(force_rollback=True),
            as_caller_sync(self.conn, self.caller()) as cur,
        ):
            return cur.execute(
                "select public.start_campaign(%s, %s) as r", (self.dataset_id, settings)
            ).fetchone()["r"]["campaign"]

    def start_naive(self, limit: int) -> int:
        with self.conn.transaction(force_rollback=True):
            self.conn.execute(
                "insert into public.campaigns (dataset_id, client_id, started_at, hours_start,"
                " hours_end) values (%s, %s, now(), 0, 24)",
                (self.dataset_id, self.client_id),
            )
            self.conn.execute(
                "update public.datasets set campaign_status = 'active' where id = %s",
                (self.dataset_id,),
            )
            return self.conn.execute(
                "select bench.naive_start(%s, %s) as n", (self.dataset_id, limit)
            ).fetchone()["n"]

    # -------------------------------------------------------------- tick
    def activate(self) -> None:
        with as_caller_sync(self.conn, self.caller()) as cur:
            cur.execute(
                "select public.start_campaign(%s, %s)",
                (
                    self.dataset_id,
                    Jsonb({"rate_limit_messages_per_minute": 1, "schedule": ALL_DAY}),
                ),
            )
        # Nothing queued yet: the ticks below start from a clean "waiting" state.
        self.conn.execute("delete from private.jobs where client_id = %s", (self.client_id,))
        self.conn.execute("delete from public.messages where dataset_id = %s", (self.dataset_id,))
        self.conn.execute(
            "delete from public.conversations where dataset_id = %s", (self.dataset_id,)
        )
        self.conn.execute(
            "update public.leads set sequence_step = 0"
            " where dataset_id = %s and sequence_step <> 0",
            (self.dataset_id,),
        )
        self.conn.execute(
            "update public.campaigns set started_at = now() - interval '30 days'"
            " where dataset_id = %s",
            (self.dataset_id,),
        )

    def make_late(self) -> None:
        """90% messaged and waiting; one in 1,800 of them (500 per million) due for M2."""
        t0 = time.perf_counter()
        n = self.args.leads
        self.conn.execute(
            """
            update public.leads set contact_status = 'M1_SENT', sequence_step = 1,
              m1_sent_at = now() - case when rn %% 1800 = 0 then interval '49 hours'
                else make_interval(secs => 3600 + rn %% 150000) end
            from (
              select id, row_number() over (order by created_at) as rn
              from public.leads where dataset_id = %s order by created_at limit %s
            ) x
            where public.leads.id = x.id
            """,
            (self.dataset_id, int(n * 0.9)),
        )
        # What that history leaves behind: a conversation and a sent M1 per messaged lead.
        self.conn.execute(
            "insert into public.conversations (client_id, dataset_id, lead_id, message_count,"
            " last_message_at) select client_id, dataset_id, id, 1, m1_sent_at from public.leads"
            " where dataset_id = %s and sequence_step = 1",
            (self.dataset_id,),
        )
        self.conn.execute(
            """
            insert into public.messages (client_id, dataset_id, conversation_id, lead_id, direction,
              message_category, status, content, from_number, to_number, twilio_sid, sent_at,
              send_started_at, send_attempts, created_at)
            select l.client_id, l.dataset_id, c.id, l.id, 'outbound', 'm1', 'delivered',
              'Hi ' || coalesce(l.first_name, 'there') || E', it''s Bench Ltd.\nReply STOP',
              '+447700800001', l.phone_number, 'SM' || replace(l.id::text, '-', ''), l.m1_sent_at,
              l.m1_sent_at, 1, l.m1_sent_at
            from public.leads l join public.conversations c on c.lead_id = l.id
            where l.dataset_id = %s and l.sequence_step = 1
            """,
            (self.dataset_id,),
        )
        for table in ("leads", "conversations", "messages"):
            self.conn.execute(f"vacuum analyze public.{table}")
        print(
            f"late state: {int(n * 0.9):,} leads at M1_SENT, with their conversations and"
            f" M1 messages, in {time.perf_counter() - t0:.1f}s"
        )

    def tick(self, rate: int, naive: bool) -> int:
        with self.conn.transaction(force_rollback=True):
            self.conn.execute(
                "update public.campaigns set rate_limit_messages_per_minute = %s"
                " where dataset_id = %s",
                (rate, self.dataset_id),
            )
            if naive:
                return self.conn.execute(
                    "select bench.naive_tick(now() + interval '1 minute') as n"
                ).fetchone()["n"]
            res = self.conn.execute(
                "select private.run_sequencing_tick(now() + interval '1 minute') as r"
            ).fetchone()["r"]
            return int(res["queued"])

    def explain(self) -> None:
        plan = self.conn.execute(
            "explain (analyze, buffers, format text) select * from"
            " private.pick_sequence_leads(now() + interval '1 minute')"
        ).fetchall()
        print("\n".join(r["QUERY PLAN"] for r in plan))

    # -------------------------------------------------------------- run
    def run(self) -> None:
        a = self.args
        self.build()
        print("\n== campaign start at", f"{a.leads:,} READY leads ==")
        rows = []
        for rate in (1, 6000):
            secs, res = median_time(a.runs, lambda rate=rate: self.start_ours(rate))
            rows.append((f"ours, rate {rate}/min", secs, res["messages_queued"]))
            print(
                f"  ours  rate {rate:>5}/min: {secs * 1000:8.1f} ms  queued now"
                f" {res['messages_queued']:>5}  total_leads {res['total_leads']:,}"
                f"  estimated_completion {res['estimated_completion']}"
            )
        secs, n = median_time(1, lambda: self.start_naive(a.naive_start_leads))
        per_lead = secs / max(n, 1)
        print(
            f"  naive row-by-row: {n:,} leads in {secs:.1f}s ({n / secs:,.0f} leads/s)"
            f" -> {a.leads:,} leads ~ {per_lead * a.leads:,.0f}s"
        )
        ours_start = rows[-1][1]
        print(
            f"  ours vs naive (whole list): {per_lead * a.leads / ours_start:,.0f}x faster;"
            f" target < {START_TARGET_S:.0f}s: {'met' if ours_start < START_TARGET_S else 'MISSED'}"
        )

        self.activate()
        results: dict[str, Any] = {"start_ms": {r[0]: round(r[1] * 1000, 1) for r in rows}}
        results["naive_start_s_per_1M"] = round(per_lead * 1_000_000, 1)
        for state in ("fresh", "late"):
            if state == "late":
                self.make_late()
            print(f"\n== one tick at {a.leads:,} leads, state {state} ==")
            for rate in (10, 1000, 6000):
                ours_s, ours_n = median_time(a.runs, lambda rate=rate: self.tick(rate, False))
                naive_s, naive_n = median_time(1, lambda rate=rate: self.tick(rate, True))
                print(
                    f"  rate {rate:>5}/min: ours {ours_s * 1000:8.1f} ms ({ours_n} queued)"
                    f"   row-by-row {naive_s * 1000:9.1f} ms ({naive_n} queued)"
                    f"   ratio {naive_s / ours_s:6.1f}x"
                )
                results[f"tick_{state}_{rate}"] = {
                    "ours_ms": round(ours_s * 1000, 1),
                    "naive_ms": round(naive_s * 1000, 1),
                    "queued": ours_n,
                }
            if a.explain:
                self.explain()
        worst = max(v["ours_ms"] for k, v in results.items() if k.startswith("tick_"))
        print(
            f"\nworst tick {worst:.0f} ms; target < {TICK_TARGET_S * 1000:.0f} ms:"
            f" {'met' if worst < TICK_TARGET_S * 1000 else 'MISSED'}"
        )
        print(json.dumps(results))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--leads", type=int, default=1_000_000)
    p.add_argument("--naive-start-leads", type=int, default=20_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--explain", action="store_true", help="print the tick's plan (EXPLAIN ANALYZE)")
    bench = Bench(p.parse_args())
    try:
        bench.run()
    finally:
        bench.close()


if __name__ == "__main__":
    main()
