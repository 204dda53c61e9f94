"""`dbr rpc NAME --as EMAIL [JSON]` from a shell: the JSON result on stdout, `--get` for one
field, PostgREST's status and body on stderr with exit 1 on an error, stdin with `-`, and
the `db_pre_request` hook run first when the authenticator role names one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dbr.settings import get_settings
from tests.support import make_client, make_user

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def shell_rpc(db_url: str, *args: str, stdin: str | None = None) -> Run:
    """The installed `dbr` command in a subprocess, as a shell script runs it."""
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dbr"), "rpc", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "SUPABASE_DB_URL": db_url},
        timeout=120,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def dbr_rpc(monkeypatch):
    """The same command in-process (the CLI's start-up imports take seconds)."""
    from cli import app

    def run(db_url: str, *args: str, stdin: str | None = None) -> Run:
        monkeypatch.setenv("SUPABASE_DB_URL", db_url)
        get_settings.cache_clear()
        try:
            res = CliRunner().invoke(app, ["rpc", *args], input=stdin)
        finally:
            get_settings.cache_clear()
        return Run(res.exit_code, res.stdout, res.stderr)

    return run


@pytest.fixture
def team(db) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    a, b = make_client(db, "Cli A"), make_client(db, "Cli B")
    admin = f"admin-{tag}@a.test"
    make_user(db, a, "admin", email=admin)
    rival = f"rival-{tag}@b.test"
    make_user(db, b, "admin", email=rival)
    return {"admin": admin, "rival": rival}


def test_create_then_get_a_dataset_from_the_shell(db_url, team, dbr_rpc):
    # DS=$(bin/dbr rpc create_dataset --as admin@... '{"name": "Newer"}' --get dataset.id)
    ds = shell_rpc(
        db_url, "create_dataset", "--as", team["admin"], '{"name": "Newer"}', "--get", "dataset.id"
    )
    assert ds.returncode == 0, ds.stderr
    ds_id = ds.stdout.strip()
    assert str(uuid.UUID(ds_id)) == ds_id  # raw, no quotes
    got = dbr_rpc(
        db_url,
        "get_dataset",
        "--as",
        team["admin"],
        "-",
        "--get",
        "dataset.name",
        stdin=json.dumps({"id": ds_id}),
    )
    assert (got.returncode, got.stdout.strip()) == (0, "Newer"), got.stderr
    whole = dbr_rpc(db_url, "get_dataset", "--as", team["admin"], json.dumps({"id": ds_id}))
    assert whole.returncode == 0, whole.stderr
    assert json.loads(whole.stdout)["dataset"]["campaign_status"] == "draft"


def _failure(proc: Run) -> tuple[int, dict[str, Any]]:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    status_line = next(line for line in lines if line.startswith("HTTP "))
    body = json.loads(lines[lines.index(status_line) + 1])
    assert set(body) == {"code", "message", "details", "hint"}
    return int(status_line.split()[1]), body


def test_refusal_prints_status_and_postgrest_body(db_url, team, dbr_rpc):
    status, body = _failure(
        dbr_rpc(db_url, "create_dataset", "--as", team["admin"], '{"name": " "}')
    )
    assert (status, body["code"], body["message"]) == (400, "VALIDATION_ERROR", "name is required")


def test_unknown_argument_is_404_pgrst202(db_url, team, dbr_rpc):
    status, body = _failure(
        dbr_rpc(db_url, "create_dataset", "--as", team["admin"], '{"p_name": "x"}')
    )
    assert (status, body["code"]) == (404, "PGRST202")


def test_another_tenants_dataset_is_404(db_url, team, dbr_rpc):
    ds = dbr_rpc(
        db_url, "create_dataset", "--as", team["rival"], '{"name": "Theirs"}', "--get", "dataset.id"
    ).stdout.strip()
    status, body = _failure(
        dbr_rpc(db_url, "get_dataset", "--as", team["admin"], json.dumps({"id": ds}))
    )
    assert (status, body["code"]) == (404, "NOT_FOUND")
    status, body = _failure(
        dbr_rpc(db_url, "delete_dataset", "--as", team["admin"], json.dumps({"id": ds}))
    )
    assert (status, body["code"]) == (404, "NOT_FOUND")


def test_pre_request_hook_runs_before_the_call(db, db_url, team, dbr_rpc):
    # PostgREST runs authenticator's pgrst.db_pre_request function first, as the caller.
    db.execute(
        "create function public.tests_refuse_all() returns void language plpgsql as $$"
        " begin perform private.raise_error(429, 'hook says no'); end $$"
    )
    db.execute("grant execute on function public.tests_refuse_all() to authenticated")
    dbname = db.execute("select current_database() as d").fetchone()["d"]
    db.execute(
        f'alter role authenticator in database "{dbname}"'
        " set pgrst.db_pre_request = 'public.tests_refuse_all'"
    )
    try:
        status, body = _failure(dbr_rpc(db_url, "list_datasets", "--as", team["admin"], "{}"))
        assert (status, body["code"], body["message"]) == (429, "RATE_LIMITED", "hook says no")
    finally:
        db.execute(f'alter role authenticator in database "{dbname}" reset pgrst.db_pre_request')
        db.execute("drop function public.tests_refuse_all()")
    ok = dbr_rpc(db_url, "list_datasets", "--as", team["admin"], "{}")
    assert ok.returncode == 0, ok.stderr
