"""Sophie tests: each runs only the Sophie jobs it queued itself."""

from __future__ import annotations

import psycopg
import pytest


@pytest.fixture(autouse=True)
def _empty_sophie_queue(db_url: str) -> None:
    """Sophie jobs left by other tests sharing the session database are canceled (automatic
    reviews are queued by every outbound message any test sends)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "update private.jobs set status = 'canceled', finished_at = now()"
            " where status in ('queued', 'running') and kind like 'sophie.%'"
        )
        conn.execute("update private.sophie_review_cursor set reserved_by = null")
        conn.execute(
            "insert into private.sophie_review_cursor"
            " (conversation_id, client_id, reviewed_through)"
            " select id, client_id, 'infinity' from public.conversations"
            " on conflict (conversation_id) do update set reviewed_through = 'infinity'"
        )
