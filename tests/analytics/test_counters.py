"""The analytics counters under real writes: a CSV imported through the API, concurrent
writers on the same counter rows, and a repair running while writers write."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.analytics.support import add_messages, drift, rpc_as
from tests.imports.support import import_upload, make_tenant, suggested, upload

EXAMPLE = "examples/leads.csv"


def run_together(db_url: str, *jobs: Callable[[psycopg.Connection[Any]], None]) -> None:
    """Each job on its own connection and thread, started together; re-raises the first error
    (a deadlock would surface here as 40P01)."""
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
def imported(db, api, settings) -> Any:
    """The example list uploaded and imported through the API, as its admin would."""
    from pathlib import Path

    from dbr.settings import ROOT

    tenant = make_tenant(db, settings)
    up = upload(api, tenant, Path(ROOT / EXAMPLE).read_bytes(), dataset_id=tenant.dataset_id)
    assert up.status_code == 201, up.text
    res = import_upload(api, tenant, up.json()["upload"]["id"], suggested(up.json()))
    assert res.status_code == 200, res.text
    assert res.json()["imported"]["successful"] == 10
    return tenant


def test_an_import_through_the_api_is_counted_exactly(db, imported):
    assert drift(db) == 0
    total = db.execute(
        "select sum(leads) as n from analytics_lead_groups where dataset_id = %s",
        (imported.dataset_id,),
    ).fetchone()["n"]
    assert total == 10
    overview = rpc_as(db, imported.admin, "analytics_overview", dataset_id=str(imported.dataset_id))
    assert overview["metrics"]["total_leads"] == 10
    assert overview["status_breakdown"]["READY"] == 10


def test_concurrent_writers_on_the_same_counter_rows_lose_nothing(db, db_url, imported):
    ds = imported.dataset_id
    db.execute(
        "insert into conversations (client_id, dataset_id, lead_id)"
        " select client_id, dataset_id, id from leads where dataset_id = %s",
        (ds,),
    )

    def writer(conn: psycopg.Connection[Any]) -> None:
        for _ in range(20):
            add_messages(conn, ds, 25)
            conn.execute(
                "update messages set status = 'delivered' where dataset_id = %s and status = 'sent'"
                " and id in (select id from messages where dataset_id = %s limit 10)",
                (ds, ds),
            )

    run_together(db_url, writer, writer, writer)
    assert drift(db) == 0
    n = db.execute(
        "select sum(messages) as n from analytics_message_days where dataset_id = %s", (ds,)
    ).fetchone()["n"]
    assert n == 3 * 20 * 25


def test_a_repair_running_beside_writers_leaves_the_counters_exact(db, db_url, imported):
    ds = imported.dataset_id
    db.execute(
        "insert into conversations (client_id, dataset_id, lead_id)"
        " select client_id, dataset_id, id from leads where dataset_id = %s",
        (ds,),
    )
    db.execute(
        "update analytics_lead_groups set leads = leads + 7 where dataset_id = %s", (ds,)
    )  # drift to repair

    def writer(conn: psycopg.Connection[Any]) -> None:
        for _ in range(30):
            add_messages(conn, ds, 10)

    def repairer(conn: psycopg.Connection[Any]) -> None:
        for _ in range(10):
            conn.execute("select private.recount_analytics(%s)", (ds,))

    run_together(db_url, writer, repairer, writer)
    assert drift(db) == 0


def test_a_deleted_dataset_takes_its_counters_with_it(db, imported):
    ds = imported.dataset_id
    with db.transaction():
        db.execute("delete from datasets where id = %s", (ds,))
    for table in (
        "analytics_message_days",
        "analytics_lead_groups",
        "analytics_lead_days",
        "analytics_booking_days",
    ):
        left = db.execute(f"select count(*) as n from {table} where dataset_id = %s", (ds,))
        assert left.fetchone()["n"] == 0
    assert drift(db) == 0


def test_unknown_dataset_is_404_and_bad_range_400(db, imported):
    from dbr.rpc import RpcError

    with pytest.raises(RpcError) as nf:
        rpc_as(db, imported.admin, "analytics_overview", dataset_id=str(uuid.uuid4()))
    assert nf.value.status == 404 and nf.value.code == "NOT_FOUND"
    with pytest.raises(RpcError) as bad:
        rpc_as(db, imported.admin, "analytics_overview", time_range="year")
    assert bad.value.status == 400 and bad.value.code == "VALIDATION_ERROR"
    assert bad.value.details == {"field": "time_range", "value": "year"}
