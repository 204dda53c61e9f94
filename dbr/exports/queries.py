"""The exports SQL in one place: the rows of each export type, the overview fallback of the
analytics summary, and the statements of the API and the builder around them. Unless a
comment says otherwise, each runs as the member (RLS decides what it sees)."""

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

# The overview's shape from the raw rows, used only when public.analytics_overview is not
# installed. Local days come from the session time zone (the builder sets the client's);
# every day of the range is present, with zeros. Rates are percentages over the leads
# messaged (reply rate: of them, those who replied; conversion: of them, those converted).
FALLBACK_OVERVIEW = """
with
  lead_rows as (
    select l.* from public.leads l
    where %(dataset_id)s::uuid is null or l.dataset_id = %(dataset_id)s::uuid
  ),
  msg as (
    select m.direction, m.message_category, m.sent_at, m.received_at, m.created_at, m.lead_id
    from public.messages m
    where (%(dataset_id)s::uuid is null or m.dataset_id = %(dataset_id)s::uuid)
      and m.lead_id is not null
  ),
  sent as (
    select m.* from msg m
    where m.direction = 'outbound' and m.sent_at is not null
      and (%(since)s::timestamptz is null or m.sent_at >= %(since)s::timestamptz)
  ),
  replies as (
    select m.* from msg m
    where m.direction = 'inbound'
      and (%(since)s::timestamptz is null
           or coalesce(m.received_at, m.created_at) >= %(since)s::timestamptz)
  ),
  booked as (
    select b.created_at from public.bookings b
    where (%(dataset_id)s::uuid is null or b.dataset_id = %(dataset_id)s::uuid)
      and (%(since)s::timestamptz is null or b.created_at >= %(since)s::timestamptz)
  ),
  messaged as (select distinct s.lead_id from sent s),
  days as (
    select generate_series(
      coalesce(
        (%(since)s::timestamptz)::date,
        least((select min(s.sent_at)::date from sent s),
              (select min(coalesce(r.received_at, r.created_at))::date from replies r),
              (select min(b.created_at)::date from booked b)),
        current_date),
      current_date, interval '1 day')::date as day
  )
select jsonb_build_object(
  'metrics', jsonb_build_object(
    'total_leads', (select count(*) from lead_rows),
    'active_leads', (select count(*) from lead_rows l where not l.archived and not l.opted_out),
    'messages_sent', jsonb_build_object(
      'm1', (select count(*) from sent where message_category = 'm1'),
      'm2', (select count(*) from sent where message_category = 'm2'),
      'm3', (select count(*) from sent where message_category = 'm3'),
      'ai_responses', (select count(*) from sent where message_category = 'ai_response'),
      'total', (select count(*) from sent)),
    'replies_received', (select count(*) from replies),
    'reply_rate', (select coalesce(round(100.0 * count(distinct r.lead_id)
        / nullif((select count(*) from messaged), 0), 1), 0)
      from replies r where r.lead_id in (select lead_id from messaged)),
    'hot_leads', (select count(*) from lead_rows l where l.contact_status = 'HOT'),
    'calls_booked', (select count(*) from lead_rows l where l.call_booked),
    'converted', (select count(*) from lead_rows l where l.contact_status = 'CONVERTED'),
    'conversion_rate', (select coalesce(round(100.0 * count(*)
        / nullif((select count(*) from messaged), 0), 1), 0)
      from lead_rows l where l.contact_status = 'CONVERTED'
        and l.id in (select lead_id from messaged))),
  'sentiment_breakdown', (select jsonb_object_agg(s.v, (select count(*) from lead_rows l
      where l.lead_sentiment::text = s.v))
    from unnest(enum_range(null::public.lead_sentiment)::text[]) s(v)),
  'status_breakdown', (select jsonb_object_agg(s.v, (select count(*) from lead_rows l
      where l.contact_status::text = s.v))
    from unnest(enum_range(null::public.lead_status)::text[]) s(v)),
  'trends', jsonb_build_object(
    'daily_messages', (select jsonb_agg(jsonb_build_object('date', d.day, 'count',
        (select count(*) from sent s where s.sent_at::date = d.day)) order by d.day) from days d),
    'daily_replies', (select jsonb_agg(jsonb_build_object('date', d.day, 'count',
        (select count(*) from replies r where coalesce(r.received_at, r.created_at)::date = d.day))
        order by d.day) from days d),
    'daily_bookings', (select jsonb_agg(jsonb_build_object('date', d.day, 'count',
        (select count(*) from booked b where b.created_at::date = d.day)) order by d.day)
      from days d))
) as r
"""
