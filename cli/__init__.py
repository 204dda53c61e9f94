"""`dbr`: the project's command line. Each capability keeps its commands in its own module."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Database reactivation platform: local stack, tests and operations.",
    no_args_is_help=True,
    add_completion=False,
)

# Importing a module registers its commands on `app`.
from cli import (  # noqa: E402
    analytics_cmd,
    catalog_cmd,
    import_cmd,
    rpc_cmd,
    stack_cmds,
    test_cmd,
    types_cmd,
    workers_cmd,
)

__all__ = [
    "analytics_cmd",
    "app",
    "catalog_cmd",
    "import_cmd",
    "rpc_cmd",
    "stack_cmds",
    "test_cmd",
    "types_cmd",
    "workers_cmd",
]
