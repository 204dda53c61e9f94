"""The analytics summary export (placeholder until the overview is wired in)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg


def write_summary(
    conn: psycopg.Connection[Any], params: dict[str, Any], fmt: str, path: Path
) -> int:
    raise NotImplementedError("analytics_summary")
