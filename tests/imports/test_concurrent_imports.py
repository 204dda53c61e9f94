"""Two imports into one dataset at the same moment, with overlapping phone numbers: no lead
is created twice, every row is counted once, and the dataset's counters stay exact."""

from __future__ import annotations

import threading
from pathlib import Path

from dbr.datasets.dialect import Dialect
from dbr.datasets.importer import ImportTarget, as_caller_on_new_connection, import_rows
from tests.imports.support import make_tenant
from tests.support import caller_for


def _write(path: Path, numbers: range) -> Path:
    lines = ["First Name,Phone"] + [f"Lead {n},07911 {n:06d}" for n in numbers]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_concurrent_imports_with_overlap_stay_exact(db, db_url, settings, tmp_path):
    tenant = make_tenant(db, settings)
    files = [_write(tmp_path / "a.csv", range(0, 600)), _write(tmp_path / "b.csv", range(300, 900))]
    # Both imports stage their rows, then move them at the same time: the second waits on the
    # first's uncommitted numbers and skips them once it commits.
    staged = threading.Barrier(2, timeout=60)
    results: list = []
    failures: list[BaseException] = []

    def run(path: Path, user) -> None:
        def progress(rows: int, _bytes: int) -> None:
            if rows == 600:
                staged.wait()

        target = ImportTarget(
            dataset_id=tenant.dataset_id,
            mapping={"first_name": "First Name", "phone_number": "Phone"},
            source="cli",
        )
        try:
            results.append(
                as_caller_on_new_connection(
                    db_url,
                    caller_for(user),
                    lambda conn: import_rows(
                        conn, path, Dialect("utf-8", ","), target, progress=progress
                    ),
                )
            )
        except BaseException as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=run, args=(files[0], tenant.admin)),
        threading.Thread(target=run, args=(files[1], tenant.manager)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures
    assert sum(r.successful for r in results) == 900
    assert sum(r.duplicates for r in results) == 300
    assert all(r.total_rows == 600 and r.failed == 0 for r in results)

    counts = db.execute(
        """select count(*) as n, count(distinct phone_number) as distinct_phones,
                  (select total_leads from public.datasets where id = %(d)s) as total,
                  (select active_leads from public.datasets where id = %(d)s) as active
           from public.leads where dataset_id = %(d)s""",
        {"d": tenant.dataset_id},
    ).fetchone()
    assert counts == {"n": 900, "distinct_phones": 900, "total": 900, "active": 900}
