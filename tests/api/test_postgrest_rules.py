"""dbr.postgrest against PostgREST's documented error table (docs.postgrest.org,
references/errors, "HTTP Status Codes") and its custom-error (SQLSTATE PGRST) rules."""

from __future__ import annotations

import json

import psycopg
import pytest

from dbr.postgrest import contract_code, contract_error, status_for, translate

# PostgREST's table, one SQLSTATE per documented row (classes given by a member).
DOCUMENTED = [
    ("08006", 503),  # 08*  pg connection err
    ("09000", 500),  # 09*  triggered action exception
    ("0L000", 403),  # 0L*  invalid grantor
    ("0P000", 403),  # 0P*  invalid role specification
    ("23503", 409),  # foreign key violation
    ("23505", 409),  # uniqueness violation
    ("25006", 405),  # read only sql transaction
    ("25001", 500),  # 25*  invalid transaction state
    ("28000", 403),  # 28*  invalid auth specification
    ("2D000", 500),  # 2D*  invalid transaction termination
    ("38000", 500),  # 38*  external routine exception
    ("39000", 500),  # 39*  external routine invocation
    ("3B000", 500),  # 3B*  savepoint exception
    ("40001", 500),  # 40*  transaction rollback
    ("53400", 500),  # config limit exceeded
    ("53100", 503),  # 53*  insufficient resources
    ("54001", 500),  # 54*  too complex
    ("55P03", 500),  # 55*  obj not in prerequisite state
    ("57014", 500),  # 57*  operator intervention
    ("58030", 500),  # 58*  system error
    ("F0000", 500),  # F0*  config file error
    ("HV000", 500),  # HV*  foreign data wrapper error
    ("P0001", 400),  # default code for "raise"
    ("P0002", 500),  # P0*  PL/pgSQL error: no_data_found is a 500 through PostgREST
    ("XX000", 500),  # XX*  internal error
    ("42883", 404),  # undefined function
    ("42P01", 404),  # undefined table
    ("42P17", 500),  # infinite recursion
    ("22023", 400),  # other: 400
    ("22P02", 400),
    ("23514", 400),
    ("42703", 400),
    ("PT402", 402),  # PTnnn: status nnn
]


@pytest.mark.parametrize(("sqlstate", "status"), DOCUMENTED)
def test_documented_status_table(sqlstate, status):
    assert status_for(sqlstate, authed=True) == status


def test_insufficient_privilege_is_401_for_anonymous_403_otherwise():
    assert status_for("42501", authed=True) == 403
    assert status_for("42501", authed=False) == 401


def _error(db, sql: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as err:
        db.execute(sql)
    return err.value


def test_custom_error_takes_status_headers_and_body_from_the_raise(db):
    exc = _error(
        db,
        "select private.raise_error(429, 'slow down', '{\"retry_after_seconds\": 30}',"
        ' null, \'{"Retry-After": "30"}\')',
    )
    err = translate(exc)
    assert err.status == 429
    assert err.headers == {"Retry-After": "30"}
    assert err.body == {
        "code": "RATE_LIMITED",
        "message": "slow down",
        "details": {"retry_after_seconds": 30},
        "hint": None,
    }
    assert contract_error(err) == {
        "error": {
            "code": "RATE_LIMITED",
            "message": "slow down",
            "details": {"retry_after_seconds": 30},
        }
    }


def test_custom_error_with_bad_json_is_pgrst121_500(db):
    err = translate(_error(db, "do $$ begin raise sqlstate 'PGRST' using message = 'oops'; end $$"))
    assert (err.status, err.code) == (500, "PGRST121")


def test_plain_errors_keep_postgres_fields_in_postgrest_body(db):
    exc = _error(
        db,
        "do $$ begin raise exception 'nope' using errcode = '22023', detail = 'd', hint = 'h';"
        " end $$",
    )
    err = translate(exc)
    assert err.status == 400
    assert err.body == {"code": "22023", "message": "nope", "details": "d", "hint": "h"}
    assert contract_code(err) == "VALIDATION_ERROR"
    assert contract_error(err)["error"]["details"] == {"details": "d", "hint": "h"}


def test_plain_no_data_found_is_500_and_unique_violation_409(db):
    nodata = translate(
        _error(db, "do $$ begin raise exception 'x' using errcode = 'P0002'; end $$")
    )
    assert (nodata.status, contract_code(nodata)) == (500, "INTERNAL_ERROR")
    dup = translate(_error(db, "do $$ begin raise unique_violation; end $$"))
    assert (dup.status, contract_code(dup)) == (409, "CONFLICT")


def test_pgrst_detail_is_json_with_status_and_headers(db):
    exc = _error(db, "select private.raise_error(404, 'dataset x not found')")
    assert exc.sqlstate == "PGRST"
    assert json.loads(exc.diag.message_detail) == {"status": 404, "headers": {}}
    assert json.loads(exc.diag.message_primary)["code"] == "NOT_FOUND"
