"""The catalog of a database as plain data, and the differences between two of them.

`snapshot(conn)` reads what the migrations own: schemas, tables and their columns,
constraints, indexes, triggers, policies, grants (tables, columns, functions, sequences,
schemas), default privileges, function definitions, views, types, comments, publications,
extensions, pg_cron jobs, storage buckets and the rows of every table that is not empty
after migrating (reference data such as default prompts and opt-out phrases). Every
section maps a stable key (an object's name) to a JSON-able value, so two snapshots compare
key by key. Values that differ by construction between two builds (OIDs, `now()`,
`gen_random_uuid()` defaults in rows) are left out.

`diff(old, new)` lists every difference as readable lines; `build_database` makes a
throw-away database from a directory of migrations the way the test databases are built
(bootstrap, then `supabase migration up`).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from dbr.dev import stack
from dbr.settings import Settings

# Schemas whose contents are compared; the migration bookkeeping is not part of the schema.
SKIP_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast", "supabase_migrations")
_USER = "n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast', 'supabase_migrations')"
_USER += " and n.nspname not like 'pg_temp%' and n.nspname not like 'pg_toast_temp%'"
# Objects an extension creates belong to the extension, not to the migrations.
_NOT_EXT = (
    "not exists (select from pg_depend d where d.classid = {cls}::regclass and d.objid = {oid}"
    " and d.deptype = 'e')"
)

Snapshot = dict[str, dict[str, Any]]

QUERIES: dict[str, str] = {
    "schemas": f"""
        select n.nspname, json_build_object(
          'owner', pg_get_userbyid(n.nspowner), 'acl', n.nspacl::text[])
        from pg_namespace n where {_USER}""",
    "extensions": """
        select e.extname, json_build_object('version', e.extversion, 'schema', n.nspname)
        from pg_extension e join pg_namespace n on n.oid = e.extnamespace""",
    "relations": f"""
        select n.nspname || '.' || c.relname, json_build_object(
          'kind', c.relkind::text, 'persistence', c.relpersistence::text,
          'owner', pg_get_userbyid(c.relowner),
          'rls', c.relrowsecurity, 'force_rls', c.relforcerowsecurity,
          'acl', (select array_agg(a order by a) from unnest(c.relacl::text[]) a),
          'options', c.reloptions, 'replica_identity', c.relreplident::text)
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where {_USER} and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
          and {_NOT_EXT.format(cls="'pg_class'", oid="c.oid")}""",
    "columns": f"""
        select n.nspname || '.' || c.relname || '.' || a.attname, json_build_object(
          'position', a.attnum, 'type', format_type(a.atttypid, a.atttypmod),
          'default', pg_get_expr(d.adbin, d.adrelid), 'not_null', a.attnotnull,
          'identity', a.attidentity::text, 'generated', a.attgenerated::text,
          'collation', nullif(a.attcollation, 0)::regcollation::text,
          'acl', (select array_agg(x order by x) from unnest(a.attacl::text[]) x))
        from pg_attribute a
        join pg_class c on c.oid = a.attrelid
        join pg_namespace n on n.oid = c.relnamespace
        left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
        where {_USER} and c.relkind in ('r', 'p', 'v', 'm', 'f', 'c') and a.attnum > 0
          and not a.attisdropped
          and {_NOT_EXT.format(cls="'pg_class'", oid="c.oid")}""",
    "constraints": f"""
        select n.nspname || '.' || coalesce(c.relname, t.typname) || '.' || k.conname,
          json_build_object('def', pg_get_constraintdef(k.oid), 'deferrable', k.condeferrable,
                            'deferred', k.condeferred, 'validated', k.convalidated)
        from pg_constraint k
        join pg_namespace n on n.oid = k.connamespace
        left join pg_class c on c.oid = k.conrelid
        left join pg_type t on t.oid = k.contypid
        where {_USER} and {_NOT_EXT.format(cls="'pg_class'", oid="coalesce(c.oid, 0)")}""",
    "indexes": f"""
        select n.nspname || '.' || c.relname, to_json(pg_get_indexdef(c.oid))
        from pg_index i join pg_class c on c.oid = i.indexrelid
        join pg_namespace n on n.oid = c.relnamespace
        where {_USER} and {_NOT_EXT.format(cls="'pg_class'", oid="i.indrelid")}""",
    "triggers": f"""
        select n.nspname || '.' || c.relname || '.' || g.tgname, json_build_object(
          'def', pg_get_triggerdef(g.oid), 'enabled', g.tgenabled::text)
        from pg_trigger g join pg_class c on c.oid = g.tgrelid
        join pg_namespace n on n.oid = c.relnamespace
        where {_USER} and not g.tgisinternal""",
    "policies": """
        select schemaname || '.' || tablename || '.' || policyname, json_build_object(
          'permissive', permissive, 'roles', roles::text[], 'cmd', cmd, 'qual', qual,
          'with_check', with_check)
        from pg_policies""",
    "functions": f"""
        select n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid)
          || ')', json_build_object(
          'def', case when p.prokind in ('f', 'p') then pg_get_functiondef(p.oid) end,
          'kind', p.prokind::text, 'owner', pg_get_userbyid(p.proowner), 'security_definer',
          p.prosecdef, 'volatility', p.provolatile::text, 'config', p.proconfig,
          'acl', (select array_agg(a order by a) from unnest(p.proacl::text[]) a))
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where {_USER} and {_NOT_EXT.format(cls="'pg_proc'", oid="p.oid")}""",
    "views": f"""
        select n.nspname || '.' || c.relname, to_json(pg_get_viewdef(c.oid))
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where {_USER} and c.relkind in ('v', 'm')
          and {_NOT_EXT.format(cls="'pg_class'", oid="c.oid")}""",
    "types": f"""
        select n.nspname || '.' || t.typname, json_build_object(
          'kind', t.typtype::text, 'owner', pg_get_userbyid(t.typowner),
          'labels', (select array_agg(e.enumlabel order by e.enumsortorder) from pg_enum e
                     where e.enumtypid = t.oid),
          'base', case when t.typtype = 'd' then format_type(t.typbasetype, t.typtypmod) end,
          'attributes', (select array_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                           order by a.attnum) from pg_attribute a
                         join pg_class c on c.oid = a.attrelid
                         where c.oid = t.typrelid and c.relkind = 'c' and a.attnum > 0),
          'acl', t.typacl::text[])
        from pg_type t join pg_namespace n on n.oid = t.typnamespace
        where {_USER} and t.typtype in ('e', 'd', 'c') and t.typname not like '\\_%'
          and (t.typrelid = 0 or (select relkind from pg_class where oid = t.typrelid) = 'c')
          and {_NOT_EXT.format(cls="'pg_type'", oid="t.oid")}""",
    "comments": """
        select o.type || ' ' || o.identity, to_json(d.description)
        from pg_description d, pg_identify_object(d.classoid, d.objoid, d.objsubid) o
        where d.objoid >= 16384 and not exists (
          select from pg_depend x where x.classid = d.classoid and x.objid = d.objoid
            and x.deptype = 'e')""",
    "default_privileges": """
        select pg_get_userbyid(a.defaclrole) || ' in ' || coalesce(n.nspname, '*') || ' on '
          || a.defaclobjtype::text, to_json((select array_agg(x order by x)
                                     from unnest(a.defaclacl::text[]) x))
        from pg_default_acl a left join pg_namespace n on n.oid = a.defaclnamespace""",
    "publications": """
        select p.pubname, json_build_object(
          'all_tables', p.puballtables, 'insert', p.pubinsert, 'update', p.pubupdate,
          'delete', p.pubdelete, 'truncate', p.pubtruncate,
          'tables', (select array_agg(t.schemaname || '.' || t.tablename
                                      order by t.schemaname, t.tablename)
                     from pg_publication_tables t where t.pubname = p.pubname))
        from pg_publication p""",
    "sequences": f"""
        select s.schemaname || '.' || s.sequencename, json_build_object(
          'type', s.data_type::text, 'start', s.start_value, 'increment', s.increment_by,
          'min', s.min_value, 'max', s.max_value, 'cycle', s.cycle)
        from pg_sequences s join pg_namespace n on n.nspname = s.schemaname where {_USER}""",
    "event_triggers": """
        select evtname, json_build_object('event', evtevent, 'function', evtfoid::regproc::text,
                                          'tags', evttags, 'enabled', evtenabled::text)
        from pg_event_trigger""",
}

# Defaults whose value differs between two builds of the same schema.
_VOLATILE_DEFAULT = re.compile(r"now\(\)|gen_random_uuid\(\)|clock_timestamp\(\)|random\(\)")


def _section(conn: psycopg.Connection[Any], sql: str) -> dict[str, Any]:
    with conn.cursor(row_factory=tuple_row) as cur:
        return {key: value for key, value in cur.execute(sql).fetchall()}


def _rows(conn: psycopg.Connection[Any], columns: dict[str, Any]) -> dict[str, Any]:
    """The rows of every non-empty table, without the columns filled by volatile defaults."""
    tables: dict[str, list[str]] = {}
    for key, col in columns.items():
        schema, table, name = key.split(".", 2)
        if schema in ("auth",):
            continue
        tables.setdefault(f"{schema}.{table}", [])
        if not _VOLATILE_DEFAULT.search(col["default"] or ""):
            tables[f"{schema}.{table}"].append(name)
    relkinds = _section(
        conn,
        "select n.nspname || '.' || c.relname, c.relkind from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace",
    )
    out: dict[str, Any] = {}
    for table, cols in sorted(tables.items()):
        if relkinds.get(table) not in ("r", "p") or not cols:
            continue
        schema, name = table.split(".", 1)
        select = ", ".join(f'"{c}"' for c in cols)
        sql = (
            "select coalesce(json_agg(r order by r::text), '[]')"
            f' from (select {select} from "{schema}"."{name}") r'
        )
        with conn.cursor(row_factory=tuple_row) as cur:
            (rows,) = cur.execute(sql).fetchone() or ([],)
        if rows:
            out[table] = rows
    return out


def snapshot(conn: psycopg.Connection[Any]) -> Snapshot:
    """The catalog of the database `conn` is connected to, section by section."""
    snap: Snapshot = {name: _section(conn, sql) for name, sql in QUERIES.items()}
    has_cron = _section(conn, "select 'cron', to_regclass('cron.job') is not null")["cron"]
    snap["cron_jobs"] = (
        _section(
            conn,
            "select jobname, json_build_object('schedule', schedule, 'command', command)"
            " from cron.job",
        )
        if has_cron
        else {}
    )
    snap["rows"] = _rows(conn, snap["columns"])
    return snap


_SCHEDULE = re.compile(
    r"select\s+private\.schedule_cron\(\s*'([^']*)'\s*,\s*'([^']*)'\s*,\s*'((?:[^']|'')*)'\s*\)"
)


def scheduled_cron_jobs(migrations_dir: Path) -> dict[str, Any]:
    """The pg_cron jobs the migrations schedule (throw-away databases have no pg_cron, so the
    calls of private.schedule_cron are read from the files; the last call per name wins)."""
    jobs: dict[str, Any] = {}
    for f in sorted(migrations_dir.glob("*.sql")):
        for name, schedule, command in _SCHEDULE.findall(f.read_text()):
            jobs[name] = {"schedule": schedule, "command": command.replace("''", "'")}
    return jobs


def _render(value: Any) -> str:
    """A value as lines to diff: multi-line strings (function bodies, view definitions) line by
    line, so a difference shows as the lines that changed."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        out = []
        for key in sorted(value):
            item = value[key]
            if isinstance(item, str) and "\n" in item:
                out.append(f"{key}:")
                out.extend("  " + line for line in item.splitlines())
            else:
                out.append(f"{key}: {json.dumps(item, sort_keys=True, default=str)}")
        return "\n".join(out)
    return json.dumps(value, indent=1, sort_keys=True, default=str)


def diff(old: Snapshot, new: Snapshot) -> list[str]:
    """Every difference between two snapshots: `- key` only in old, `+ key` only in new,
    `~ key` changed (with a unified diff of the value)."""
    lines: list[str] = []
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section, {}), new.get(section, {})
        for key in sorted(set(a) | set(b)):
            if key not in b:
                lines.append(f"- {section}: {key}")
            elif key not in a:
                lines.append(f"+ {section}: {key}")
            elif a[key] != b[key]:
                lines.append(f"~ {section}: {key}")
                for line in difflib.unified_diff(
                    _render(a[key]).splitlines(),
                    _render(b[key]).splitlines(),
                    "old",
                    "new",
                    n=1,
                    lineterm="",
                ):
                    if not line.startswith(("---", "+++")):
                        lines.append("    " + line)
    return lines


def build_database(settings: Settings, name: str, workdir: Path) -> str:
    """A throw-away database `name` with the bootstrap and the migrations of
    `workdir`/supabase/migrations applied by the Supabase CLI; returns its URL."""
    admin = stack.database_url(settings)
    stack.create_database(admin, name)
    url = stack.database_url(settings, name)
    stack.bootstrap(url)
    subprocess.run(
        [
            str(stack.supabase_bin(settings)),
            "migration",
            "up",
            f"--remote={url}",
            "--workdir",
            str(workdir),
            "--yes",
            "--agent",
            "no",
        ],
        env={**os.environ, "SUPABASE_TELEMETRY_DISABLED": "1", "DO_NOT_TRACK": "1"},
        check=True,
        capture_output=True,
        text=True,
    )
    return url


def snapshot_url(url: str) -> Snapshot:
    with psycopg.connect(url) as conn:
        return snapshot(conn)
