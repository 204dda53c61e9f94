"""Export benchmark: 100k leads to CSV and XLSX, ours vs the naive way, in one run.

    .venv/bin/python bench/exports/run.py [--rows 100000] [--small 25000] [--repeat 1]

1. Creates a throw-away database with every migration (dbr.dev.testdb), a client, one
   dataset and its admin, and --rows leads (set-based insert; every trigger and index on),
   a tenth of them with formula-like notes.
2. Runs each way in a fresh child process (so peak RSS is per run), as the client's admin
   (RLS on), and reads the same rows (private.export_leads: RLS, neutralised cells):
   (a) ours, end to end: private.request_export as the admin, then dbr.exports.service.
       build_export, the worker's code path: stream to a temporary file (CSV: COPY TO STDOUT;
       XLSX: server-side cursor into XlsxWriter constant_memory), store it in the exports
       bucket (local disk), record it ready;
   (b) naive: fetchall() of the same query, then the csv module / openpyxl's in-memory
       Workbook, saved to a file;
   (c) XLSX only, at --rows: XlsxWriter in constant_memory mode fed from the same
       server-side cursor (streaming, but ~10-20 us of Python per cell), which ours replaced;
   (d) floor (CSV only): COPY of the bare leads table, discarded, by the database owner
       (no RLS, no join, no neutralising).
3. Prints seconds, rows/s and peak RSS growth over the child's baseline, at --small and
   --rows (flat memory = the same growth at both sizes), and MEETS/MISSES against the
   target: each export of 100k leads in under 10 s, memory flat.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg.rows import dict_row, tuple_row  # noqa: E402

from dbr.dev import stack, testdb  # noqa: E402
from dbr.settings import Settings, get_settings  # noqa: E402

TARGET_SECONDS = 10.0
QUERY = "select * from private.export_leads(null, null)"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    """CPU seconds of this (client) process so far: what the machine's load cannot inflate."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _caller(user: uuid.UUID) -> Any:
    from dbr.exports.service import caller_of

    return caller_of(user)


# ---- the ways, each in a child process ------------------------------------------------------
def ours(settings: Settings, user: str, fmt: str, q: Any) -> None:
    from dbr.db import as_caller_sync
    from dbr.exports.service import build_export
    from dbr.storage import get_storage

    storage = get_storage(settings)
    with psycopg.connect(settings.database_url, autocommit=True, row_factory=dict_row) as conn:
        with as_caller_sync(conn, _caller(uuid.UUID(user))) as c:
            export = c.execute(
                "select private.request_export('leads', null, null, %s) as r", (fmt,)
            ).fetchone()["r"]
        conn.execute("delete from private.jobs where kind = 'exports.build'")
    base, cpu = rss_mb(), cpu_s()
    t0 = time.perf_counter()
    done = build_export(settings, storage, export["id"])
    seconds = time.perf_counter() - t0
    assert done is not None
    size = (settings.storage_dir / "exports" / export["storage_path"]).stat().st_size
    q.put(
        {
            "seconds": seconds,
            "cpu": cpu_s() - cpu,
            "rows": done["rows"],
            "rss": rss_mb() - base,
            "bytes": size,
        }
    )


def naive(settings: Settings, user: str, fmt: str, out: str, q: Any) -> None:
    from dbr.db import as_caller_sync

    with psycopg.connect(settings.database_url, autocommit=True, row_factory=tuple_row) as conn:
        conn.execute("select 1")
        base, cpu = rss_mb(), cpu_s()
        t0 = time.perf_counter()
        with as_caller_sync(conn, _caller(uuid.UUID(user))) as c:
            c.execute("select set_config('timezone', 'Europe/London', true)")
            cur = c.execute(QUERY)
            names = [d.name for d in cur.description or ()]
            rows = cur.fetchall()
        if fmt == "csv":
            with open(out, "w", newline="", encoding="utf-8-sig") as f:
                w = csv.writer(f)
                w.writerow(names)
                w.writerows(rows)
        else:
            import openpyxl

            wb = openpyxl.Workbook()
            ws = wb.active
            ws.append(names)
            for row in rows:
                ws.append([str(v) if isinstance(v, uuid.UUID) else v for v in row])
            wb.save(out)
    seconds = time.perf_counter() - t0
    q.put(
        {
            "seconds": seconds,
            "cpu": cpu_s() - cpu,
            "rows": len(rows),
            "rss": rss_mb() - base,
            "bytes": Path(out).stat().st_size,
        }
    )


def xlsxwriter_way(settings: Settings, user: str, out: str, q: Any) -> None:
    from dbr.db import as_caller_sync
    from dbr.exports.writers import xlsx_workbook

    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("select 1")
        base, cpu = rss_mb(), cpu_s()
        t0 = time.perf_counter()
        rows = 0
        with as_caller_sync(conn, _caller(uuid.UUID(user))) as c:
            c.execute("select set_config('timezone', 'Europe/London', true)")
            wb = xlsx_workbook(Path(out))
            day = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
            ws = wb.add_worksheet("Leads")
            with c.cursor(name="xw", row_factory=tuple_row) as cur:
                cur.itersize = 2000
                cur.execute(QUERY)
                for col, d in enumerate(cur.description or ()):
                    ws.write_string(0, col, d.name)
                for row in cur:
                    rows += 1
                    for col, v in enumerate(row):
                        if v is None:
                            continue
                        if isinstance(v, uuid.UUID):
                            v = str(v)
                        if hasattr(v, "year"):
                            ws.write_datetime(rows, col, v, day)
                        else:
                            ws.write(rows, col, v)
            wb.close()
    seconds = time.perf_counter() - t0
    q.put(
        {
            "seconds": seconds,
            "cpu": cpu_s() - cpu,
            "rows": rows,
            "rss": rss_mb() - base,
            "bytes": Path(out).stat().st_size,
        }
    )


def floor(settings: Settings, q: Any) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        base, cpu = rss_mb(), cpu_s()
        t0 = time.perf_counter()
        n = 0
        with conn.cursor() as cur:
            with cur.copy("copy public.leads to stdout with (format csv, header)") as copy:
                for chunk in copy:
                    n += len(chunk)
            rows = cur.rowcount
    q.put(
        {
            "seconds": time.perf_counter() - t0,
            "cpu": cpu_s() - cpu,
            "rows": rows,
            "rss": rss_mb() - base,
            "bytes": n,
        }
    )


def child(fn: Any, *args: Any) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=fn, args=(*args, q))
    p.start()
    result = q.get(timeout=900)
    p.join()
    return result


# ---- setup --------------------------------------------------------------------------------
def seed(url: str, rows: int) -> tuple[uuid.UUID, uuid.UUID]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        client = conn.execute(
            "insert into public.clients (name) values ('Bench exports') returning id"
        ).fetchone()["id"]
        user = uuid.uuid4()
        conn.execute(
            "insert into auth.users (id, aud, role, email) values (%s, 'authenticated',"
            " 'authenticated', 'bench-exports@example.test')",
            (user,),
        )
        conn.execute(
            "insert into public.client_members (client_id, user_id, role, status, email)"
            " values (%s, %s, 'admin', 'active', 'bench-exports@example.test')",
            (client, user),
        )
        dataset = conn.execute(
            "insert into public.datasets (client_id, name) values (%s, 'Old leads 2024')"
            " returning id",
            (client,),
        ).fetchone()["id"]
        conn.execute(
            """
            insert into public.leads (client_id, dataset_id, first_name, last_name, phone_number,
              email, postcode, inquiry_date, notes, contact_status, m1_sent_at)
            select %s, %s, 'First' || i, 'Last' || i, '+4479' || lpad(i::text, 8, '0'),
              'lead' || i || '@example.com', 'SW1A ' || (i %% 9) || 'AA',
              date '2024-01-01' + (i %% 300),
              case when i %% 10 = 0 then '=HYPERLINK("http://evil.test")'
                   else 'Called twice, said "maybe" - ring after 5pm' end,
              'M1_SENT', now() - make_interval(hours => i %% 500)
            from generate_series(1, %s) i
            """,
            (client, dataset, rows),
        )
        conn.execute("analyze public.leads")
    return client, user


def limit_rows(url: str, keep: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "delete from public.leads where id in (select id from public.leads"
            " order by created_at desc, id desc offset %s)",
            (keep,),
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--small", type=int, default=25_000)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()

    base = get_settings()
    if not stack.Cluster.local(base).running:
        sys.exit("PostgreSQL is not running: start it with `bin/dbr up` (or `bin/dbr test`).")
    out = ROOT / "bench" / "out" / "exports"
    out.mkdir(parents=True, exist_ok=True)
    name, url = testdb.create_test_database(base, "benchexports")
    settings = base.model_copy(update={"database_url": url, "storage_dir": out / "storage"})
    results: dict[tuple[str, int], dict[str, Any]] = {}
    try:
        _, user = seed(url, args.rows)
        for size in (args.rows, args.small):
            if size != args.rows:
                limit_rows(url, size)
            for fmt in ("csv", "xlsx"):
                for way in ("ours", "naive"):
                    runs = []
                    for _ in range(args.repeat):
                        if way == "ours":
                            runs.append(child(ours, settings, str(user), fmt))
                        else:
                            runs.append(
                                child(naive, settings, str(user), fmt, str(out / f"naive.{fmt}"))
                            )
                    results[(f"{way} {fmt}", size)] = {
                        "seconds": statistics.median(r["seconds"] for r in runs),
                        "cpu": statistics.median(r["cpu"] for r in runs),
                        "rss": max(r["rss"] for r in runs),
                        "rows": runs[0]["rows"],
                        "bytes": runs[0]["bytes"],
                    }
                    print(f"  {way} {fmt} {size}: {results[(f'{way} {fmt}', size)]}", flush=True)
            results[("floor csv", size)] = child(floor, settings)
            if size == args.rows:
                r = child(xlsxwriter_way, settings, str(user), str(out / "xlsxwriter.xlsx"))
                results[("xlsxwriter", size)] = r
                print(f"  xlsxwriter {size}: {r}", flush=True)
    finally:
        stack.drop_database(stack.database_url(base), name)

    print()
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(
        f"export of {args.rows:,} leads (as the admin, RLS on); peak RSS growth at "
        f"{args.small:,} -> {args.rows:,} rows"
    )
    print(
        f"{'way':<12}{'seconds':>9}{'client CPU s':>14}{'rows/s':>10}{'MB file':>9}{'RSS MB':>16}"
    )
    for way in ("ours csv", "naive csv", "floor csv", "ours xlsx", "naive xlsx", "xlsxwriter"):
        big = results[(way, args.rows)]
        small = results.get((way, args.small))
        before = f"{small['rss']:>8.1f} ->" if small else f"{'':>8} ->"
        print(
            f"{way:<12}{big['seconds']:>9.2f}{big['cpu']:>14.2f}"
            f"{big['rows'] / big['seconds']:>10,.0f}"
            f"{big['bytes'] / 1e6:>9.1f}{before}{big['rss']:>6.1f}"
        )
    print()
    for fmt in ("csv", "xlsx"):
        o, n = results[(f"ours {fmt}", args.rows)], results[(f"naive {fmt}", args.rows)]
        growth = o["rss"] - results[(f"ours {fmt}", args.small)]["rss"]
        naive_growth = n["rss"] - results[(f"naive {fmt}", args.small)]["rss"]
        fast = o["seconds"] < TARGET_SECONDS
        flat = growth < 20
        print(
            f"{fmt}: {o['seconds']:.2f} s vs naive {n['seconds']:.2f} s "
            f"({n['seconds'] / o['seconds']:.1f}x), target < {TARGET_SECONDS:.0f} s: "
            f"{'MEETS' if fast else 'MISSES'}; memory {growth:+.1f} MB from {args.small:,} to "
            f"{args.rows:,} rows (naive {naive_growth:+.1f} MB): "
            f"{'MEETS' if flat else 'MISSES'} flat"
        )


if __name__ == "__main__":
    main()
