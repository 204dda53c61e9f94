"""The committed frontend types are what `supabase gen types typescript` makes of the
migrations, and a stale copy is noticed (the `types` gate of `bin/dbr test` relies on it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbr.dev import stack, typegen
from dbr.settings import Settings


@pytest.fixture(scope="module")
def generated(base_settings: Settings) -> str:
    if not stack.supabase_bin(base_settings).exists():
        pytest.skip("the Supabase CLI is installed by `bin/dbr test`")
    return typegen.generate(base_settings)


def test_committed_types_match_the_migrations(generated: str) -> None:
    assert typegen.TYPES_FILE.read_text() == generated, "types are stale: run bin/dbr gen-types"


def test_types_describe_tables_rpcs_and_enums_for_create_client(generated: str) -> None:
    assert "export type Database = {" in generated
    for name in ('"leads": {', '"start_campaign": {', '"lead_status":'):
        assert name in generated, name


def test_a_changed_copy_is_stale(tmp_path: Path, base_settings: Settings, generated: str) -> None:
    copy = tmp_path / "database.ts"
    copy.write_text(generated.replace('"leads": {', '"leeds": {', 1))
    assert typegen.stale(base_settings, copy)
    assert typegen.write(base_settings, copy) is True
    assert copy.read_text() == generated
