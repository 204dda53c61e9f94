"""Lead search latency at a million leads, under RLS, ours vs the naive way, in one run.

Builds N leads (default 1,000,000) with set-based SQL in a throw-away database, then calls
`public.list_leads` as an authenticated sales rep (role + JWT claims, exactly as PostgREST
does) for each kind of query, and the same queries the naive way: what a PostgREST client
would send (`or=(first_name.ilike.*x*,...)` with `count=exact`) with no trigram index, no
phone normalisation and no counter shortcut. Prints p50/p95 per kind and the ratios.

    .venv/bin/python -m bench.lead_search [--leads 1000000] [--iterations 40]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from dbr.auth import Caller
from dbr.db import as_caller_sync
from dbr.dev import stack, testdb
from dbr.settings import get_settings

DATASETS = 10
PAGE = 50
TARGET_P95_MS = 20.0


def _words(text: str) -> list[str]:
    return text.split()


FIRST_NAMES = _words("""
    oliver george harry jack jacob noah charlie thomas oscar william james leo alfie henry joshua
    freddie archie ethan isaac alexander joseph edward samuel max daniel arthur lucas mohammed
    logan theo olivia amelia isla ava emily sophia grace mia poppy ella lily evie isabella sophie
    ivy freya harper willow charlotte jessica rosie daisy alice florence phoebe ruby matilda
    sienna evelyn scarlett chloe aisha priya wei anna maria
""")
# 39 x 10 = 390 surnames: "smith" matches ~1/39 of the leads (smith, smithson, ...), as a
# common surname does in a real UK list.
SURNAME_HEADS = _words("""
    smith jones taylor brown williams wilson johnson davies patel robinson wright thompson evans
    walker white roberts green hall thomas clarke jackson wood harris edwards turner martin cooper
    hill ward hughes moore clark king harrison lewis baker lee allen morris
""")
SURNAME_TAILS = ["", "son", "ford", "ley", "ton", "well", "wood", "field", "by", "er"]
DOMAINS = ["gmail.com", "yahoo.co.uk", "hotmail.com", "outlook.com", "btinternet.com", "bt.com"]
STATUS_MIX = [
    *["READY"] * 6,
    *["M1_SENT"] * 2,
    *_words("M2_SENT M3_SENT REPLIED WARM COLD NO_RESPONSE NOT_INTERESTED HOT CONVERTED"),
    *_words("CALL_BOOKED OPTED_OUT UNDELIVERABLE"),
]

BUILD_SQL = """
insert into public.leads (client_id, dataset_id, first_name, last_name, email, phone_number,
  contact_status, lead_sentiment, archived, created_at)
select %(client)s, (%(datasets)s::uuid[])[1 + i %% %(n_datasets)s],
  initcap(f.name), initcap(s.name),
  case when pg_temp.h(i, 3) %% 4 <> 0 then f.name || '.' || s.name || (i %% 97) || '@'
    || (%(domains)s::text[])[1 + pg_temp.h(i, 4) %% 6] end,
  -- i -> 9 digits is a bijection (7919 is coprime with 10^9): unique, scattered numbers
  '+447' || lpad(((i::bigint * 7919 + 12345) %% 1000000000)::text, 9, '0'),
  (%(statuses)s::public.lead_status[])[1 + pg_temp.h(i, 5) %% %(n_statuses)s],
  case when pg_temp.h(i, 6) %% 9 = 0
    then (enum_range(null::public.lead_sentiment))[1 + pg_temp.h(i, 7) %% 5] end,
  pg_temp.h(i, 8) %% 50 = 0,
  now() - (i %% 525600) * interval '1 minute'
from generate_series(1, %(n)s) i
cross join lateral (select (%(firsts)s::text[])[1 + pg_temp.h(i, 1) %% %(n_firsts)s] as name) f
cross join lateral (select (%(surnames)s::text[])[1 + pg_temp.h(i, 2) %% %(n_surnames)s] as name) s
"""
# Independent pseudo-random choices per attribute (no correlation with the dataset = i % 10).
HASH_FN = (
    "create function pg_temp.h(i bigint, seed bigint) returns bigint language sql immutable"
    " as 'select abs(hashint8extended(i, seed))'"
)

TRGM_INDEX = (
    "create index leads_search_trgm_idx on public.leads"
    " using gin (search_text extensions.gin_trgm_ops)"
)
ANY_FIELD = "(first_name ilike %s or last_name ilike %s or email ilike %s or phone_number ilike %s)"
SEED_COLUMNS = (
    "id, first_name, last_name, phone_number, email, postcode, contact_status, lead_sentiment, "
    "latest_lead_reply, reply_received_at, call_booked, call_booked_time, manual_mode, "
    "archived, created_at"
)


@dataclass
class Case:
    kind: str
    ours: dict[str, Any]  # list_leads arguments
    naive_where: str  # the plain query's condition
    naive_params: list[Any]


@dataclass
class World:
    rep: Caller
    client: uuid.UUID
    datasets: list[uuid.UUID]


def _one(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def build(conn: psycopg.Connection[Any], n: int) -> World:
    client = _one(conn, "insert into public.clients (name) values ('Bench') returning id")
    other = _one(conn, "insert into public.clients (name) values ('Noise') returning id")
    new_dataset = "insert into public.datasets (client_id, name) values (%s, %s) returning id"
    datasets = [_one(conn, new_dataset, (client, f"List {k + 1}")) for k in range(DATASETS)]
    noise = _one(conn, new_dataset, (other, "Noise"))
    user = uuid.uuid4()
    conn.execute(
        "insert into auth.users (id, aud, role, email)"
        " values (%s, 'authenticated', 'authenticated', 'rep@bench.test')",
        (user,),
    )
    conn.execute(
        "insert into public.client_members"
        " (client_id, user_id, role, status, email, can_view_all_leads)"
        " values (%s, %s, 'sales_rep', 'active', 'rep@bench.test', true)",
        (client, user),
    )
    # Load the way a bulk import would, then build the trigram index once.
    conn.execute("set maintenance_work_mem = '256MB'")
    conn.execute("drop index public.leads_search_trgm_idx")
    names = [h + t for h in SURNAME_HEADS for t in SURNAME_TAILS]
    params = {
        "client": client,
        "datasets": datasets,
        "n_datasets": DATASETS,
        "domains": DOMAINS,
        "statuses": STATUS_MIX,
        "n_statuses": len(STATUS_MIX),
        "firsts": FIRST_NAMES,
        "n_firsts": len(FIRST_NAMES),
        "surnames": names,
        "n_surnames": len(names),
        "n": n,
    }
    conn.execute(HASH_FN)
    conn.execute(BUILD_SQL, params)
    # Another tenant with the same names: RLS must keep them out of every answer.
    conn.execute(
        BUILD_SQL, {**params, "client": other, "datasets": [noise], "n_datasets": 1, "n": n // 20}
    )
    conn.execute(TRGM_INDEX)
    conn.execute("vacuum analyze public.leads")
    conn.execute("checkpoint")
    conn.execute("analyze public.datasets")
    claims = {"sub": str(user), "role": "authenticated", "aud": "authenticated"}
    return World(Caller(user_id=user, role="authenticated", claims=claims), client, datasets)


def make_cases(conn: psycopg.Connection[Any], world: World, iterations: int) -> list[Case]:
    rnd = random.Random(7)
    sample = conn.execute(
        "select last_name, email, phone_number from public.leads"
        " where client_id = %s and email is not null order by random() limit %s",
        (world.client, iterations),
    ).fetchall()
    out: list[Case] = []
    for last, email, phone in sample:
        out.append(Case("name", {"search": last.lower()}, ANY_FIELD, [f"%{last}%"] * 4))
        digits = phone[-7:]  # a partial number: the last 7 digits, typed with a space
        # The naive way is handed bare digits: it could not match "123 4567" at all.
        out.append(
            Case(
                "partial phone",
                {"search": f"{digits[:3]} {digits[3:]}"},
                ANY_FIELD,
                [f"%{digits}%"] * 4,
            )
        )
        out.append(Case("email", {"search": email}, ANY_FIELD, [f"%{email}%"] * 4))
        ds = rnd.choice(world.datasets)
        status = rnd.choice(["HOT", "READY", "WARM", "CONVERTED"])
        out.append(
            Case(
                "filter only",
                {"dataset_id": ds, "status": status, "archived": False},
                "dataset_id = %s and contact_status = %s and archived = false",
                [ds, status],
            )
        )
        out.append(Case("dataset page", {"dataset_id": ds}, "dataset_id = %s", [ds]))
    return out


def timed(conn: psycopg.Connection[Any], caller: Caller, fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    with as_caller_sync(conn, caller):
        fn()
    return (time.perf_counter() - t0) * 1000


def total_of(conn: psycopg.Connection[Any], caller: Caller, case: Case) -> int:
    with as_caller_sync(conn, caller):
        row = ours(conn, case)()
    return int(row[0]["pagination"]["total"])


def ours(conn: psycopg.Connection[Any], case: Case) -> Callable[[], Any]:
    args = ", ".join(f"{k} => %s" for k in case.ours)
    sql = f'select public.list_leads({args}, "limit" => {PAGE})'
    return lambda: conn.execute(sql, list(case.ours.values())).fetchone()


def naive(conn: psycopg.Connection[Any], case: Case) -> Callable[[], Any]:
    def run() -> None:
        where, params = case.naive_where, case.naive_params
        conn.execute(f"select count(*) from public.leads where {where}", params).fetchone()
        conn.execute(
            f"select {SEED_COLUMNS} from public.leads where {where}"
            f" order by created_at desc limit {PAGE}",
            params,
        ).fetchall()

    return run


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


def report(
    timings: dict[tuple[str, str], list[float]],
    matches: dict[str, list[int]],
    kinds: list[str],
    n: int,
    n_naive: int,
) -> None:
    print(
        f"\nlist_leads as an authenticated sales rep, page of {PAGE}, {n} queries per kind"
        f" ({n_naive} the naive way; ms, client-observed, one connection)"
    )
    print(
        f"{'kind':<14}{'ours p50':>10}{'ours p95':>10}{'naive p50':>11}{'naive p95':>11}"
        f"{'p50 ratio':>11}{'matches p50':>13}{'max':>8}"
    )
    worst = 0.0
    for kind in kinds:
        o, v = timings[(kind, "ours")], timings[(kind, "naive")]
        worst = max(worst, pct(o, 95))
        ratio = statistics.median(v) / statistics.median(o)
        print(
            f"{kind:<14}{statistics.median(o):10.1f}{pct(o, 95):10.1f}"
            f"{statistics.median(v):11.1f}{pct(v, 95):11.1f}{ratio:10.1f}x"
            f"{statistics.median(matches[kind]):13,.0f}{max(matches[kind]):8,}"
        )
    verdict = "meets" if worst < TARGET_P95_MS else "MISSES"
    print(f"\nworst p95 (ours) {worst:.1f} ms: {verdict} the target p95 < {TARGET_P95_MS:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--leads", type=int, default=1_000_000)
    ap.add_argument("--iterations", type=int, default=40, help="queries per kind, ours")
    ap.add_argument("--naive-iterations", type=int, default=10, help="queries per kind, naive")
    ap.add_argument("--keep", action="store_true", help="keep the database for inspection")
    opts = ap.parse_args()

    settings = get_settings()
    name, url = testdb.create_test_database(settings, "benchsearch")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            t0 = time.perf_counter()
            world = build(conn, opts.leads)
            print(
                f"built {opts.leads:,} leads (+{opts.leads // 20:,} of another client)"
                f" in {time.perf_counter() - t0:.0f} s"
            )
            cases = make_cases(conn, world, opts.iterations)
            kinds = list(dict.fromkeys(c.kind for c in cases))
            for c in cases[: len(kinds) * 3]:  # warm the caches for both ways
                timed(conn, world.rep, ours(conn, c))
                timed(conn, world.rep, naive(conn, c))
            timings: dict[tuple[str, str], list[float]] = {}
            for c in cases:
                timings.setdefault((c.kind, "ours"), []).append(
                    timed(conn, world.rep, ours(conn, c))
                )
            matches: dict[str, list[int]] = {}
            for c in cases:
                matches.setdefault(c.kind, []).append(total_of(conn, world.rep, c))
            # The naive way has no trigram index at all.
            conn.execute("drop index public.leads_search_trgm_idx")
            naive_cases = cases[: opts.naive_iterations * len(kinds)]
            for c in naive_cases:
                timings.setdefault((c.kind, "naive"), []).append(
                    timed(conn, world.rep, naive(conn, c))
                )
            report(timings, matches, kinds, opts.iterations, opts.naive_iterations)
    finally:
        if opts.keep:
            print(f"kept database {name}: {url}")
        else:
            stack.drop_database(stack.database_url(settings), name)


if __name__ == "__main__":
    main()
