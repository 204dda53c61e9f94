"""Dataset counters under load: a 100k-row COPY, two sessions writing one dataset at the
same time (no lost update, no deadlock), statements spanning datasets in opposite orders."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.support import acting_as, make_client, make_user

EXPECTED_SQL = """
select count(*) as total_leads,
  count(*) filter (where not archived and not opted_out and contact_status not in
    ('CONVERTED', 'NOT_INTERESTED', 'OPTED_OUT', 'UNDELIVERABLE')) as active_leads,
  count(*) filter (where not archived and (contact_status = 'HOT' or lead_sentiment = 'HOT'))
    as hot_leads,
  count(*) filter (where contact_status = 'CONVERTED') as converted_leads
from leads where dataset_id = %s
"""
STATS_SQL = (
    "select total_leads, active_leads, hot_leads, converted_leads from datasets where id = %s"
)


def assert_exact(db: psycopg.Connection[Any], dataset: uuid.UUID) -> dict[str, int]:
    stats = db.execute(STATS_SQL, (dataset,)).fetchone()
    assert stats == db.execute(EXPECTED_SQL, (dataset,)).fetchone()
    return stats


def run_together(db_url: str, *jobs: Callable[[psycopg.Connection[Any]], None]) -> None:
    """Runs each job on its own connection in its own thread, started at the same moment;
    re-raises the first failure (a deadlock would surface here as 40P01)."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def worker(job: Callable[[psycopg.Connection[Any]], None]) -> None:
        try:
            with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
                start.wait()
                job(conn)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a writer is stuck"
    if errors:
        raise errors[0]


@pytest.fixture
def acme(db) -> dict[str, Any]:
    client = make_client(db, "Acme")
    datasets = [
        db.execute(
            "insert into datasets (client_id, name) values (%s, %s) returning id", (client, name)
        ).fetchone()["id"]
        for name in ("One", "Two")
    ]
    return {"client": client, "datasets": datasets, "rep": make_user(db, client, "sales_rep")}


def test_copy_of_100k_rows_is_counted_exactly(db, acme):
    ds = acme["datasets"][0]
    statuses = ["READY", "HOT", "CONVERTED", "NOT_INTERESTED", "WARM", "OPTED_OUT"]
    with db.cursor().copy(
        "copy leads (client_id, dataset_id, phone_number, contact_status, lead_sentiment,"
        " archived, opted_out) from stdin"
    ) as copy:
        for i in range(100_000):
            copy.write_row(
                (
                    acme["client"],
                    ds,
                    f"+4477{i:08d}",
                    statuses[i % 6],
                    "HOT" if i % 7 == 0 else None,
                    i % 11 == 0,
                    i % 13 == 0,
                )
            )
    stats = assert_exact(db, ds)
    assert stats["total_leads"] == 100_000
    # A bulk status change and a bulk delete keep them exact too.
    db.execute(
        "update leads set contact_status = 'CONVERTED' where dataset_id = %s and archived", (ds,)
    )
    db.execute("delete from leads where dataset_id = %s and opted_out", (ds,))
    assert_exact(db, ds)


def test_two_sessions_inserting_into_one_dataset_at_once(db, db_url, acme):
    ds = acme["datasets"][0]

    def writer(prefix: str) -> Callable[[psycopg.Connection[Any]], None]:
        def job(conn: psycopg.Connection[Any]) -> None:
            # Many small transactions as a sales rep (through RLS), interleaving with the
            # other session: each waits for the other's dataset row lock, none is lost.
            for batch in range(20):
                with acting_as(conn, acme["rep"]) as c:
                    c.execute(
                        "insert into leads (dataset_id, phone_number)"
                        " select %s, %s || lpad((%s * 100 + g)::text, 6, '0')"
                        " from generate_series(1, 100) g",
                        (ds, prefix, batch),
                    )
                    c.execute(
                        "update leads set contact_status = 'HOT'"
                        " where dataset_id = %s and phone_number like %s || '%%1'",
                        (ds, prefix),
                    )

        return job

    run_together(db_url, writer("+44770"), writer("+44780"))
    stats = assert_exact(db, ds)
    assert stats["total_leads"] == 4000
    assert stats["hot_leads"] == 400


def test_statements_spanning_datasets_in_opposite_orders_do_not_deadlock(db, db_url, acme):
    one, two = acme["datasets"]

    def writer(first: uuid.UUID, second: uuid.UUID, prefix: str):
        def job(conn: psycopg.Connection[Any]) -> None:
            for batch in range(15):
                with conn.transaction():
                    # One statement touching both datasets, listed in opposite orders by the
                    # two sessions: the trigger locks dataset rows in id order.
                    conn.execute(
                        "insert into leads (client_id, dataset_id, phone_number)"
                        " select %s, case when g %% 2 = 0 then %s::uuid else %s::uuid end,"
                        " %s || lpad((%s * 100 + g)::text, 6, '0') from generate_series(1, 100) g",
                        (acme["client"], first, second, prefix, batch),
                    )
                    conn.execute(
                        "update leads set archived = not archived"
                        " where dataset_id in (%s, %s) and phone_number like %s || '%%7'",
                        (second, first, prefix),
                    )

        return job

    run_together(db_url, writer(one, two, "+44771"), writer(two, one, "+44781"))
    assert assert_exact(db, one)["total_leads"] + assert_exact(db, two)["total_leads"] == 3000


def test_concurrent_status_archive_and_opt_out_changes(db, db_url, acme):
    # Three sessions change different leads of one dataset at once; every statement moves
    # the same counters, so each must wait for the others' dataset row lock.
    ds = acme["datasets"][1]
    db.execute(
        "insert into leads (client_id, dataset_id, phone_number)"
        " select %s, %s, '+4479' || lpad(g::text, 8, '0') from generate_series(1, 3000) g",
        (acme["client"], ds),
    )

    def statuses(conn: psycopg.Connection[Any]) -> None:
        for status in ["HOT", "WARM", "CONVERTED", "HOT"]:
            with acting_as(conn, acme["rep"]) as c:
                c.execute(
                    "update leads set contact_status = %s"
                    " where dataset_id = %s and right(phone_number, 1) in ('1', '2', '3')",
                    (status, ds),
                )

    def archiver(conn: psycopg.Connection[Any]) -> None:
        for _ in range(4):
            with acting_as(conn, acme["rep"]) as c:
                c.execute(
                    "update leads set archived = not archived"
                    " where dataset_id = %s and right(phone_number, 1) in ('5', '6')",
                    (ds,),
                )

    def opt_outs(conn: psycopg.Connection[Any]) -> None:
        # The service path (STOP replies): opted_out is not user-writable.
        for digit in "0123":
            conn.execute(
                "update leads set opted_out = true, contact_status = 'OPTED_OUT'"
                " where dataset_id = %s and right(phone_number, 2) = %s",
                (ds, digit + "8"),
            )

    run_together(db_url, statuses, archiver, opt_outs)
    assert_exact(db, ds)
    assert db.execute("select private.recount_dataset_stats(%s) as n", (ds,)).fetchone()["n"] == 0
