"""Lead import benchmark: ours vs the API contract's batches of 100 vs raw COPY, in one run.

    .venv/bin/python bench/import/run.py [--rows 1000000] [--small 250000] [--naive-rows 50000]

1. Generates a realistic messy CSV (bench/out/leads_<rows>.csv; see generate.py), cached.
2. Creates a throw-away database from every migration (dbr.dev.testdb), so the stats triggers,
   the trigram search index and every other trigger and index on leads are on.
3. Times, each in a fresh child process (so peak RSS is per run) and on an emptied leads table:
   (a) ours: dbr.datasets.importer.import_rows, as the client's admin (RLS on), end to end:
       parse + normalise + COPY to staging + one insert ... select into leads;
   (b) naive: the API contract's way, same parsing and normalisation, then INSERT ... VALUES of 100
       rows per statement, each its own transaction as the user (what a PostgREST/supabase-js
       client does per batch, minus HTTP), on the first --naive-rows rows; extrapolated;
   (c) raw COPY: the already-clean rows (ours' result, exported) COPY'd straight into leads
       by the database owner: no parsing, no normalisation, no dedupe, no RLS. The floor.
4. Prints rows/s, ratios and peak memory for two file sizes (flat memory = same peak).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg  # noqa: E402
from generate import generate  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402

from dbr.auth import Caller  # noqa: E402
from dbr.dev import stack, testdb  # noqa: E402
from dbr.settings import get_settings  # noqa: E402

OUT = ROOT / "bench" / "out"
BATCH = 100
MAPPING = {
    "first_name": "Forename",
    "last_name": "Surname",
    "phone_number": "Mobile",
    "email": "E-mail Address",
    "postcode": "Post Code",
    "inquiry_date": "Enquiry Date",
    "notes": "Notes",
}
LEAD_COLUMNS = (
    "client_id, dataset_id, phone_number, timezone, first_name, last_name, email, postcode, "
    "inquiry_date, notes, custom_fields"
)


def caller(user_id: uuid.UUID) -> Caller:
    claims = {"sub": str(user_id), "role": "authenticated", "aud": "authenticated"}
    return Caller(user_id=user_id, role="authenticated", claims=claims)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- the three ways, each run in a child process ------------------------------------------
def run_ours(url: str, user: uuid.UUID, dataset: uuid.UUID, path: str, q: Any) -> None:
    from dbr.datasets.dialect import Dialect
    from dbr.datasets.importer import ImportTarget, as_caller_on_new_connection, import_rows

    target = ImportTarget(dataset_id=dataset, mapping=MAPPING, source="cli")
    t0 = time.perf_counter()
    res = as_caller_on_new_connection(
        url,
        caller(user),
        lambda c: import_rows(c, Path(path), Dialect("utf-8-sig", ","), target),
    )
    dt = time.perf_counter() - t0
    q.put(
        {
            "seconds": dt,
            "stage": res.stage_seconds,
            "move": res.move_seconds,
            "rows": res.total_rows,
            "successful": res.successful,
            "failed": res.failed,
            "duplicates": res.duplicates,
            "fast_phones": res.fast_phones,
            "slow_phones": res.slow_phones,
            "rss_mb": peak_rss_mb(),
        }
    )


def run_naive(url: str, user: uuid.UUID, dataset: uuid.UUID, path: str, q: Any) -> None:
    """The API contract's flow: normalise, drop in-file duplicates, insert 100 rows at a time."""
    from dbr.datasets.dialect import Dialect, iter_records, open_text
    from dbr.datasets.mapping import validate_mapping
    from dbr.datasets.preview import read_header
    from dbr.datasets.rows import IssueLog, RowBuilder
    from dbr.db import as_caller_sync

    t0 = time.perf_counter()
    dialect = Dialect("utf-8-sig", ",")
    seen: set[str] = set()
    inserted = rows = 0
    batch: list[tuple[Any, ...]] = []
    with psycopg.connect(url, autocommit=True) as conn:
        client_id = conn.execute(
            "select client_id from public.datasets where id = %s", (dataset,)
        ).fetchone()[0]

        def flush() -> int:
            if not batch:
                return 0
            values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(batch))
            params = [v for row in batch for v in row]
            with as_caller_sync(conn, caller(user)):
                cur = conn.execute(
                    f"insert into public.leads ({LEAD_COLUMNS}) values {values}"
                    " on conflict (dataset_id, phone_number) do nothing",
                    params,
                )
                n = cur.rowcount
            batch.clear()
            return n

        with open_text(Path(path), dialect, strict=False) as text:
            records = iter_records(text, dialect)
            _, columns = read_header(records)
            build = RowBuilder(
                columns, validate_mapping(MAPPING, columns), "GB", IssueLog(), IssueLog()
            )
            for line, cells in records:
                rows += 1
                staged = build(line, cells)
                if staged is None or staged[1] in seen:
                    continue
                seen.add(staged[1])
                _, phone, tz, first, last, email, pc, date, notes, custom = staged
                batch.append(
                    (
                        client_id,
                        dataset,
                        phone,
                        tz,
                        first,
                        last,
                        email,
                        pc,
                        date,
                        notes,
                        custom or "{}",
                    )
                )
                if len(batch) == BATCH:
                    inserted += flush()
            inserted += flush()
    q.put(
        {
            "seconds": time.perf_counter() - t0,
            "rows": rows,
            "successful": inserted,
            "rss_mb": peak_rss_mb(),
        }
    )


def run_copy(url: str, path: str, table: str, q: Any) -> None:
    t0 = time.perf_counter()
    n = 0
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        with (
            conn.cursor().copy(f"copy {table} ({LEAD_COLUMNS}) from stdin") as copy,
            open(path, "rb") as f,
        ):
            while chunk := f.read(1 << 20):
                copy.write(chunk)
        n = conn.execute(f"select count(*) from {table}").fetchone()[0]
    q.put({"seconds": time.perf_counter() - t0, "rows": n, "rss_mb": peak_rss_mb()})


def in_child(fn: Any, *args: Any) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=fn, args=(*args, q))
    p.start()
    out = q.get()
    p.join()
    return out


# ---- setup ---------------------------------------------------------------------------------
def setup(url: str) -> tuple[uuid.UUID, uuid.UUID]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as db:
        db.execute(
            "create table bench_bare_leads"
            " (like public.leads including defaults including generated)"
        )
        client = db.execute(
            "insert into public.clients (name, default_region)"
            " values ('Bench Ltd', 'GB') returning id"
        ).fetchone()["id"]
        user = uuid.uuid4()
        db.execute(
            "insert into auth.users (id, aud, role, email) values (%s, 'authenticated',"
            " 'authenticated', 'admin@bench.test')",
            (user,),
        )
        db.execute(
            "insert into public.client_members (client_id, user_id, role, status, email,"
            " can_view_all_leads) values (%s, %s, 'admin', 'active', 'admin@bench.test', true)",
            (client, user),
        )
    return client, user


def fresh_dataset(url: str, client: uuid.UUID, name: str) -> uuid.UUID:
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("truncate public.leads cascade")
        db.execute("vacuum analyze public.leads")
        db.execute("checkpoint")
        return db.execute(
            "insert into public.datasets (client_id, name) values (%s, %s) returning id",
            (client, name),
        ).fetchone()[0]


def export_clean(url: str, dataset: uuid.UUID, path: Path) -> None:
    sql = f"copy (select {LEAD_COLUMNS} from public.leads where dataset_id = %s) to stdout"
    with (
        psycopg.connect(url, autocommit=True) as db,
        path.open("wb") as f,
        db.cursor().copy(sql, (dataset,)) as copy,
    ):
        for chunk in copy:
            f.write(chunk)


def check_dataset(url: str, dataset: uuid.UUID) -> tuple[int, int]:
    with psycopg.connect(url, autocommit=True) as db:
        row = db.execute(
            "select (select count(*) from public.leads where dataset_id = %(d)s),"
            " (select total_leads from public.datasets where id = %(d)s)",
            {"d": dataset},
        ).fetchone()
    return int(row[0]), int(row[1])


def verify_fast_phones(path: Path, sample: int = 20_000) -> int:
    """Re-checks the fast phone path against phonenumbers on the file's own numbers."""
    import csv

    from dbr import phones
    from dbr.datasets.fastphone import PhoneNormaliser

    pn = PhoneNormaliser("GB")
    checked = 0
    with path.open(encoding="utf-8-sig", newline="") as f:
        for i, row in enumerate(csv.reader(f)):
            if i == 0 or len(row) < 3:
                continue
            fast = pn.fast(row[2])
            if fast is not None:
                ref = phones.normalise(row[2], "GB")
                assert fast.e164 == ref.e164, (row[2], fast, ref)
                assert fast.timezone == phones.timezone_for(ref.e164), row[2]
                checked += 1
            if checked >= sample:
                break
    return checked


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _line(text: str) -> None:
    print(text, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=250_000)
    ap.add_argument("--naive-rows", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each way; medians reported")
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args()

    settings = get_settings()
    files = {}
    for n in sorted({args.small, args.rows, args.naive_rows}):
        path = OUT / f"leads_{n}.csv"
        if not path.exists():
            t = time.perf_counter()
            generate(path, n)
            mb = path.stat().st_size / 2**20
            _line(f"generated {path.name} ({mb:.0f} MB) in {time.perf_counter() - t:.1f}s")
        files[n] = path
    checked = verify_fast_phones(files[args.rows])
    _line(f"fast phone path checked against phonenumbers on {checked:,} numbers of the file")

    name, url = testdb.create_test_database(settings, "benchimport")
    try:
        client, user = setup(url)
        runs: dict[str, list[dict[str, Any]]] = {
            k: [] for k in ("ours_small", "ours", "ours_subset", "naive", "copy", "bare")
        }
        sizes = (("ours_subset", args.naive_rows), ("ours_small", args.small), ("ours", args.rows))
        for i in range(args.repeat):
            for label, n in sizes:
                ds = fresh_dataset(url, client, f"{label}-{i}")
                r = in_child(run_ours, url, user, ds, str(files[n]))
                count, total = check_dataset(url, ds)
                assert count == total == r["successful"], (count, total, r)
                runs[label].append(r)
                _line(
                    f"ours  {n:>9,} rows {r['seconds']:6.1f}s {n / r['seconds']:>8,.0f} rows/s"
                    f" (stage {r['stage']:.1f}s + move {r['move']:.1f}s)"
                    f" peak RSS {r['rss_mb']:.0f} MB; ok {r['successful']:,}"
                    f" failed {r['failed']:,} dup {r['duplicates']:,};"
                    f" phones fast/slow {r['fast_phones']:,}/{r['slow_phones']:,}"
                )
                if label == "ours" and i == 0:
                    export_clean(url, ds, OUT / "clean_leads.copy")

            ds = fresh_dataset(url, client, f"naive-{i}")
            r = in_child(run_naive, url, user, ds, str(files[args.naive_rows]))
            runs["naive"].append(r)
            _line(
                f"naive {args.naive_rows:>9,} rows {r['seconds']:6.1f}s"
                f" {args.naive_rows / r['seconds']:>8,.0f} rows/s; ok {r['successful']:,}"
            )

            fresh_dataset(url, client, f"copy-{i}")
            for label, table in (("copy", "public.leads"), ("bare", "bench_bare_leads")):
                r = in_child(run_copy, url, str(OUT / "clean_leads.copy"), table)
                runs[label].append(r)
                what = "into leads" if label == "copy" else "into a copy of leads, no index/trigger"
                _line(
                    f"COPY  {r['rows']:>9,} rows {r['seconds']:6.1f}s"
                    f" {r['rows'] / r['seconds']:>8,.0f} rows/s (clean rows {what})"
                )
            with psycopg.connect(url, autocommit=True) as db:
                db.execute("truncate bench_bare_leads")

        med = {k: _median(v, "seconds") for k, v in runs.items()}
        ours_rate = args.rows / med["ours"]
        naive_rate = args.naive_rows / med["naive"]
        clean_rows = runs["copy"][0]["rows"]
        _line("")
        _line(f"medians of {args.repeat} runs; {args.rows:,}-row file ({clean_rows:,} leads):")
        _line(
            f"  ours, end to end          {med['ours']:7.1f}s {ours_rate:>9,.0f} rows/s"
            " (target 50k)"
        )
        _line(
            f"  batches of 100 (naive)    {med['naive'] * args.rows / args.naive_rows:7.1f}s"
            f" {naive_rate:>9,.0f} rows/s (on {args.naive_rows:,} rows, extrapolated)"
        )
        _line(
            f"  raw COPY into leads       {med['copy']:7.1f}s"
            f" {clean_rows / med['copy']:>9,.0f} rows/s (the floor)"
        )
        _line(
            f"  COPY, no index/trigger    {med['bare']:7.1f}s"
            f" {clean_rows / med['bare']:>9,.0f} rows/s (what leads' indexes cost)"
        )
        _line(f"  ours vs naive, extrapol.  {ours_rate / naive_rate:7.1f}x faster (target 20x)")
        _line(
            f"  ours vs naive, same rows  {med['naive'] / med['ours_subset']:7.1f}x faster"
            f" (both on the {args.naive_rows:,}-row file)"
        )
        _line(f"  ours / raw COPY time      {med['ours'] / med['copy']:7.2f}x (target within 3x)")
        _line(
            f"  peak RSS                  {args.small:,} rows:"
            f" {_median(runs['ours_small'], 'rss_mb'):.0f} MB;"
            f" {args.rows:,} rows: {_median(runs['ours'], 'rss_mb'):.0f} MB"
            f" ({args.small / med['ours_small']:,.0f} rows/s on the small file)"
        )
    finally:
        if not args.keep_db:
            stack.drop_database(stack.database_url(settings), name)


if __name__ == "__main__":
    main()
