"""Throw-away databases for tests: a template built once per migration set, copied per run.

The template's name carries a hash of the bootstrap and every migration, so a changed
migration builds a new template while unchanged runs reuse the old one. Copies are cheap
(`create database ... template`), so concurrent test runs never share state.
"""

from __future__ import annotations

import hashlib
import uuid

import psycopg

from dbr.dev import stack
from dbr.settings import ROOT, Settings

TEMPLATE_PREFIX = "dbr_tmpl_"


def _schema_hash() -> str:
    h = hashlib.sha256()
    files = [stack.BOOTSTRAP_SQL, *sorted((ROOT / "supabase" / "migrations").glob("*.sql"))]
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def ensure_template(settings: Settings) -> str:
    admin_url = stack.database_url(settings)
    name = TEMPLATE_PREFIX + _schema_hash()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        # One builder at a time across concurrent test runs.
        conn.execute("select pg_advisory_lock(4242)")
        try:
            exists = conn.execute(
                "select 1 from pg_database where datname = %s and datistemplate", (name,)
            ).fetchone()
            if not exists:
                stack.create_database(admin_url, name)
                url = stack.database_url(settings, name)
                stack.bootstrap(url)
                stack.migrate(settings, url)
                conn.execute(f'alter database "{name}" is_template true')
                # Old templates of earlier migration sets are no longer needed.
                for (old,) in conn.execute(
                    "select datname from pg_database where datname like %s and datname <> %s",
                    (TEMPLATE_PREFIX + "%", name),
                ).fetchall():
                    conn.execute(f'alter database "{old}" is_template false')
                    conn.execute(f'drop database if exists "{old}" with (force)')
        finally:
            conn.execute("select pg_advisory_unlock(4242)")
    return name


def create_test_database(settings: Settings, label: str = "t") -> tuple[str, str]:
    """A fresh database with every migration applied; returns (name, url)."""
    template = ensure_template(settings)
    name = f"dbr_{label}_{uuid.uuid4().hex[:10]}"
    stack.create_database(stack.database_url(settings), name, template=template)
    return name, stack.database_url(settings, name)
