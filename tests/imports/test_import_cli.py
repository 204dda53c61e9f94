"""`dbr import`: the importer from the command line, as a member of the dataset's client."""

from __future__ import annotations

from typer.testing import CliRunner

from cli import app
from tests.imports.support import FIXTURES, make_tenant
from tests.support import make_user

runner = CliRunner()


def _leads(db, dataset_id) -> dict[str, dict]:
    rows = db.execute("select * from public.leads where dataset_id = %s", (dataset_id,)).fetchall()
    return {r["phone_number"]: r for r in rows}


def test_import_with_suggested_mapping_as_first_admin(db, db_url, settings):
    tenant = make_tenant(db, settings)
    args = ["import", str(FIXTURES / "utf8_bom.csv"), "--dataset", str(tenant.dataset_id)]
    res = runner.invoke(app, [*args, "--database-url", db_url])
    assert res.exit_code == 0, res.output
    assert "utf-8-sig" in res.output and "comma-separated" in res.output
    leads = _leads(db, tenant.dataset_id)
    assert leads["+447911123451"]["first_name"] == "John"
    rec = db.execute(
        "select source, imported_by, filename, successful from public.lead_imports"
        " where dataset_id = %s",
        (tenant.dataset_id,),
    ).fetchone()
    assert rec == {
        "source": "cli",
        "imported_by": tenant.admin,
        "filename": "utf8_bom.csv",
        "successful": 3,
    }


def test_explicit_mapping_and_user(db, db_url, settings):
    tenant = make_tenant(db, settings)
    rep = make_user(db, tenant.client_id, "sales_rep", email="rep@acme.test")
    res = runner.invoke(
        app,
        [
            "import",
            str(FIXTURES / "odd_header.csv"),
            "--dataset",
            str(tenant.dataset_id),
            "--map",
            "Ref=first_name",
            "--map",
            "Contact=phone_number",
            "--as-email",
            "REP@acme.test",
            "--database-url",
            db_url,
        ],
    )
    assert res.exit_code == 0, res.output
    leads = _leads(db, tenant.dataset_id)
    assert {r["first_name"] for r in leads.values()} == {"A1", "A2", "A3", "A4"}
    assert {r["custom_fields"]["Who"] for r in leads.values()} == {"Ros", "Sam", "Tia", "Uma"}
    assert (
        db.execute(
            "select imported_by from public.lead_imports where dataset_id = %s",
            (tenant.dataset_id,),
        ).fetchone()["imported_by"]
        == rep
    )


def test_read_only_user_and_bad_mapping_fail_cleanly(db, db_url, settings):
    tenant = make_tenant(db, settings)
    make_user(db, tenant.client_id, "read_only", email="viewer@acme.test")
    base = ["import", str(FIXTURES / "tab_delimited.tsv"), "--dataset", str(tenant.dataset_id)]
    res = runner.invoke(app, [*base, "--as-email", "viewer@acme.test", "--database-url", db_url])
    assert res.exit_code == 1
    assert "read-only" in res.output
    res = runner.invoke(app, [*base, "--map", "nope=phone_number", "--database-url", db_url])
    assert res.exit_code == 1
    assert "not valid" in res.output
    res = runner.invoke(app, [*base, "--map", "phone=shoe_size", "--database-url", db_url])
    assert res.exit_code == 2
    assert _leads(db, tenant.dataset_id) == {}
