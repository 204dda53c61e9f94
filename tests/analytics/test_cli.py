"""`dbr analytics`: the overview and campaign progress printed as tables, read as a member."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from cli import app
from cli.analytics_cmd import bar
from tests.analytics.support import add_messages
from tests.imports.support import make_tenant
from tests.support import make_user

runner = CliRunner()


def _seed(db, settings):
    tenant = make_tenant(db, settings)
    other = tenant.new_dataset(db, "Second list")
    for ds, n in ((tenant.dataset_id, 4), (other, 2)):
        db.execute(
            "insert into leads (client_id, dataset_id, phone_number)"
            " select %s, %s, '+447700' || lpad((%s * 100 + g)::text, 6, '0')"
            " from generate_series(1, %s) g",
            (tenant.client_id, ds, n, n),
        )
        db.execute(
            "insert into conversations (client_id, dataset_id, lead_id)"
            " select client_id, dataset_id, id from leads where dataset_id = %s",
            (ds,),
        )
    add_messages(db, tenant.dataset_id, 9)
    db.execute("update datasets set campaign_status = 'active' where id = %s", (tenant.dataset_id,))
    return tenant, other


def test_one_dataset_prints_overview_and_progress(db, db_url, settings):
    tenant, _ = _seed(db, settings)
    res = runner.invoke(
        app,
        ["analytics", "--dataset", str(tenant.dataset_id), "--database-url", db_url],
        terminal_width=160,
    )
    assert res.exit_code == 0, res.output
    assert "Overview: Old list, month" in res.output
    assert "messages sent" in res.output and "Per day" in res.output
    assert "█" in res.output  # the per-day bars
    assert "Campaign: Old list (active)" in res.output
    assert "M1" in res.output and "M3" in res.output


def test_a_restricted_member_sees_only_its_dataset(db, db_url, settings):
    tenant, other = _seed(db, settings)
    make_user(
        db,
        tenant.client_id,
        "sales_rep",
        email="only-second@acme.test",
        can_view_all_leads=False,
        allowed_dataset_ids=[other],
    )
    res = runner.invoke(
        app,
        ["analytics", "--as", "only-second@acme.test", "--range", "week", "--database-url", db_url],
        terminal_width=160,
    )
    assert res.exit_code == 0, res.output
    assert "Overview: all datasets, week" in res.output
    # Two leads (the second list), none of the first list's messages.
    assert re.search(r"│ leads +│ +2 │", res.output)
    assert re.search(r"│ messages sent +│ +0 │", res.output)
    assert "Old list" not in res.output


def test_refusals_are_printed_with_their_status(db, db_url, settings):
    tenant, other = _seed(db, settings)
    make_user(
        db,
        tenant.client_id,
        "sales_rep",
        email="restricted@acme.test",
        can_view_all_leads=False,
        allowed_dataset_ids=[other],
    )
    res = runner.invoke(
        app,
        [
            "analytics",
            "--dataset",
            str(tenant.dataset_id),
            "--as",
            "restricted@acme.test",
            "--database-url",
            db_url,
        ],
    )
    assert res.exit_code == 1
    assert "HTTP 404" in res.output
    res = runner.invoke(app, ["analytics", "--database-url", db_url])
    assert res.exit_code == 2 and "--as EMAIL" in res.output


def test_bars_scale_in_eighths():
    assert bar(0, 10) == ""
    assert bar(10, 10, 4) == "████"
    assert bar(5, 10, 4) == "██"
    assert bar(1, 16, 2) == "▏"
