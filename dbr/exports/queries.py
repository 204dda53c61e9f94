"""The exports SQL in one place: the rows of each export type and the statements of the API
and the builder around them. Unless a comment says otherwise, each runs as the member (RLS
decides what it sees)."""

from __future__ import annotations

# The rows of each export type (SQL functions run as the caller), and their sheet's title.
ROWS: dict[str, tuple[str, str]] = {
    "leads": (
        "select * from private.export_leads(%(dataset_id)s::uuid, %(since)s::timestamptz)",
        "Leads",
    ),
    "conversations": (
        "select * from private.export_conversations(%(dataset_id)s::uuid, %(since)s::timestamptz)",
        "Conversations",
    ),
    "lessons": ("select * from private.export_lessons(%(since)s::timestamptz)", "Lessons"),
}

# The member who asked is still an active member of the export's client (at build time).
STILL_MEMBER = "select private.current_client_id() is not distinct from %s::uuid as ok"

# An export as the API reports it, if the caller may see it (its own; an admin: any of the
# client's).
EXPORT = "select private.export_json(e) as r from public.exports e where e.id = %s"

# The export a local signed link names (as the service: the link is the permission).
FILE = """
select filename, format::text as format, status::text as status
from public.exports where storage_path = %s
"""

# The purge's batch of expired exports (as the service).
EXPIRED = "select * from private.expired_exports(%s)"

# What the summary's first sheet says about itself: time zone, when, which dataset.
SUMMARY_SCOPE = """
select current_setting('timezone') as tz, localtimestamp(0) as now,
       (select d.name from public.datasets d where d.id = %s::uuid) as dataset
"""
