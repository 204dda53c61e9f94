"""Where an upload's file lives is decided by the server, never by the user: the object key
is `<client_id>/<upload id>.csv`, and the importer opens no file outside the caller's
client prefix (files outlive their rows, e.g. after a client is deleted)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.imports.support import import_upload, make_tenant, suggested, upload
from tests.support import acting_as

_INSERT = """insert into public.csv_uploads ({cols}filename, file_url, size_bytes, encoding,
             delimiter, rows_detected, columns)
             values ({vals}'x.csv', 'u', 1, 'utf-8', ',', 0, '[]') returning id"""


def _uploaded(api, tenant) -> tuple[str, dict[str, str]]:
    resp = upload(api, tenant, "utf8_bom.csv")
    assert resp.status_code == 201, resp.text
    return resp.json()["upload"]["id"], suggested(resp.json())


def test_a_user_cannot_choose_the_storage_path(import_api, tenant, db, import_settings):
    victim_upload, _ = _uploaded(import_api, tenant)
    victim_key = f"{tenant.client_id}/{victim_upload}.csv"
    db.execute("delete from public.csv_uploads where id = %s", (victim_upload,))  # file stays
    other = make_tenant(db, import_settings, name="Attacker")
    sql = _INSERT.format(cols="storage_path, ", vals="%s, ")
    with pytest.raises(psycopg.errors.InsufficientPrivilege), acting_as(db, other.admin) as conn:
        conn.execute(sql, (victim_key,))
    # Without it, the server sets the key from the caller's client and the upload id.
    with acting_as(db, other.admin) as conn:
        new_id = conn.execute(_INSERT.format(cols="", vals="")).fetchone()["id"]
    row = db.execute(
        "select storage_path from public.csv_uploads where id = %s", (new_id,)
    ).fetchone()
    assert row["storage_path"] == f"{other.client_id}/{new_id}.csv"


def test_the_upload_route_stores_the_file_under_the_server_key(import_api, tenant, db):
    upload_id, _ = _uploaded(import_api, tenant)
    row = db.execute(
        "select storage_path from public.csv_uploads where id = %s", (upload_id,)
    ).fetchone()
    assert row["storage_path"] == f"{tenant.client_id}/{upload_id}.csv"


def test_the_importer_refuses_a_file_outside_the_callers_prefix(
    import_api, tenant, db, import_settings
):
    victim_upload, _ = _uploaded(import_api, tenant)
    victim_key = f"{tenant.client_id}/{victim_upload}.csv"
    other = make_tenant(db, import_settings, name="Attacker")
    own_upload, mapping = _uploaded(import_api, other)
    db.execute("delete from public.csv_uploads where id = %s", (victim_upload,))  # file stays
    # A row pointing at another client's object (written by an older version, a script with
    # the service key, ...): the importer must not open it.
    db.execute(
        "update public.csv_uploads set storage_path = %s where id = %s", (victim_key, own_upload)
    )
    resp = import_upload(import_api, other, own_upload, mapping)
    assert resp.status_code == 403, resp.text
    assert resp.json()["error"]["code"] == "FORBIDDEN"
    assert "client" in resp.json()["error"]["message"]
    n = db.execute(
        "select count(*) as n from public.leads where client_id = %s", (other.client_id,)
    ).fetchone()["n"]
    assert n == 0
    assert (
        db.execute(
            "select count(*) as n from public.lead_imports where dataset_id = %s",
            (other.dataset_id,),
        ).fetchone()["n"]
        == 0
    )


def test_a_path_escaping_the_prefix_is_refused(import_api, tenant, db):
    own_upload, mapping = _uploaded(import_api, tenant)
    bad = f"{tenant.client_id}/../{uuid.uuid4()}/{own_upload}.csv"
    db.execute("update public.csv_uploads set storage_path = %s where id = %s", (bad, own_upload))
    resp = import_upload(import_api, tenant, own_upload, mapping)
    assert resp.status_code == 403, resp.text
