"""POST /api/datasets/map-and-import: messy files import exactly (E.164 phones, ISO dates, tidy
names), with row errors a person can find in the file, duplicates skipped, settings stored."""

from __future__ import annotations

import uuid

import pytest

from tests.imports.support import (
    Tenant,
    import_upload,
    make_tenant,
    suggested,
    upload,
)
from tests.support import acting_as


def _upload_id(api, tenant: Tenant, content, **kw) -> tuple[str, dict[str, str]]:
    resp = upload(api, tenant, content, **kw)
    assert resp.status_code == 201, resp.text
    return resp.json()["upload"]["id"], suggested(resp.json())


def _import(api, tenant: Tenant, content, mapping=None, **kw):
    upload_id, sugg = _upload_id(api, tenant, content)
    resp = import_upload(api, tenant, upload_id, mapping or sugg, **kw)
    return resp


def _leads(db, dataset_id) -> dict[str, dict]:
    rows = db.execute(
        "select * from public.leads where dataset_id = %s order by phone_number", (dataset_id,)
    ).fetchall()
    return {r["phone_number"]: r for r in rows}


def _ok(resp) -> dict:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["success"] is True
    assert set(body) == {"success", "imported", "dataset_id", "errors", "warnings"}
    return body


def test_excel_export_imports_tidied_leads(import_api, tenant, db):
    body = _ok(_import(import_api, tenant, "utf8_bom.csv"))
    assert body["imported"] == {"total_rows": 3, "successful": 3, "failed": 0, "duplicates": 0}
    assert body["dataset_id"] == str(tenant.dataset_id)
    leads = _leads(db, tenant.dataset_id)
    john = leads["+447911123451"]
    assert (john["first_name"], john["last_name"]) == ("John", "Smith")
    assert john["email"] == "john.smith@example.com"
    assert john["postcode"] == "SW1A 1AA"
    assert str(john["inquiry_date"]) == "2023-04-03"  # UK client: 03/04 is 3 April
    assert john["contact_status"] == "READY"
    assert john["client_id"] == tenant.client_id
    mary = leads["+447911123452"]
    assert (mary["first_name"], mary["last_name"]) == ("Mary-Jane", "O'Neil")
    angus = leads["+447911123453"]
    assert angus["last_name"] == "McDonald"
    assert angus["email"] is None  # "not-an-email" is dropped, with a warning naming line 4
    (warning,) = body["warnings"]
    assert (warning["row"], warning["field"]) == (4, "email")
    assert "not-an-email" in warning["reason"]
    # The dataset's counters are kept by the stats triggers (one statement, exact).
    ds = db.execute(
        "select total_leads, active_leads from public.datasets where id = %s", (tenant.dataset_id,)
    ).fetchone()
    assert (ds["total_leads"], ds["active_leads"]) == (3, 3)


def test_utf16_and_cp1252_files_keep_their_characters(import_api, tenant, db):
    _ok(_import(import_api, tenant, "utf16le_unicode_text.txt"))
    body = _ok(_import(import_api, tenant, "cp1252_semicolon.csv"))
    assert body["imported"]["successful"] == 2
    leads = _leads(db, tenant.dataset_id)
    assert leads["+447911123461"]["first_name"] == "Zoë"
    assert leads["+447911123462"]["last_name"] == "Dubois"  # 7911123462: Excel ate the 0
    chloe = leads["+447911123471"]
    assert (chloe["first_name"], chloe["last_name"]) == ("Chloé", "Lefèvre")
    assert chloe["notes"] == "Budget £250 per month"


def test_row_numbers_are_file_lines_across_quoted_line_breaks(import_api, tenant, db):
    body = _ok(_import(import_api, tenant, "quoted_multiline.csv"))
    assert body["imported"] == {"total_rows": 5, "successful": 3, "failed": 2, "duplicates": 0}
    # Ann's note spans lines 2-4: Dee is on line 6 and Fay on line 9 of the file.
    assert [e["row"] for e in body["errors"]] == [6, 9]
    assert "12345" in body["errors"][0]["reason"]
    assert "not a phone" in body["errors"][1]["reason"]
    ann = _leads(db, tenant.dataset_id)["+447911123491"]
    assert ann["notes"] == 'Called twice,\nsaid "maybe" -\nring after 5pm'


def test_blank_and_empty_rows_are_skipped_not_failed(import_api, tenant):
    body = _ok(_import(import_api, tenant, "blank_rows.csv"))
    assert body["imported"] == {"total_rows": 2, "successful": 2, "failed": 0, "duplicates": 0}
    assert body["errors"] == []


def test_invalid_phones_are_row_errors_with_reasons(import_api, tenant, db):
    body = _ok(_import(import_api, tenant, "invalid_phones.csv"))
    assert body["imported"] == {"total_rows": 6, "successful": 1, "failed": 5, "duplicates": 0}
    errors = {e["row"]: e["reason"] for e in body["errors"]}
    assert sorted(errors) == [3, 4, 5, 6, 7]
    assert "empty" in errors[5]
    assert all(errors[r] for r in errors)
    assert list(_leads(db, tenant.dataset_id)) == ["+447911123521"]


def test_duplicates_in_the_file_and_on_reimport(import_api, tenant, db):
    upload_id, mapping = _upload_id(import_api, tenant, "duplicate_phones.csv")
    body = _ok(import_upload(import_api, tenant, upload_id, mapping))
    assert body["imported"] == {"total_rows": 5, "successful": 2, "failed": 0, "duplicates": 3}
    # The first occurrence in the file wins.
    assert _leads(db, tenant.dataset_id)["+447911123511"]["first_name"] == "Ivy"
    again = _ok(import_upload(import_api, tenant, upload_id, mapping))
    assert again["imported"] == {"total_rows": 5, "successful": 0, "failed": 0, "duplicates": 5}
    assert len(_leads(db, tenant.dataset_id)) == 2
    ds = db.execute(
        "select total_leads from public.datasets where id = %s", (tenant.dataset_id,)
    ).fetchone()
    assert ds["total_leads"] == 2
    imports = db.execute(
        "select successful, duplicates, imported_by, source, upload_id::text"
        " from public.lead_imports where dataset_id = %s order by finished_at",
        (tenant.dataset_id,),
    ).fetchall()
    assert [(i["successful"], i["duplicates"]) for i in imports] == [(2, 3), (0, 5)]
    assert {(i["imported_by"], i["source"], i["upload_id"]) for i in imports} == {
        (tenant.admin, "api", upload_id)
    }


def test_same_number_in_another_dataset_is_not_a_duplicate(import_api, tenant, db):
    _ok(_import(import_api, tenant, "tab_delimited.tsv"))
    other = tenant.new_dataset(db)
    body = _ok(_import(import_api, tenant, "tab_delimited.tsv", dataset_id=other))
    assert body["imported"]["successful"] == 3


def test_dates_uk_client(import_api, tenant, db):
    body = _ok(_import(import_api, tenant, "mixed_dates.csv"))
    assert body["imported"]["successful"] == 7
    dates = {
        r["first_name"]: r["inquiry_date"] and r["inquiry_date"].isoformat()
        for r in _leads(db, tenant.dataset_id).values()
    }
    assert dates == {
        "Q1": "2023-03-04",
        "Q2": "2022-12-25",
        "Q3": "2022-12-25",  # 25 cannot be a month: read as US style
        "Q4": "2023-04-03",  # ambiguous: day first for a GB client
        "Q5": "2023-03-04",
        "Q6": None,  # unreadable: dropped, lead imported, warning
        "Q7": "2023-03-04",
    }
    (warning,) = body["warnings"]
    assert warning["row"] == 7 and warning["field"] == "inquiry_date"


def test_dates_and_phones_us_client(import_api, db, import_settings):
    us = make_tenant(db, import_settings, region="US", name="US Co")
    body = _ok(_import(import_api, us, "us_region.csv"))
    assert body["imported"]["successful"] == 3, body
    leads = _leads(db, us.dataset_id)
    amy = leads["+12125550123"]
    assert amy["inquiry_date"].isoformat() == "2023-03-04"  # month first for a US client
    assert amy["timezone"] == "America/New_York"
    assert leads["+16502530000"]["timezone"] == "America/Los_Angeles"
    assert "+12125550199" in leads


def test_number_gets_its_local_timezone_and_unmapped_columns_are_kept(import_api, tenant, db):
    # (A landline would be refused: it cannot receive SMS; see tests/imports/test_refusals.py.)
    csv = b"Name,Phone,Company,Source\nAnn,+1 212 555 0123,Acme Ltd,\nBob,07911 123601,,Fair\n"
    body = _ok(_import(import_api, tenant, csv))
    assert body["imported"]["successful"] == 2
    leads = _leads(db, tenant.dataset_id)
    assert leads["+12125550123"]["timezone"] == "America/New_York"
    assert leads["+12125550123"]["custom_fields"] == {"Company": "Acme Ltd"}
    assert leads["+447911123601"]["custom_fields"] == {"Source": "Fair"}


@pytest.mark.parametrize(
    ("mapping", "fields"),
    [
        ({"first_name": "First Name"}, {"phone_number"}),
        ({"phone_number": "Phone"}, {"first_name"}),
        ({"first_name": "First Name", "phone_number": "Mobile No"}, {"phone_number"}),
        ({"first_name": "Phone", "phone_number": "Phone"}, {"phone_number"}),
        ({"first_name": "First Name", "phone_number": "Phone", "shoe_size": "Phone"}, None),
    ],
)
def test_mapping_errors_are_400_with_details(import_api, tenant, db, mapping, fields):
    upload_id, _ = _upload_id(import_api, tenant, "invalid_phones.csv")
    resp = import_upload(import_api, tenant, upload_id, mapping)
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert err["code"] == "VALIDATION_ERROR"
    if fields is not None:
        assert {p["field"] for p in err["details"]["problems"]} == fields
        assert err["details"]["columns"] == ["First Name", "Phone"]
    assert _leads(db, tenant.dataset_id) == {}


def test_other_tenants_upload_or_dataset_is_404(import_api, tenant, db, import_settings):
    other = make_tenant(db, import_settings, name="Other")
    upload_id, mapping = _upload_id(import_api, other, "tab_delimited.tsv")
    resp = import_upload(import_api, tenant, upload_id, mapping)
    assert resp.status_code == 404
    mine, mapping = _upload_id(import_api, tenant, "tab_delimited.tsv")
    resp = import_upload(import_api, tenant, mine, mapping, dataset_id=other.dataset_id)
    assert resp.status_code == 404
    resp = import_upload(import_api, tenant, str(uuid.uuid4()), mapping)
    assert resp.status_code == 404
    assert _leads(db, other.dataset_id) == {}


def test_read_only_member_cannot_import(import_api, tenant, db):
    upload_id, mapping = _upload_id(import_api, tenant, "tab_delimited.tsv")
    resp = import_upload(import_api, tenant, upload_id, mapping, user=tenant.read_only)
    assert resp.status_code == 403
    assert _leads(db, tenant.dataset_id) == {}


def test_member_restricted_to_other_datasets_gets_404(import_api, tenant, db):
    from tests.support import make_user

    rep = make_user(
        db,
        tenant.client_id,
        "sales_rep",
        can_view_all_leads=False,
        allowed_dataset_ids=[tenant.new_dataset(db)],
    )
    upload_id, mapping = _upload_id(import_api, tenant, "tab_delimited.tsv", user=rep)
    resp = import_upload(import_api, tenant, upload_id, mapping, user=rep)
    assert resp.status_code == 404


def test_upload_attached_to_another_dataset_is_refused(import_api, tenant, db):
    other = tenant.new_dataset(db)
    upload_id, mapping = _upload_id(
        import_api, tenant, "tab_delimited.tsv", dataset_id=tenant.dataset_id
    )
    resp = import_upload(import_api, tenant, upload_id, mapping, dataset_id=other)
    assert resp.status_code == 400
    assert "another dataset" in resp.json()["error"]["message"]


def test_campaign_settings_are_stored_with_contract_defaults(import_api, tenant, db):
    campaign = "select * from public.campaigns where dataset_id = %s"
    _ok(_import(import_api, tenant, "tab_delimited.tsv"))
    row = db.execute(campaign, (tenant.dataset_id,)).fetchone()
    assert (
        row["m1_delay_hours"],
        row["m2_delay_hours"],
        row["m3_delay_hours"],
        row["ai_response_delay_seconds"],
    ) == (0, 48, 96, 60)
    settings = {
        "m1_delay_hours": 1,
        "m2_delay_hours": 24,
        "m3_delay_hours": 72.5,
        "ai_response_delay_seconds": 30,
    }
    _ok(_import(import_api, tenant, "blank_rows.csv", campaign_settings=settings))
    row = db.execute(campaign, (tenant.dataset_id,)).fetchone()
    assert (
        float(row["m1_delay_hours"]),
        float(row["m2_delay_hours"]),
        float(row["m3_delay_hours"]),
        row["ai_response_delay_seconds"],
    ) == (1, 24, 72.5, 30)
    bad = _import(
        import_api, tenant, "blank_rows.csv", campaign_settings={**settings, "m2_delay_hours": -1}
    )
    assert bad.status_code == 400


def test_sales_rep_imports_but_cannot_change_campaign_settings(import_api, tenant, db):
    upload_id, mapping = _upload_id(import_api, tenant, "tab_delimited.tsv", user=tenant.sales_rep)
    resp = import_upload(
        import_api,
        tenant,
        upload_id,
        mapping,
        user=tenant.sales_rep,
        campaign_settings={
            "m1_delay_hours": 5,
            "m2_delay_hours": 5,
            "m3_delay_hours": 5,
            "ai_response_delay_seconds": 5,
        },
    )
    body = _ok(resp)
    assert body["imported"]["successful"] == 3
    assert any(w.get("field") == "campaign_settings" for w in body["warnings"])
    assert (
        db.execute(
            "select count(*) as n from public.campaigns where dataset_id = %s"
            " and m1_delay_hours = 5",
            (tenant.dataset_id,),
        ).fetchone()["n"]
        == 0
    )


def test_import_records_are_tenant_private(import_api, tenant, db, import_settings):
    _ok(_import(import_api, tenant, "invalid_phones.csv"))
    other = make_tenant(db, import_settings, name="Other")
    with acting_as(db, other.admin) as conn:
        n = conn.execute("select count(*) as n from public.lead_imports").fetchone()["n"]
        assert n == 0
    with acting_as(db, tenant.sales_rep) as conn:
        rec = conn.execute(
            "select failed, errors from public.lead_imports where dataset_id = %s",
            (tenant.dataset_id,),
        ).fetchone()
    assert rec["failed"] == 5
    assert [e["row"] for e in rec["errors"]] == [3, 4, 5, 6, 7]
