"""Helpers for the analytics tests: counter drift, messages in bulk, calling RPCs as a user."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from dbr.rpc import call_rpc
from tests.support import caller_for


def drift(db: psycopg.Connection[Any]) -> int:
    return int(db.execute("select private.analytics_drift() as drift").fetchone()["drift"])


def add_messages(
    conn: psycopg.Connection[Any], dataset_id: uuid.UUID, count: int, status: str = "sent"
) -> None:
    """`count` outbound manual messages, one statement, spread over the dataset's leads."""
    conn.execute(
        """
        insert into public.messages (client_id, dataset_id, conversation_id, lead_id, direction,
          message_category, status, content, sent_at)
        select l.client_id, l.dataset_id, c.id, l.id, 'outbound', 'human_manual', %s, 'hello',
          now() - (g %% 3) * interval '1 day'
        from generate_series(1, %s) g
        join lateral (
          select * from public.leads l where l.dataset_id = %s order by l.id
          offset (g %% greatest(1, (select count(*) from public.leads where dataset_id = %s)))
          limit 1
        ) l on true
        join public.conversations c on c.lead_id = l.id
        """,
        (status, count, dataset_id, dataset_id),
    )


def rpc_as(db: psycopg.Connection[Any], user_id: uuid.UUID, name: str, **body: Any) -> Any:
    """public.NAME called as PostgREST calls it, as `user_id`."""
    return call_rpc(db, caller_for(user_id), name, body)
