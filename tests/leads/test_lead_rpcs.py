"""Lead management through the RPCs, as real users: list/search/paginate, get with the
conversation summary, update, archive and manual-mode toggles; roles and tenants."""

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


def raises(conn: psycopg.Connection[Any], user: uuid.UUID, status: int, sql: str, *params: Any):
    err = refusal(conn, user, sql, *params)
    assert err.status == status, err
    assert err.code == CONTRACT_CODES[status], err
    return err.message


@pytest.fixture
def shop(db) -> dict[str, Any]:
    client = make_client(db, "Shop")
    ds = db.execute(
        "insert into datasets (client_id, name) values (%s, 'List') returning id", (client,)
    ).fetchone()["id"]
    db.execute(
        "insert into leads (client_id, dataset_id, phone_number, first_name, last_name, email,"
        " created_at)"
        " select %s, %s, '+4477009' || lpad(g::text, 5, '0'), 'Lead' || g, 'Surname' || g,"
        " 'lead' || g || '@example.com', now() - g * interval '1 minute'"
        " from generate_series(1, 130) g",
        (client, ds),
    )
    return {
        "client": client,
        "dataset": ds,
        "rep": make_user(db, client, "sales_rep"),
        "ro": make_user(db, client, "read_only"),
        "lead": db.execute(
            "select id from leads where dataset_id = %s and phone_number = '+447700900007'", (ds,)
        ).fetchone()["id"],
    }


def test_a_rep_pages_through_a_dataset(db, shop):
    seen: list[str] = []
    for page in (1, 2, 3):
        out = call(
            db,
            shop["rep"],
            'select public.list_leads(dataset_id => %s, page => %s, "limit" => 50) as r',
            shop["dataset"],
            page,
        )
        assert out["pagination"] == {"page": page, "limit": 50, "total": 130, "pages": 3}
        seen += [lead["id"] for lead in out["leads"]]
    assert len(seen) == len(set(seen)) == 130


@pytest.mark.parametrize("typed", ["07700 900007", "+44 7700 900007", "7700900007", "900007"])
def test_a_phone_typed_any_way_finds_the_lead(db, shop, typed):
    out = call(db, shop["rep"], "select public.list_leads(search => %s) as r", typed)
    assert [lead["phone_number"] for lead in out["leads"]] == ["+447700900007"]


def test_search_by_name_and_email_combines_with_filters(db, shop):
    out = call(
        db,
        shop["rep"],
        "select public.list_leads(search => 'surname12', sort => 'name', \"order\" => 'asc') as r",
    )
    assert [lead["last_name"] for lead in out["leads"]] == [
        f"Surname12{d}" for d in ["", *"0123456789"]
    ]
    call(db, shop["rep"], "select public.toggle_lead_archive(%s) as r", shop["lead"])
    out = call(
        db,
        shop["rep"],
        "select public.list_leads(search => 'LEAD7@EXAMPLE.COM', archived => true) as r",
    )
    assert [lead["id"] for lead in out["leads"]] == [str(shop["lead"])]
    out = call(
        db,
        shop["rep"],
        "select public.list_leads(search => 'lead7@example.com', archived => false) as r",
    )
    assert out["leads"] == [] and out["pagination"]["total"] == 0


def test_get_update_and_toggles(db, shop):
    lead = shop["lead"]
    colleague = make_user(db, shop["client"], "manager")
    updated = call(
        db,
        shop["rep"],
        "select public.update_lead(%s, %s) as r",
        lead,
        Jsonb(
            {"contact_status": "HOT", "lead_sentiment": "POSITIVE", "assigned_to": str(colleague)}
        ),
    )["lead"]
    assert (updated["contact_status"], updated["assigned_to"]) == ("HOT", str(colleague))
    hot = db.execute("select hot_leads from datasets where id = %s", (shop["dataset"],)).fetchone()
    assert hot["hot_leads"] == 1

    on = call(db, shop["rep"], "select public.set_lead_manual_mode(%s, true) as r", lead)
    assert on["manual_mode"] is True and on["manual_mode_activated_at"]
    archived = call(db, shop["rep"], "select public.toggle_lead_archive(%s) as r", lead)
    assert archived["archived"] is True and archived["archived_at"]
    hot = db.execute("select hot_leads from datasets where id = %s", (shop["dataset"],)).fetchone()
    assert hot["hot_leads"] == 0, "an archived lead is not counted as hot"

    got = call(db, shop["ro"], "select public.get_lead(%s) as r", lead)["lead"]
    assert got["manual_mode"] and got["archived"] and got["conversation"] is None
    assert got["sophie_insights"] == []


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"contact_status": "SIZZLING"}, "contact_status must be one of"),
        ({"lead_sentiment": 3}, "lead_sentiment must be one of"),
        ({"phone_number": "+447700900999"}, "phone_number"),
        ({"manual_mode": None}, "manual_mode must be true or false"),
        ({"assigned_to": "not-a-uuid"}, "assigned_to is not a valid uuid"),
        ({"email": "nope"}, "email is not a valid address"),
    ],
)
def test_update_refuses_bad_input(db, shop, patch, fragment):
    assert fragment in raises(
        db,
        shop["rep"],
        400,
        "select public.update_lead(%s, %s) as r",
        shop["lead"],
        Jsonb(patch),
    )


def test_roles_and_tenants(db, shop):
    lead = shop["lead"]
    raises(db, shop["ro"], 403, "select public.toggle_lead_archive(%s) as r", lead)
    raises(db, shop["ro"], 403, "select public.set_lead_manual_mode(%s, true) as r", lead)
    raises(
        db,
        shop["ro"],
        403,
        "select public.update_lead(%s, %s) as r",
        lead,
        Jsonb({"notes": "x"}),
    )
    rival = make_user(db, make_client(db, "Rival"), "admin")
    raises(db, rival, 404, "select public.get_lead(%s) as r", lead)
    raises(db, rival, 404, "select public.toggle_lead_archive(%s) as r", lead)
    assert call(db, rival, "select public.list_leads(search => '900007') as r")["leads"] == []
    # Assigning to someone from another client is refused, whatever the path.
    msg = raises(
        db,
        shop["rep"],
        400,
        "select public.update_lead(%s, %s) as r",
        lead,
        Jsonb({"assigned_to": str(rival)}),
    )
    assert "active member" in msg
    err = refusal(db, shop["rep"], "update leads set assigned_to = %s where id = %s", rival, lead)
    assert (err.status, err.code) == (400, "VALIDATION_ERROR")


def test_list_validates_paging_and_sorting(db, shop):
    for args, fragment in [
        ('"limit" => 101', "limit must be between 1 and 100"),
        ("page => 0", "page must be 1 or more"),
        ("sort => 'phone'", "sort must be one of"),
        ("\"order\" => 'random'", "order must be asc or desc"),
    ]:
        assert fragment in raises(db, shop["rep"], 400, f"select public.list_leads({args}) as r")
