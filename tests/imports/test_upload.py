"""POST /api/datasets/upload: messy real-world CSV files give a preview, anything else a
clear 4xx with nothing stored; RLS on uploads."""

from __future__ import annotations

import psycopg
import pytest

from tests.imports.support import UPLOAD_CAP, make_tenant, stored_files, suggested, upload
from tests.support import acting_as


def _columns(resp) -> dict[str, dict]:
    return {c["name"]: c for c in resp.json()["upload"]["columns"]}


def _stored_row(db, upload_id: str) -> dict:
    return db.execute("select * from public.csv_uploads where id = %s", (upload_id,)).fetchone()


def test_utf8_bom_excel_export_with_header_variants(import_api, tenant, db, import_settings):
    resp = upload(import_api, tenant, "utf8_bom.csv", dataset_id=tenant.dataset_id)
    assert resp.status_code == 201, resp.text
    body = resp.json()["upload"]
    assert set(body) == {"id", "filename", "file_url", "rows_detected", "columns"}
    assert body["filename"] == "leads.csv"
    assert body["rows_detected"] == 3
    assert body["columns"][0]["name"] == "Forename"  # the BOM is not part of the name
    assert suggested(resp.json()) == {
        "first_name": "Forename",
        "last_name": "Surname",
        "phone_number": "Mobile",
        "email": "E-mail Address",
        "postcode": "Post Code",
        "inquiry_date": "Enquiry Date",
    }
    assert _columns(resp)["Mobile"]["sample_values"] == [
        "07911 123451",
        "+44 7911 123452",
        "0044 7911 123453",
    ]
    row = _stored_row(db, body["id"])
    assert row["client_id"] == tenant.client_id
    assert row["uploaded_by"] == tenant.admin
    assert row["dataset_id"] == tenant.dataset_id
    assert (row["encoding"], row["delimiter"], row["rows_detected"]) == ("utf-8-sig", ",", 3)
    stored = import_settings.storage_dir / "csv_uploads" / row["storage_path"]
    assert stored.read_bytes().startswith(b"\xef\xbb\xbfForename")
    assert body["file_url"].endswith(row["storage_path"])


def test_utf16_unicode_text_from_excel(import_api, tenant):
    resp = upload(import_api, tenant, "utf16le_unicode_text.txt", filename="leads.txt")
    assert resp.status_code == 201, resp.text
    cols = _columns(resp)
    assert cols["First Name"]["sample_values"] == ["Zoë", "Renée"]
    assert cols["Tel"]["suggested_mapping"] == "phone_number"
    assert cols["Email"]["sample_values"] == ["zoe@example.com"]  # empty values skipped
    assert resp.json()["upload"]["rows_detected"] == 2


def test_cp1252_semicolon_file_keeps_pound_and_accents(import_api, tenant, db):
    resp = upload(import_api, tenant, "cp1252_semicolon.csv")
    assert resp.status_code == 201, resp.text
    cols = _columns(resp)
    assert cols["Notes"]["sample_values"][0] == "Budget £250 per month"
    assert cols["Prénom"]["sample_values"] == ["Chloé", "José"]
    assert suggested(resp.json())["phone_number"] == "Téléphone"
    row = _stored_row(db, resp.json()["upload"]["id"])
    assert (row["encoding"], row["delimiter"]) == ("cp1252", ";")


def test_tab_delimited_file(import_api, tenant, db):
    resp = upload(import_api, tenant, "tab_delimited.tsv", filename="leads.tsv")
    assert resp.status_code == 201, resp.text
    assert len(resp.json()["upload"]["columns"]) == 4
    assert _stored_row(db, resp.json()["upload"]["id"])["delimiter"] == "\t"


def test_quoted_newlines_count_as_one_row(import_api, tenant):
    resp = upload(import_api, tenant, "quoted_multiline.csv")
    assert resp.status_code == 201, resp.text
    assert resp.json()["upload"]["rows_detected"] == 5
    assert _columns(resp)["Notes"]["sample_values"][0] == (
        'Called twice,\nsaid "maybe" -\nring after 5pm'
    )


def test_blank_and_all_empty_rows_are_not_counted(import_api, tenant):
    resp = upload(import_api, tenant, "blank_rows.csv")
    assert resp.status_code == 201, resp.text
    assert resp.json()["upload"]["rows_detected"] == 2
    assert _columns(resp)["Name"]["sample_values"] == ["Gus", "Hal"]


def test_phone_column_with_odd_header_is_recognised_by_its_values(import_api, tenant):
    resp = upload(import_api, tenant, "odd_header.csv")
    assert resp.status_code == 201, resp.text
    assert _columns(resp)["Contact"]["suggested_mapping"] == "phone_number"
    assert _columns(resp)["Ref"]["suggested_mapping"] is None


def test_excel_sep_line_is_honoured(import_api, tenant, db):
    resp = upload(import_api, tenant, "excel_sep_line.csv")
    assert resp.status_code == 201, resp.text
    assert [c["name"] for c in resp.json()["upload"]["columns"]] == ["First Name", "Phone"]
    row = _stored_row(db, resp.json()["upload"]["id"])
    assert (row["delimiter"], row["header_line"], row["rows_detected"]) == (";", 2, 2)


def test_repeated_and_empty_header_names_are_made_unique(import_api, tenant):
    resp = upload(import_api, tenant, b"Name,Phone,Phone,\nAnn,07911 123451,07911 123452,x\n")
    assert resp.status_code == 201, resp.text
    names = [c["name"] for c in resp.json()["upload"]["columns"]]
    assert names == ["Name", "Phone", "Phone (2)", "Column 4"]


@pytest.mark.parametrize(
    ("content", "status", "code", "words"),
    [
        ("workbook.xlsx", 415, "UNSUPPORTED_MEDIA_TYPE", "Excel workbook"),
        ("zipped_renamed.csv", 415, "UNSUPPORTED_MEDIA_TYPE", "ZIP"),
        ("image_renamed.csv", 415, "UNSUPPORTED_MEDIA_TYPE", "PNG"),
        (b"\x00\x01\x02\x03binary\x00\xff" * 50, 415, "UNSUPPORTED_MEDIA_TYPE", "binary"),
        (b"", 400, "VALIDATION_ERROR", "empty"),
        (b"\r\n\r\n  \n", 400, "VALIDATION_ERROR", "empty"),
        ("no_header.csv", 400, "VALIDATION_ERROR", "header"),
        (b'Name,Phone\nAnn,"07911 123451\n' + b"x" * 140_000, 400, "VALIDATION_ERROR", "quote"),
    ],
)
def test_not_a_csv_is_refused_and_nothing_is_stored(
    import_api, tenant, db, import_settings, content, status, code, words
):
    before = stored_files(import_settings)
    resp = upload(import_api, tenant, content)
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code
    assert words.lower() in err["message"].lower()
    assert (
        db.execute(
            "select count(*) as n from public.csv_uploads where client_id = %s", (tenant.client_id,)
        ).fetchone()["n"]
        == 0
    )
    assert stored_files(import_settings) == before


def test_file_over_the_cap_is_413_and_nothing_is_stored(import_api, tenant, db, import_settings):
    before = stored_files(import_settings)
    line = b"Ann,07911 123451\n"
    # Over the cap but under the declared-length shortcut: refused while streaming.
    body = b"Name,Phone\n" + line * ((UPLOAD_CAP + 1000) // len(line))
    resp = upload(import_api, tenant, body)
    assert resp.status_code == 413, resp.text
    assert resp.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    # Far over: refused from Content-Length before reading.
    resp = upload(import_api, tenant, body * 3)
    assert resp.status_code == 413
    assert stored_files(import_settings) == before
    assert (
        db.execute(
            "select count(*) as n from public.csv_uploads where client_id = %s", (tenant.client_id,)
        ).fetchone()["n"]
        == 0
    )


def test_missing_file_field_is_400(import_api, tenant):
    resp = import_api.post(
        "/api/datasets/upload",
        data={"dataset_id": str(tenant.dataset_id)},
        headers=tenant.headers(),
    )
    assert resp.status_code == 400
    resp = import_api.post("/api/datasets/upload", json={"file": "x"}, headers=tenant.headers())
    assert resp.status_code == 400


def test_read_only_member_cannot_upload(import_api, tenant, db, import_settings):
    before = stored_files(import_settings)
    resp = upload(import_api, tenant, "utf8_bom.csv", user=tenant.read_only)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "FORBIDDEN"
    assert stored_files(import_settings) == before


def test_sales_rep_can_upload(import_api, tenant):
    assert upload(import_api, tenant, "tab_delimited.tsv", user=tenant.sales_rep).status_code == 201


def test_dataset_of_another_tenant_is_404_and_bad_id_400(import_api, tenant, db, import_settings):
    other = make_tenant(db, import_settings, name="Other")
    resp = upload(import_api, tenant, "utf8_bom.csv", dataset_id=other.dataset_id)
    assert resp.status_code == 404
    resp = upload(import_api, tenant, "utf8_bom.csv", dataset_id="not-a-uuid")
    assert resp.status_code == 400
    assert (
        db.execute(
            "select count(*) as n from public.csv_uploads where client_id = %s", (tenant.client_id,)
        ).fetchone()["n"]
        == 0
    )


def test_uploads_are_visible_only_inside_the_tenant(import_api, tenant, db, import_settings):
    resp = upload(import_api, tenant, "utf8_bom.csv")
    upload_id = resp.json()["upload"]["id"]
    other = make_tenant(db, import_settings, name="Other")
    with acting_as(db, other.admin) as conn:
        assert (
            conn.execute(
                "select count(*) as n from public.csv_uploads where id = %s", (upload_id,)
            ).fetchone()["n"]
            == 0
        )
    # Nor can anyone attach a row to another tenant's dataset, or write as read-only.
    insert = """insert into public.csv_uploads (dataset_id, filename, file_url,
                size_bytes, encoding, delimiter, rows_detected, columns)
                values (%s, 'x.csv', 'u', 1, 'utf-8', ',', 0, '[]')"""
    with pytest.raises(psycopg.errors.ForeignKeyViolation), acting_as(db, other.admin) as conn:
        conn.execute(insert, (tenant.dataset_id,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege), acting_as(db, tenant.read_only) as c:
        c.execute(insert, (None,))
    with acting_as(db, tenant.sales_rep) as conn:
        assert (
            conn.execute(
                "select count(*) as n from public.csv_uploads where id = %s", (upload_id,)
            ).fetchone()["n"]
            == 1
        )
