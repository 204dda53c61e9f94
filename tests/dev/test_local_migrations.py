"""`dbr up` refuses to half-migrate a local database built from migration files that have
changed since: the Supabase CLI skips an applied version whatever its file now says."""

from __future__ import annotations

import json

from dbr.dev import stack


def test_a_changed_migration_file_is_reported_and_an_unchanged_set_is_not(settings, tmp_path):
    local = settings.model_copy(update={"local_dir": tmp_path})
    assert stack.stale_migrations(local, settings.database_url) == []  # no record yet
    stack.record_migrations(local)
    assert stack.stale_migrations(local, settings.database_url) == []
    record = tmp_path / "migrations.applied.json"
    hashes = json.loads(record.read_text())
    first = min(hashes)
    record.write_text(json.dumps(hashes | {first: "0" * 64}))
    assert stack.stale_migrations(local, settings.database_url) == [first]


def test_a_migration_added_before_the_newest_applied_one_is_reported(settings, db, tmp_path):
    local = settings.model_copy(update={"local_dir": tmp_path})
    newest = max(stack.migration_hashes())
    db.execute(
        "insert into supabase_migrations.schema_migrations (version, name) values (%s, 'later')",
        (str(int(newest) + 1),),
    )
    try:
        # Every file is now "before the newest applied": none is missing, so none is reported.
        assert stack.stale_migrations(local, settings.database_url) == []
        oldest = min(stack.migration_hashes())
        db.execute(
            "delete from supabase_migrations.schema_migrations where version = %s", (oldest,)
        )
        try:
            assert stack.stale_migrations(local, settings.database_url) == [oldest]
        finally:
            db.execute(
                "insert into supabase_migrations.schema_migrations (version, name)"
                " values (%s, 'x')",
                (oldest,),
            )
    finally:
        db.execute(
            "delete from supabase_migrations.schema_migrations where version = %s",
            (str(int(newest) + 1),),
        )
