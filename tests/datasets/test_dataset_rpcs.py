"""Datasets through the RPCs the frontend calls, as real users (role + JWT claims, as
PostgREST runs them): contract shapes, the campaign state machine, roles and tenants."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support import acting_as, make_client, make_user, refusal

CONTRACT_CODES = {400: "VALIDATION_ERROR", 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT"}


def call(conn: psycopg.Connection[Any], user: uuid.UUID, sql: str, *params: Any) -> Any:
    with acting_as(conn, user) as c:
        return c.execute(sql, params).fetchone()["r"]


def raises(
    conn: psycopg.Connection[Any], user: uuid.UUID, status: int, sql: str, *params: Any
) -> str:
    err = refusal(conn, user, sql, *params)
    assert err.status == status, err
    assert err.code == CONTRACT_CODES[status], err
    return err.message


@pytest.fixture
def tenant(db: psycopg.Connection[Any]) -> dict[str, uuid.UUID]:
    client = make_client(db, "Acme")
    return {
        "client": client,
        "admin": make_user(db, client, "admin"),
        "manager": make_user(db, client, "manager"),
        "rep": make_user(db, client, "sales_rep"),
        "ro": make_user(db, client, "read_only"),
    }


def test_manager_creates_lists_and_reads_a_dataset_in_contract_shapes(db, tenant):
    created = call(
        db,
        tenant["manager"],
        "select public.create_dataset(%s, %s, %s) as r",
        "Winter list",
        "2019 enquiries",
        "2026-12-01T09:00:00+00:00",
    )["dataset"]
    assert set(created) == {"id", "name", "campaign_status", "created_at"}
    assert created["campaign_status"] == "draft"

    listed = call(db, tenant["rep"], "select public.list_datasets() as r")["datasets"]
    assert [d["name"] for d in listed] == ["Winter list"]
    assert listed[0]["total_leads"] == 0

    got = call(db, tenant["ro"], "select public.get_dataset(%s) as r", created["id"])["dataset"]
    assert got["description"] == "2019 enquiries"
    assert got["campaign_start_date"].startswith("2026-12-01T09:00:00")
    assert got["active_leads"] == 0


def test_campaign_goes_through_its_states_and_completed_is_final(db, tenant):
    ds = call(db, tenant["admin"], "select public.create_dataset('Spring') as r")["dataset"]["id"]
    for status in ["active", "paused", "active", "completed"]:
        patch = Jsonb({"campaign_status": status})
        out = call(db, tenant["manager"], "select public.update_dataset(%s, %s) as r", ds, patch)
        assert out["dataset"]["campaign_status"] == status
    message = raises(
        db,
        tenant["admin"],
        400,
        "select public.update_dataset(%s, %s) as r",
        ds,
        Jsonb({"campaign_status": "active"}),
    )
    assert "completed to active" in message


def test_update_rejects_fields_the_contract_does_not_allow(db, tenant):
    ds = call(db, tenant["admin"], "select public.create_dataset('Spring') as r")["dataset"]["id"]
    msg = raises(
        db,
        tenant["admin"],
        400,
        "select public.update_dataset(%s, %s) as r",
        ds,
        Jsonb({"hot_leads": 99, "client_id": str(uuid.uuid4())}),
    )
    assert "client_id, hot_leads" in msg


@pytest.mark.parametrize(("role", "status"), [("rep", 403), ("ro", 403), ("manager", 403)])
def test_only_admins_delete(db, tenant, role, status):
    ds = call(db, tenant["admin"], "select public.create_dataset('Doomed') as r")["dataset"]["id"]
    raises(db, tenant[role], status, "select public.delete_dataset(%s) as r", ds)
    assert db.execute("select count(*) as n from datasets where id = %s", (ds,)).fetchone()["n"]


def test_delete_cascades_to_leads_conversations_and_messages(db, tenant):
    ds = call(db, tenant["admin"], "select public.create_dataset('Doomed') as r")["dataset"]["id"]
    lead = db.execute(
        "insert into leads (client_id, dataset_id, phone_number) values (%s, %s, '+447700900001')"
        " returning id",
        (tenant["client"], ds),
    ).fetchone()["id"]
    conv = db.execute(
        "insert into conversations (client_id, dataset_id, lead_id) values (%s, %s, %s)"
        " returning id",
        (tenant["client"], ds, lead),
    ).fetchone()["id"]
    db.execute(
        "insert into messages (client_id, dataset_id, conversation_id, lead_id, direction,"
        " message_category, status, content)"
        " values (%s, %s, %s, %s, 'outbound', 'm1', 'sent', 'Hi')",
        (tenant["client"], ds, conv, lead),
    )
    assert call(db, tenant["admin"], "select public.delete_dataset(%s) as r", ds)["success"]
    left = db.execute(
        "select (select count(*) from leads where dataset_id = %(d)s)"
        " + (select count(*) from conversations where dataset_id = %(d)s)"
        " + (select count(*) from messages where dataset_id = %(d)s) as n",
        {"d": ds},
    ).fetchone()["n"]
    assert left == 0


def test_other_tenants_and_outsiders_see_nothing(db, tenant):
    ds = call(db, tenant["admin"], "select public.create_dataset('Mine') as r")["dataset"]["id"]
    other = make_client(db, "Rival")
    rival = make_user(db, other, "admin")
    assert call(db, rival, "select public.list_datasets() as r") == {"datasets": []}
    raises(db, rival, 404, "select public.get_dataset(%s) as r", ds)
    patch = Jsonb({"name": "pwned"})
    raises(db, rival, 404, "select public.update_dataset(%s, %s) as r", ds, patch)
    raises(db, rival, 404, "select public.delete_dataset(%s) as r", ds)
    invited = make_user(db, tenant["client"], "admin", status="invited")
    raises(db, invited, 403, "select public.list_datasets() as r")
    stranger = make_user(db, None)
    raises(db, stranger, 403, "select public.create_dataset('x') as r")


def test_anonymous_cannot_call_the_rpcs(db):
    with db.transaction():
        db.execute("set local role anon")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("select public.list_datasets()")
