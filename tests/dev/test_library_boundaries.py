"""The library `dbr/` stands on its own: no module of it imports the applications built on it
(the API, the workers, the command line) or the tests, at module level or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

from dbr.settings import ROOT

APPLICATIONS = ("api", "workers", "cli", "tests", "bench")


def _imports(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.append((node.lineno, str(node.args[0].value)))
    return found


def test_nothing_in_dbr_imports_the_api_workers_cli_or_tests():
    modules = sorted((ROOT / "dbr").rglob("*.py"))
    assert len(modules) > 30  # the walk sees the whole library
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in modules
        for line, name in _imports(path)
        if name.split(".")[0] in APPLICATIONS
    ]
    assert offending == []


def test_the_walk_notices_an_import_of_the_workers(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\n"
        "def f():\n"
        "    from workers.jobs import Job\n"
        "    importlib.import_module('cli.app')\n"
    )
    assert [name for _, name in _imports(sample)] == ["os", "workers.jobs", "cli.app"]
