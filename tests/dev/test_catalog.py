"""The catalog snapshot behind `dbr catalog-diff`: equal schemas compare equal, and a changed
policy, function, grant, comment or reference row is reported by name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dbr.dev import catalog


def _snap(tx: psycopg.Connection[Any]) -> catalog.Snapshot:
    return catalog.snapshot(tx)


@pytest.fixture
def tx(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection whose changes are rolled back: the session database stays as migrated."""
    with psycopg.connect(db_url) as conn:
        yield conn
        conn.rollback()


def test_a_database_compared_with_itself_has_no_differences(tx: psycopg.Connection[Any]) -> None:
    before = _snap(tx)
    assert before["policies"] and before["functions"] and before["rows"]
    assert catalog.diff(before, _snap(tx)) == []


def test_a_changed_policy_is_reported_with_its_new_condition(
    tx: psycopg.Connection[Any],
) -> None:
    before = _snap(tx)
    tx.execute('alter policy "members can read their own client" on public.clients using (false)')
    lines = catalog.diff(before, _snap(tx))
    assert "~ policies: public.clients.members can read their own client" in lines
    assert any(line.strip().startswith("+") and "false" in line for line in lines)


def test_dropped_created_and_regranted_objects_are_each_reported(
    tx: psycopg.Connection[Any],
) -> None:
    before = _snap(tx)
    tx.execute("drop function private.schedule_cron(text, text, text)")
    tx.execute("create function private.catalog_probe() returns int language sql return 1")
    tx.execute("grant select on public.clients to anon")
    tx.execute("comment on table public.clients is 'changed'")
    tx.execute(
        "delete from private.opt_out_phrases"
        " where id = (select min(id) from private.opt_out_phrases)"
    )
    lines = catalog.diff(before, _snap(tx))
    assert "- functions: private.schedule_cron(job_name text, schedule text, command text)" in lines
    assert "+ functions: private.catalog_probe()" in lines
    assert "~ relations: public.clients" in lines
    assert "~ comments: table public.clients" in lines
    assert "~ rows: private.opt_out_phrases" in lines


def test_cron_jobs_are_read_from_the_schedule_calls_of_the_migrations(tmp_path: Path) -> None:
    (tmp_path / "1_a.sql").write_text(
        "select private.schedule_cron('tick', '* * * * *', 'select private.tick(''x'')');\n"
    )
    (tmp_path / "2_b.sql").write_text(
        "select private.schedule_cron('tick', '*/5 * * * *', 'select private.tick()');\n"
    )
    assert catalog.scheduled_cron_jobs(tmp_path) == {
        "tick": {"schedule": "*/5 * * * *", "command": "select private.tick()"}
    }
