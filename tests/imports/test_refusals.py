"""Rows the importer refuses one by one while the rest of the list imports: numbers on the
client's suppression list (they texted STOP earlier) and numbers that cannot receive an SMS
(landlines, premium rate, ...). Each refusal is a row error naming the file's line; the
dataset's counters stay exact."""

from __future__ import annotations

import uuid
from pathlib import Path

from typer.testing import CliRunner

from cli import app
from tests.imports.support import Tenant, import_upload, make_tenant, suggested, upload

runner = CliRunner()


def _suppress(db, client_id: uuid.UUID, phone: str) -> None:
    db.execute(
        "insert into public.suppressions (client_id, phone_number, reason, source)"
        " values (%s, %s, 'STOP', 'inbound_keyword')",
        (client_id, phone),
    )


def _import_csv(api, tenant: Tenant, text: str) -> dict:
    resp = upload(api, tenant, text.encode())
    assert resp.status_code == 201, resp.text
    upload_id = resp.json()["upload"]["id"]
    resp = import_upload(api, tenant, upload_id, suggested(resp.json()))
    assert resp.status_code == 200, resp.text
    return resp.json()


def _phones(db, dataset_id: uuid.UUID) -> list[str]:
    rows = db.execute(
        "select phone_number from public.leads where dataset_id = %s order by phone_number",
        (dataset_id,),
    ).fetchall()
    return [r["phone_number"] for r in rows]


def _stats_exact(db, dataset_id: uuid.UUID) -> tuple[int, int]:
    """(total, active) of the dataset, after checking the recount finds nothing to fix."""
    row = db.execute(
        "select total_leads, active_leads from public.datasets where id = %s", (dataset_id,)
    ).fetchone()
    fixed = db.execute("select private.recount_dataset_stats(%s) as n", (dataset_id,)).fetchone()
    assert fixed["n"] == 0, "the dataset's counters were wrong"
    return row["total_leads"], row["active_leads"]


_LIST = "phone,first_name\n07911 123460,Stopped\n07911 123461,Other\n07911 123462,Fine\n"


def test_a_suppressed_number_is_skipped_and_reported_not_fatal(import_api, tenant, db):
    _suppress(db, tenant.client_id, "+447911123460")
    body = _import_csv(import_api, tenant, _LIST)
    assert body["imported"] == {"total_rows": 3, "successful": 2, "failed": 1, "duplicates": 0}
    (error,) = body["errors"]
    assert error["row"] == 2
    assert "opted out" in error["reason"]
    assert _phones(db, tenant.dataset_id) == ["+447911123461", "+447911123462"]
    assert _stats_exact(db, tenant.dataset_id) == (2, 2)
    rec = db.execute(
        "select failed, errors from public.lead_imports where dataset_id = %s",
        (tenant.dataset_id,),
    ).fetchone()
    assert rec["failed"] == 1 and rec["errors"][0]["row"] == 2


def test_every_line_of_a_suppressed_number_is_reported(import_api, tenant, db):
    _suppress(db, tenant.client_id, "+447911123460")
    text = _LIST + "+44 7911 123460,Again\n"
    body = _import_csv(import_api, tenant, text)
    assert [e["row"] for e in body["errors"]] == [2, 5]
    assert body["imported"]["successful"] == 2 and body["imported"]["failed"] == 2
    assert body["imported"]["duplicates"] == 0
    assert _stats_exact(db, tenant.dataset_id) == (2, 2)


def test_suppression_is_per_client(import_api, tenant, db, import_settings):
    other = make_tenant(db, import_settings, name="Other client")
    _suppress(db, other.client_id, "+447911123461")  # opted out of the other client only
    _suppress(db, tenant.client_id, "+447911123460")
    body = _import_csv(import_api, tenant, _LIST)
    assert [e["row"] for e in body["errors"]] == [2]
    assert _phones(db, tenant.dataset_id) == ["+447911123461", "+447911123462"]
    # ... and the other client's import skips only its own suppressed number.
    body = _import_csv(import_api, other, _LIST)
    assert [e["row"] for e in body["errors"]] == [3]
    assert _phones(db, other.dataset_id) == ["+447911123460", "+447911123462"]
    assert _stats_exact(db, other.dataset_id) == (2, 2)


def test_cli_import_skips_a_suppressed_number(db, db_url, settings, tmp_path: Path):
    tenant = make_tenant(db, settings)
    _suppress(db, tenant.client_id, "+447911123460")
    path = tmp_path / "list.csv"
    path.write_text(_LIST)
    res = runner.invoke(
        app, ["import", str(path), "--dataset", str(tenant.dataset_id), "--database-url", db_url]
    )
    assert res.exit_code == 0, res.output
    assert "opted out" in res.output
    assert _phones(db, tenant.dataset_id) == ["+447911123461", "+447911123462"]
    assert _stats_exact(db, tenant.dataset_id) == (2, 2)


def test_a_suppressed_number_inserted_another_way_is_opted_out_with_exact_stats(tenant, db):
    # Any other insert path (an RPC, a worker, SQL) still gets the trigger's safety net: the
    # lead is opted out at once and the counters of an empty dataset never go negative.
    _suppress(db, tenant.client_id, "+447911123460")
    db.execute(
        "insert into public.leads (client_id, dataset_id, phone_number) values (%s, %s, %s)",
        (tenant.client_id, tenant.dataset_id, "+447911123460"),
    )
    lead = db.execute(
        "select opted_out, contact_status from public.leads where dataset_id = %s",
        (tenant.dataset_id,),
    ).fetchone()
    assert (lead["opted_out"], lead["contact_status"]) == (True, "OPTED_OUT")
    assert _stats_exact(db, tenant.dataset_id) == (1, 0)


_MIXED = (
    "phone,first_name\n"
    "07911 123463,Mobile\n"
    "020 7946 0018,Landline\n"
    "0800 123 4567,Freephone\n"
    "0900 123 4567,Premium\n"
    "0300 123 4567,Business\n"
    "+1 (212) 555-0123,New York\n"
    "070 1234 5678,Personal\n"
)


def test_numbers_that_cannot_receive_sms_are_rejected_per_row(import_api, tenant, db):
    body = _import_csv(import_api, tenant, _MIXED)
    assert body["imported"] == {"total_rows": 7, "successful": 2, "failed": 5, "duplicates": 0}
    reasons = {e["row"]: e["reason"] for e in body["errors"]}
    assert sorted(reasons) == [3, 4, 5, 6, 8]
    assert "landline" in reasons[3] and "cannot receive SMS" in reasons[3]
    assert "020 7946 0018" in reasons[3]
    assert "freephone" in reasons[4]
    assert "premium" in reasons[5]
    # A mobile, and a US/Canada number (phonenumbers cannot tell its mobiles from its
    # landlines: FIXED_LINE_OR_MOBILE), are imported.
    assert _phones(db, tenant.dataset_id) == ["+12125550123", "+447911123463"]
    assert _stats_exact(db, tenant.dataset_id) == (2, 2)


def test_cli_import_rejects_a_landline(db, db_url, settings, tmp_path: Path):
    tenant = make_tenant(db, settings)
    path = tmp_path / "list.csv"
    path.write_text("phone,first_name\n020 7946 0018,Landline\n07911 123463,Mobile\n")
    res = runner.invoke(
        app, ["import", str(path), "--dataset", str(tenant.dataset_id), "--database-url", db_url]
    )
    assert res.exit_code == 0, res.output
    assert "landline" in res.output
    assert _phones(db, tenant.dataset_id) == ["+447911123463"]


def test_a_member_that_sees_only_its_assigned_leads_cannot_import(import_api, tenant, db):
    from tests.support import make_user

    rep = make_user(db, tenant.client_id, "sales_rep", can_view_all_leads=False)
    db.execute(
        "insert into public.leads (client_id, dataset_id, phone_number, assigned_to)"
        " values (%s, %s, '+447911123499', %s)",
        (tenant.client_id, tenant.dataset_id, rep),
    )
    resp = upload(import_api, tenant, _LIST.encode(), user=rep)
    assert resp.status_code == 403, resp.text
    assert "assigned to you" in resp.json()["error"]["message"]
    upload_id = _import_csv_upload_id(import_api, tenant)  # the admin's upload of the list
    resp = import_upload(import_api, tenant, upload_id, {"phone_number": "phone"}, user=rep)
    assert resp.status_code in (403, 404), resp.text
    assert _phones(db, tenant.dataset_id) == ["+447911123499"]


def _import_csv_upload_id(api, tenant: Tenant) -> str:
    resp = upload(api, tenant, _LIST.encode(), dataset_id=tenant.dataset_id)
    assert resp.status_code == 201, resp.text
    return resp.json()["upload"]["id"]
