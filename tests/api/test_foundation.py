"""The API skeleton through HTTP: auth, the contract's error body per status, rate limit, health."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from api.deps import UserDb
from api.main import create_app
from dbr.bookings.errors import BookingError, LeadOptedOut
from dbr.datasets.errors import DatasetError, NotCsv
from dbr.errors import DbrError
from dbr.rpc import RpcError
from tests.support import make_client, make_user


def assert_error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


def test_health_reports_database_and_latest_migration(api):
    resp = api.get("/health")
    assert resp.status_code == 200
    body = resp.json()
    assert body["database"] == "reachable"
    assert body["latest_migration"] and body["latest_migration"].isdigit()


def test_openapi_is_served(api):
    assert "/api/me" in api.get("/openapi.json").json()["paths"]


def test_missing_token_is_401(api):
    assert_error(api.get("/api/me"), 401, "UNAUTHORIZED")


def test_token_signed_with_another_secret_is_401(api):
    forged = jwt.encode(
        {
            "sub": str(uuid.uuid4()),
            "role": "authenticated",
            "aud": "authenticated",
            "exp": int(time.time()) + 60,
        },
        "x" * 40,
        algorithm="HS256",
    )
    assert_error(
        api.get("/api/me", headers={"Authorization": f"Bearer {forged}"}), 401, "UNAUTHORIZED"
    )


def test_expired_token_is_401(api, db, token_for):
    user = make_user(db, make_client(db))
    assert_error(api.get("/api/me", headers=token_for(user, ttl_seconds=-10)), 401, "UNAUTHORIZED")


def test_active_member_sees_own_membership(api, db, token_for):
    client = make_client(db, "Acme")
    user = make_user(db, client, "manager")
    resp = api.get("/api/me", headers=token_for(user))
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["client_id"] == str(client)
    assert resp.json()["user"]["role"] == "manager"


def test_suspended_member_is_403(api, db, token_for):
    user = make_user(db, make_client(db), status="suspended")
    assert_error(api.get("/api/me", headers=token_for(user)), 403, "FORBIDDEN")


# Error mapping: routes that fail the ways real routes fail, mounted on a separate app.
class Body(BaseModel):
    name: str = Field(min_length=1)
    count: int = Field(ge=1)


probe = APIRouter(prefix="/probe")


@probe.post("/validate")
async def validate(body: Body) -> dict:
    return {"ok": True}


@probe.post("/dataset")
async def create_dataset(db: UserDb) -> dict:
    cur = await db.execute("insert into public.datasets (name) values ('x') returning id")
    return {"id": str((await cur.fetchone())["id"])}


@probe.get("/missing")
async def missing(db: UserDb) -> dict:
    await db.execute("do $$ begin perform private.raise_error(404, 'dataset not found'); end $$")
    return {}


@probe.get("/no-data")
async def no_data(db: UserDb) -> dict:
    await db.execute(
        "do $$ begin raise exception 'dataset not found' using errcode = 'P0002'; end $$"
    )
    return {}


@probe.get("/bad-value")
async def bad_value(db: UserDb) -> dict:
    await db.execute("select 'not-a-uuid'::uuid")
    return {}


@probe.get("/boom")
async def boom() -> dict:
    raise RuntimeError("secret internals: password=hunter2")


@probe.get("/teapot")
async def teapot() -> dict:
    raise DbrError("already done", status=409, details={"id": 1})


@probe.get("/domain/{kind}")
async def domain_error(kind: str) -> dict:
    # Raised from library code as it is, with no translation in the route.
    if kind == "csv":
        raise NotCsv("This file is a workbook, not CSV.")
    if kind == "opted-out":
        raise LeadOptedOut(uuid.UUID(int=7))
    raise BookingError("Retry later.", status=429, headers={"Retry-After": "9"})


@pytest.fixture(scope="module")
def probe_api(settings):
    app = create_app(settings.model_copy(update={"api_rate_limit_per_minute": 1000}))
    app.include_router(probe)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_invalid_body_is_400_with_field_details(probe_api):
    err = assert_error(
        probe_api.post("/probe/validate", json={"name": "", "count": 0}), 400, "VALIDATION_ERROR"
    )
    assert {d["field"] for d in err["details"]} == {"name", "count"}


def test_rls_refusal_is_403(probe_api, db, token_for):
    viewer = make_user(db, make_client(db), "read_only")
    assert_error(probe_api.post("/probe/dataset", headers=token_for(viewer)), 403, "FORBIDDEN")
    manager = make_user(db, make_client(db), "manager")
    assert probe_api.post("/probe/dataset", headers=token_for(manager)).status_code == 200


def test_not_found_from_sql_is_404(probe_api, db, token_for):
    user = make_user(db, make_client(db))
    err = assert_error(probe_api.get("/probe/missing", headers=token_for(user)), 404, "NOT_FOUND")
    assert err["message"] == "dataset not found"


def test_a_plain_no_data_found_is_a_500_as_through_postgrest(probe_api, db, token_for):
    # PostgREST answers P0002 with 500, so FastAPI does too: refusals use private.raise_error.
    user = make_user(db, make_client(db))
    assert_error(probe_api.get("/probe/no-data", headers=token_for(user)), 500, "INTERNAL_ERROR")


def test_bad_value_from_sql_is_400(probe_api, db, token_for):
    user = make_user(db, make_client(db))
    assert_error(
        probe_api.get("/probe/bad-value", headers=token_for(user)), 400, "VALIDATION_ERROR"
    )


def test_unexpected_error_is_500_without_internals(probe_api):
    resp = probe_api.get("/probe/boom")
    err = assert_error(resp, 500, "INTERNAL_ERROR")
    assert "hunter2" not in resp.text and "RuntimeError" not in resp.text
    assert err["details"] is None


def test_api_error_keeps_status_and_details(probe_api):
    err = assert_error(probe_api.get("/probe/teapot"), 409, "CONFLICT")
    assert err["details"] == {"id": 1}


def test_domain_errors_are_answered_by_the_one_handler(probe_api):
    """Every domain error is a DbrError: raised as is from a route, it is answered with its
    own status, the code of that status and its details."""
    assert all(issubclass(e, DbrError) for e in (DatasetError, BookingError, RpcError))
    err = assert_error(probe_api.get("/probe/domain/csv"), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert err["message"] == "This file is a workbook, not CSV."
    err = assert_error(probe_api.get("/probe/domain/opted-out"), 409, "CONFLICT")
    assert err["details"] == {"lead_id": str(uuid.UUID(int=7)), "reason": "opted_out"}
    resp = probe_api.get("/probe/domain/other")
    assert_error(resp, 429, "RATE_LIMITED")
    assert resp.headers["Retry-After"] == "9"


def test_rate_limit_is_shared_across_api_processes(settings, db, token_for):
    """Two app instances (as two processes would) share one count kept in the database."""
    limited = settings.model_copy(update={"api_rate_limit_per_minute": 5})
    user = make_user(db, make_client(db))
    headers = token_for(user)
    with TestClient(create_app(limited)) as a, TestClient(create_app(limited)) as b:
        # Stay inside one clock minute so the fixed window cannot roll over mid-test.
        if time.time() % 60 > 55:
            time.sleep(60 - time.time() % 60 + 0.1)
        statuses = [
            (a if i % 2 else b).get("/api/me", headers=headers).status_code for i in range(7)
        ]
        assert statuses[:5] == [200] * 5
        assert statuses[5:] == [429, 429]
        resp = a.get("/api/me", headers=headers)
        err = assert_error(resp, 429, "RATE_LIMITED")
        assert 1 <= int(resp.headers["Retry-After"]) <= 60
        assert err["details"]["limit_per_minute"] == 5
        # Another user is not affected.
        other = make_user(db, make_client(db))
        assert a.get("/api/me", headers=token_for(other)).status_code == 200
