"""Rate limits on every door: FastAPI and PostgREST share one per-user count.

PostgREST is not part of the local stack, so a "PostgREST request" here is what PostgREST does
in the database for one: a transaction that switches to the request's role, sets the request
GUCs and calls the function named by `pgrst.db_pre_request` on role `authenticator`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from psycopg.rows import dict_row

from api.main import create_app
from dbr.settings import Settings
from tests.support import make_client, make_user

PER_MINUTE = 100


def pre_request_function(conn: psycopg.Connection[Any]) -> sql.Composable:
    row = conn.execute(
        "select split_part(c, '=', 2) as fn from pg_db_role_setting s, unnest(s.setconfig) c"
        " where s.setrole = 'authenticator'::regrole and c like 'pgrst.db_pre_request=%'"
    ).fetchone()
    assert row, "no pgrst.db_pre_request on role authenticator"
    return sql.Identifier(*row["fn"].split("."))


def postgrest_request(
    conn: psycopg.Connection[Any],
    user_id: uuid.UUID,
    *,
    method: str = "POST",
    path: str = "/rpc/list_datasets",
) -> None:
    """Run the pre-request step of one PostgREST request as `user_id`; raises what it raises."""
    fn = pre_request_function(conn)
    claims = {"sub": str(user_id), "role": "authenticated", "aud": "authenticated"}
    with conn.transaction():
        conn.execute(
            "select set_config('role', 'authenticated', true),"
            " set_config('request.jwt.claims', %s, true),"
            " set_config('request.headers', %s, true),"
            " set_config('request.method', %s, true), set_config('request.path', %s, true)",
            (json.dumps(claims), json.dumps({"x-forwarded-for": "192.0.2.1"}), method, path),
        )
        conn.execute(sql.SQL("select {}()").format(fn))


def postgrest_response(exc: psycopg.Error) -> tuple[int, dict[str, str], dict[str, Any]]:
    """PostgREST's rule for SQLSTATE PGRST: status and headers from DETAIL, body from MESSAGE."""
    assert exc.sqlstate == "PGRST", exc
    detail = json.loads(exc.diag.message_detail or "{}")
    body = json.loads(exc.diag.message_primary or "{}")
    return detail["status"], detail.get("headers", {}), body


@pytest.fixture
def fresh_minute() -> None:
    """Keep a test inside one clock minute so the fixed window cannot roll over mid-test."""
    if time.time() % 60 > 52:
        time.sleep(60 - time.time() % 60 + 0.1)


@pytest.fixture
def api_100(settings: Settings) -> Iterator[TestClient]:
    with TestClient(
        create_app(settings.model_copy(update={"api_rate_limit_per_minute": PER_MINUTE}))
    ) as client:
        yield client


def test_fastapi_and_postgrest_share_one_count_per_user(db, api_100, token_for, fresh_minute):
    client = make_client(db)
    user, other = make_user(db, client), make_user(db, client)
    headers = token_for(user)

    assert [api_100.get("/api/me", headers=headers).status_code for _ in range(60)] == [200] * 60
    for _ in range(40):
        postgrest_request(db, user)

    with pytest.raises(psycopg.Error) as refused:
        postgrest_request(db, user)
    status, resp_headers, body = postgrest_response(refused.value)
    assert status == 429
    assert 1 <= int(resp_headers["Retry-After"]) <= 60
    assert body["code"] == "RATE_LIMITED"
    assert body["details"]["limit_per_minute"] == PER_MINUTE
    assert body["details"]["retry_after_seconds"] == int(resp_headers["Retry-After"])

    resp = api_100.get("/api/me", headers=headers)
    assert resp.status_code == 429
    assert resp.json()["error"]["code"] == "RATE_LIMITED"
    assert body["message"] == resp.json()["error"]["message"], "both doors say the same"

    # Another user is unaffected on either door.
    postgrest_request(db, other)
    assert api_100.get("/api/me", headers=token_for(other)).status_code == 200


def test_a_postgrest_write_in_flight_does_not_hold_up_the_users_other_requests(
    db, db_url, fresh_minute
):
    """PostgREST counts inside the request's transaction, which stays open as long as the request
    runs. The count must not lock the user's other requests (either door) until it commits."""
    user = make_user(db, make_client(db))
    with psycopg.connect(db_url, row_factory=dict_row) as slow:
        fn = pre_request_function(slow)
        claims = json.dumps({"sub": str(user), "role": "authenticated"})
        slow.execute(
            "select set_config('role', 'authenticated', true),"
            " set_config('request.jwt.claims', %s, true)",
            (claims,),
        )
        slow.execute(sql.SQL("select {}()").format(fn))  # counted, transaction still open

        outcome: dict[str, Any] = {}

        def other_requests() -> None:
            try:
                with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
                    # A lock wait would fail here instead of hanging the test.
                    conn.execute("set lock_timeout = '5s'")
                    postgrest_request(conn, user)
                    with conn.transaction():
                        outcome["fastapi"] = conn.execute(
                            "select * from private.hit_api_rate_limit(%s, %s)",
                            (f"user:{user}", PER_MINUTE),
                        ).fetchone()
            except psycopg.Error as exc:  # pragma: no cover - the failure being tested for
                outcome["error"] = exc

        worker = threading.Thread(target=other_requests)
        worker.start()
        worker.join(30)
        assert "error" not in outcome, outcome.get("error")
        # 1 (in flight, not yet committed, so not yet visible) + 1 + this one.
        assert outcome["fastapi"]["allowed"] and outcome["fastapi"]["hits"] == 2
        slow.commit()

    row = db.execute(
        "select sum(hits)::int as hits from private.api_rate_limits where subject = %s",
        (f"user:{user}",),
    ).fetchone()
    assert row["hits"] == 3, "every request was counted once it committed"
