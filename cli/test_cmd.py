"""`dbr test`: sets up what the tests need and runs every quality gate and test suite."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from cli import app
from cli.stack_cmds import prepare_tools, start_database

if TYPE_CHECKING:
    from dbr.settings import Settings


console = Console(stderr=True)
PGTAP_SETUP = "supabase/tests/setup/helpers.sql"  # under ROOT
FUZZ_TESTS = "tests/api/test_fuzz.py"


def _types_gate(settings: Settings) -> tuple[str, bool, float]:
    from dbr.dev import typegen
    from dbr.settings import ROOT

    console.rule("[bold]types")
    t0 = time.monotonic()
    try:
        ok = not typegen.stale(settings)
    except typegen.TypegenError as exc:
        console.print(f"[red]{exc}[/]")
        ok = False
    else:
        rel = typegen.TYPES_FILE.relative_to(ROOT)
        console.print(
            f"{rel} is up to date" if ok else "[red]types are stale: run bin/dbr gen-types"
        )
    return "types", ok, time.monotonic() - t0


def _gate(name: str, cmd: list[str], env: dict[str, str] | None = None) -> tuple[str, bool, float]:
    from dbr.settings import ROOT

    console.rule(f"[bold]{name}")
    t0 = time.monotonic()
    res = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})})
    return name, res.returncode == 0, time.monotonic() - t0


def _supabase_gate(
    name: str, args: list[str], *, fail_on: str, url_suffix: str = ""
) -> tuple[str, bool, float]:
    """A Supabase CLI check against a freshly migrated throw-away database."""
    from dbr.dev import stack, testdb
    from dbr.settings import ROOT, get_settings

    settings = get_settings()
    db_name, url = testdb.create_test_database(settings, name.split()[-1])
    try:
        return _gate(
            name,
            [
                str(stack.supabase_bin(settings)),
                *args,
                f"--remote={url}{url_suffix}",
                "--fail-on",
                fail_on,
                "--workdir",
                str(ROOT),
                "--yes",
                "--agent",
                "no",
            ],
        )
    finally:
        stack.drop_database(stack.database_url(settings), db_name)


@app.command()
def test(
    pytest_args: list[str] = typer.Argument(None, help="Extra arguments passed to pytest."),
    only: str = typer.Option(
        "",
        help="Comma-separated gates to run "
        "(ruff,sqlfluff,dblint,advisors,types,pgtap,deno,pytest,schemathesis,live).",
    ),
) -> None:
    """Install what is missing, start the database and run every check and test."""
    from dbr.dev import stack, testdb
    from dbr.settings import ROOT, get_settings

    t0 = time.monotonic()
    settings = get_settings()
    prepare_tools()
    start_database()
    wanted = {g for g in only.split(",") if g}

    def on(gate: str) -> bool:
        return not wanted or gate in wanted

    results: list[tuple[str, bool, float]] = []
    py = sys.executable
    if on("ruff"):
        results.append(_gate("ruff", [py, "-m", "ruff", "check", "."]))
    if on("sqlfluff"):
        results.append(_gate("sqlfluff", [py, "-m", "sqlfluff", "lint", "supabase/migrations"]))

    template = testdb.ensure_template(settings)
    admin_url = stack.database_url(settings)
    env = {"DBR_TEST_TEMPLATE": template}

    if on("dblint"):
        results.append(
            _supabase_gate(
                "supabase db lint",
                ["db", "lint", "--schema", "public,private", "--level", "warning"],
                fail_on="error",
            )
        )
    if on("advisors"):
        # Supabase's own security and performance advisors, as on a hosted project.
        results.append(
            _supabase_gate(
                "supabase db advisors",
                ["db", "advisors", "--type", "all", "--level", "warn"],
                fail_on="warn",
                url_suffix="?sslmode=disable",
            )
        )

    if on("types"):
        results.append(_types_gate(settings))

    pgtap_files = sorted(glob.glob(str(ROOT / "supabase" / "tests" / "*.sql")))
    if on("pgtap") and pgtap_files:
        name, url = testdb.create_test_database(settings, "pgtap")
        try:
            stack.apply_sql_file(url, ROOT / PGTAP_SETUP)
            results.append(_gate("pgTAP", ["pg_prove", "--failures", "-d", url, *pgtap_files]))
        finally:
            stack.drop_database(admin_url, name)

    fn_files = glob.glob(str(ROOT / "supabase" / "functions" / "**" / "*.ts"), recursive=True)
    if on("deno") and fn_files:
        deno = str(stack.deno_bin(settings))
        fn_dir = "supabase/functions"
        results.append(_gate("deno check", [deno, "check", "--quiet", *fn_files]))
        results.append(_gate("deno lint", [deno, "lint", "--quiet", fn_dir]))
        if glob.glob(str(ROOT / fn_dir / "**" / "*_test.ts"), recursive=True):
            results.append(_gate("deno test", [deno, "test", "--quiet", "-A", fn_dir]))

    if on("pytest"):
        # Without arguments the fuzz run is left to its own gate (below), not run twice.
        args = pytest_args or ([f"--ignore={FUZZ_TESTS}"] if on("schemathesis") else [])
        results.append(_gate("pytest", [py, "-m", "pytest", *args], env))

    if on("schemathesis"):
        results.append(_gate("schemathesis", [py, "-m", "pytest", "-q", FUZZ_TESTS], env))

    if on("live"):
        # A whole stack of its own (fresh cluster, free ports) running the README walkthrough.
        results.append(_gate("live stack", [py, "-m", "pytest", "-m", "live", "tests/live"]))

    console.rule("[bold]summary")
    for name, ok, dt in results:
        console.print(f"  {'[green]ok  [/]' if ok else '[red]FAIL[/]'} {name:<18} {dt:6.1f}s")
    console.print(f"  total {time.monotonic() - t0:.1f}s")
    failed = [n for n, ok, _ in results if not ok]
    if failed:
        console.print(f"[red]failed: {', '.join(failed)}[/]")
        raise typer.Exit(1)
