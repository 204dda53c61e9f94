-- Exports: CSV and XLSX files of what a member may see (leads, conversations, lessons, an
-- analytics summary), built by a worker (job `exports.build`) that reads the rows *as the
-- member who asked* (RLS decides what is in the file), stored in the `exports` bucket and
-- handed out as a signed link that expires with the file, 24 hours after it was built.
-- `public.exports` records who exported what, when, and how many rows; a pg_cron job
-- enqueues `exports.purge`, whose handler deletes expired files through the storage API
-- (Supabase Storage refuses deletes made in SQL) and marks their rows expired.

-- The private Storage bucket (Supabase Storage backend). The API writes and signs with the
-- service key; users download only through signed links, so it has no storage policies.
insert into storage.buckets (id, name, public)
values ('exports', 'exports', false)
on conflict (id) do nothing;

create type public.export_type as enum ('leads', 'conversations', 'lessons', 'analytics_summary');
comment on type public.export_type is
  'What an export holds: leads, conversations (one row per message), lessons, or the analytics summary.';
create type public.export_format as enum ('csv', 'xlsx');
comment on type public.export_format is 'The file format of an export: CSV (UTF-8 with BOM) or XLSX.';
create type public.export_status as enum ('pending', 'running', 'ready', 'failed', 'expired');
comment on type public.export_status is
  'pending: queued; running: a worker is writing the file; ready: downloadable until expires_at; '
  'failed: could not be built (error says why); expired: the file was deleted.';

create table public.exports (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null references public.clients (id) on delete cascade,
  requested_by uuid references auth.users (id) on delete set null,
  export_type public.export_type not null,
  format public.export_format not null,
  dataset_id uuid,
  dataset_name text,
  time_range text not null default 'all' check (time_range in ('today', 'week', 'month', 'all')),
  status public.export_status not null default 'pending',
  filename text not null check (length(filename) between 1 and 255),
  storage_path text not null unique,
  row_count integer check (row_count >= 0),
  size_bytes bigint check (size_bytes >= 0),
  error text,
  job_id bigint,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  completed_at timestamptz,
  expires_at timestamptz,
  purged_at timestamptz,
  unique (id, client_id),
  check (status <> 'ready' or (expires_at is not null and row_count is not null))
);
comment on table public.exports is
  'Every export a member asked for: who, what (type, format, dataset, time range), when, how many '
  'rows, where the file is and until when it can be downloaded. Written only by the export functions.';
comment on column public.exports.dataset_id is
  'The dataset the export was limited to (null: every dataset the member may see). No foreign key: '
  'the record outlives a deleted dataset, as the file does until it expires.';
comment on column public.exports.dataset_name is 'The dataset''s name when the export was asked for.';
comment on column public.exports.storage_path is
  'Object key in the exports bucket: <client_id>/<export id>.<format>, set by request_export.';
comment on column public.exports.row_count is
  'Data rows in the file, header not counted (for analytics_summary: the days of the daily table).';
comment on column public.exports.expires_at is
  'When the file stops being downloadable (24 h after it was built); the purge deletes it after.';
comment on column public.exports.purged_at is 'When the purge deleted the file from storage.';

create index exports_client_created_idx on public.exports (client_id, created_at desc);
create index exports_requested_by_idx on public.exports (requested_by, created_at desc);
create index exports_expiry_idx on public.exports (expires_at) where status = 'ready';

create trigger exports_client_fixed before update of client_id on public.exports
for each row execute function private.forbid_client_change();

alter table public.exports enable row level security;

-- A member sees the exports it asked for; an admin sees every export of its client (the
-- record of who exported what). Nobody writes the table directly: the functions below do.
create policy "members read their exports, admins all of the client" on public.exports
for select to authenticated
using (
  client_id = (select private.current_client_id())
  and (requested_by = (select auth.uid()) or (select private.is_admin()))
);

revoke all on public.exports from anon, authenticated;
grant select on public.exports to authenticated;
grant all on public.exports to service_role;

-- Cell values as exported ---------------------------------------------------------------

-- A text cell that a spreadsheet would read as a formula (first character, after leading
-- spaces, one of = + - @ tab CR: OWASP's CSV injection list) gets a leading apostrophe, so
-- Excel, LibreOffice and Google Sheets show it as text. Plain numbers ("+447911123456",
-- "-5") are left as they are: they cannot call a function, and phone numbers stay usable.
create function private.export_text(value text) returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case
    when value ~ '^[ \u00a0]*[=+\-@\t\r]' and value !~ '^[+-]?[0-9]+([.,][0-9]+)?$' then '''' || value
    else value
  end
$$;
comment on function private.export_text(text) is
  'Neutralises spreadsheet formula injection: prefixes an apostrophe to text starting (after spaces) '
  'with = + - @ tab or CR, unless it is a plain number. Applied to every text cell of every export.';

-- The first instant of a time range in the client's local days: today = since local
-- midnight, week = the last 7 local days including today, month = the last 30, all = null.
-- Local-timestamp arithmetic before converting back keeps a DST change out of the result.
create function private.export_since(time_range text, tz text) returns timestamptz
language sql
stable
set search_path = ''
as $$
  select (date_trunc('day', now() at time zone tz) - make_interval(days => case time_range
      when 'today' then 0 when 'week' then 6 when 'month' then 29 end)) at time zone tz
  where time_range in ('today', 'week', 'month')
$$;
comment on function private.export_since(text, text) is
  'Start of an export time range (today|week|month) in the client''s local days; null for all.';

-- The rows of each export type. Security invoker: they run as the member who asked, so RLS
-- decides what is in the file. Timestamps come out in the session time zone (the builder
-- sets the client's), to the second. Every free-text column is neutralised with export_text's
-- rule, written out inline: a call of a SQL function that pins its search_path is never
-- inlined and costs ~5 us, nine per row, where the bare expression costs ~0.3 us (a pgTAP
-- test holds each column to export_text). Phone numbers are E.164 by constraint.

-- Rows of a leads export: the leads the caller may see, of one dataset or all, created since.
create function private.export_leads(dataset_id uuid, since timestamptz)
returns table (
  lead_id uuid, dataset text, first_name text, last_name text, phone_number text, email text,
  postcode text, inquiry_date date, contact_status text, lead_sentiment text,
  latest_lead_reply text, reply_received_at timestamp, m1_sent_at timestamp,
  m2_sent_at timestamp, m3_sent_at timestamp, call_booked boolean, call_booked_time timestamp,
  manual_mode boolean, archived boolean, opted_out boolean, notes text, created_at timestamp
)
language sql
stable
set search_path = ''
as $$
  select
    l.id,
    case when d.name ~ '^[ \u00a0]*[=+\-@\t\r]' and d.name !~ '^[+-]?[0-9]+([.,][0-9]+)?$' then '''' || d.name else d.name end,
    case when l.first_name ~ '^[ \u00a0]*[=+\-@\t\r]' and l.first_name !~ '^[+-]?[0-9]+([.,][0-9]+)?$' then '''' || l.first_name else l.first_name end,
    case when l.last_name ~ '^[ \u00a0]*[=+\-@\t\r]' and l.last_name !~ '^[+-]?[0-9]+([.,][0-9]+)?$' then '''' || l.last_name else l.last_name end,
    l.phone_number,
    case when l.email ~ '^[ \u00a0]*[=+\-@\t\r]' and l.email !~ '^[+-]?[0-9]+([.,][0-9]+)?$' then '''' || l.email else l.email end,
    case when l.postcode ~ '^[ \u00a0]*[=+\-@\t\r]' and l.postcode !~ '^[+-]?[0-9]+([.,][0-9]+)?$' then '''' || l.postcode else l.postcode end,
    l.inquiry_date,
    l.contact_status::text,
    l.lead_sentiment::text,
    case when l.latest_lead_reply ~ '^[ \u00a0]*[=+\-@\t\r]' and l.latest_lead_reply !~ '^[+-]?[0-9]+([.,][0-9]+)?$' then '''' || l.latest_lead_reply else l.latest_lead_reply end,
    l.reply_received_at::timestamp(0),
    l.m1_sent_at::timestamp(0),
    l.m2_sent_at::timestamp(0),
    l.m3_sent_at::timestamp(0),
    l.call_booked,
    l.call_booked_time::timestamp(0),
    l.manual_mode,
    l.archived,
    l.opted_out,
    case when l.notes ~ '^[ \u00a0]*[=+\-@\t\r]' and l.notes !~ '^[+-]?[0-9]+([.,][0-9]+)?$' then '''' || l.notes else l.notes end,
    l.created_at::timestamp(0)
  from public.leads l
  join public.datasets d on d.id = l.dataset_id
  where (export_leads.dataset_id is null or l.dataset_id = export_leads.dataset_id)
    and (since is null or l.created_at >= since)
  order by l.created_at, l.id
$$;
comment on function private.export_leads(uuid, timestamptz) is
  'Rows of a leads export: the leads the caller may see (RLS), of one dataset or all, created since.';

-- Rows of a conversations export: one per message the caller may see (drafts left out).
create function private.export_conversations(dataset_id uuid, since timestamptz)
returns table (
  conversation_id uuid, lead_id uuid, dataset text, first_name text, last_name text,
  phone_number text, contact_status text, conversation_status text, message_at timestamp,
  direction text, message_category text, message_status text, content text, ai_generated boolean,
  error_message text
)
language sql
stable
set search_path = ''
as $$
  select
    m.conversation_id,
    m.lead_id,
    case when d.name ~ '^[ \u00a0]*[=+\-@\t\r]' and d.name !~ '^[+-]?[0-9]+([.,][0-9]+)?$' then '''' || d.name else d.name end,
    case when l.first_name ~ '^[ \u00a0]*[=+\-@\t\r]' and l.first_name !~ '^[+-]?[0-9]+([.,][0-9]+)?$' then '''' || l.first_name else l.first_name end,
    case when l.last_name ~ '^[ \u00a0]*[=+\-@\t\r]' and l.last_name !~ '^[+-]?[0-9]+([.,][0-9]+)?$' then '''' || l.last_name else l.last_name end,
    l.phone_number,
    l.contact_status::text,
    c.status::text,
    coalesce(m.sent_at, m.received_at, m.created_at)::timestamp(0),
    m.direction::text,
    m.message_category::text,
    m.status::text,
    case when m.content ~ '^[ \u00a0]*[=+\-@\t\r]' and m.content !~ '^[+-]?[0-9]+([.,][0-9]+)?$' then '''' || m.content else m.content end,
    m.ai_generated,
    case when m.error_message ~ '^[ \u00a0]*[=+\-@\t\r]' and m.error_message !~ '^[+-]?[0-9]+([.,][0-9]+)?$' then '''' || m.error_message else m.error_message end
  from public.messages m
  join public.conversations c on c.id = m.conversation_id
  join public.leads l on l.id = m.lead_id
  join public.datasets d on d.id = m.dataset_id
  where m.status <> 'draft'
    and (export_conversations.dataset_id is null or m.dataset_id = export_conversations.dataset_id)
    and (since is null or m.created_at >= since)
  order by m.conversation_id, m.created_at, m.id
$$;
comment on function private.export_conversations(uuid, timestamptz) is
  'Rows of a conversations export: one per message of the conversations the caller may see (RLS; '
  'drafts left out), of one dataset or all, written since; grouped by conversation, in time order.';

-- Rows of a lessons export: the caller's client's lessons and the universal ones.
create function private.export_lessons(since timestamptz)
returns table (
  lesson_id uuid, title text, lesson_type text, scope text, status text, priority smallint,
  description text, trigger text, correct_response text, incorrect_response text,
  reasoning text, tags text, times_applied integer, times_successful integer,
  success_rate numeric, last_applied_at timestamp, created_at timestamp
)
language sql
stable
set search_path = ''
as $$
  select
    s.id,
    case when s.title ~ '^[ \u00a0]*[=+\-@\t\r]' and s.title !~ '^[+-]?[0-9]+([.,][0-9]+)?$' then '''' || s.title else s.title end,
    s.lesson_type::text,
    s.scope::text,
    s.status::text,
    s.priority,
    case when s.description ~ '^[ \u00a0]*[=+\-@\t\r]' and s.description !~ '^[+-]?[0-9]+([.,][0-9]+)?$' then '''' || s.description else s.description end,
    case when s.trigger ~ '^[ \u00a0]*[=+\-@\t\r]' and s.trigger !~ '^[+-]?[0-9]+([.,][0-9]+)?$' then '''' || s.trigger else s.trigger end,
    case when s.correct_response ~ '^[ \u00a0]*[=+\-@\t\r]' and s.correct_response !~ '^[+-]?[0-9]+([.,][0-9]+)?$' then '''' || s.correct_response else s.correct_response end,
    case when s.incorrect_response ~ '^[ \u00a0]*[=+\-@\t\r]' and s.incorrect_response !~ '^[+-]?[0-9]+([.,][0-9]+)?$' then '''' || s.incorrect_response else s.incorrect_response end,
    case when s.reasoning ~ '^[ \u00a0]*[=+\-@\t\r]' and s.reasoning !~ '^[+-]?[0-9]+([.,][0-9]+)?$' then '''' || s.reasoning else s.reasoning end,
    case when array_to_string(s.tags, ', ') ~ '^[ \u00a0]*[=+\-@\t\r]' and array_to_string(s.tags, ', ') !~ '^[+-]?[0-9]+([.,][0-9]+)?$' then '''' || array_to_string(s.tags, ', ') else array_to_string(s.tags, ', ') end,
    s.times_applied,
    s.times_successful,
    s.success_rate,
    s.last_applied_at::timestamp(0),
    s.created_at::timestamp(0)
  from public.lessons s
  where since is null or s.created_at >= since
  order by s.created_at, s.id
$$;
comment on function private.export_lessons(timestamptz) is
  'Rows of a lessons export: the lessons the caller may see (its client''s and universal ones), created since.';

revoke all on function private.export_text(text), private.export_since(text, text),
  private.export_leads(uuid, timestamptz), private.export_conversations(uuid, timestamptz),
  private.export_lessons(timestamptz)
  from public, anon;
grant execute on function private.export_text(text), private.export_since(text, text),
  private.export_leads(uuid, timestamptz), private.export_conversations(uuid, timestamptz),
  private.export_lessons(timestamptz)
  to authenticated, service_role;

-- Requesting, building, finishing -------------------------------------------------------

-- The export as the API answers it (the contract's {id, filename, download_url, expires_at,
-- rows} plus status and error; the API adds the signed link).
create function private.export_json(e public.exports) returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'id', e.id, 'filename', e.filename, 'status',
    case when e.status = 'ready' and e.expires_at <= now() then 'expired' else e.status::text end,
    'export_type', e.export_type, 'format', e.format, 'dataset_id', e.dataset_id,
    'time_range', e.time_range, 'rows', e.row_count, 'expires_at', e.expires_at,
    'created_at', e.created_at, 'completed_at', e.completed_at, 'error', e.error,
    'storage_path', e.storage_path
  )
$$;
comment on function private.export_json(public.exports) is
  'An export as the API reports it; a ready export past expires_at reads as expired.';

-- analytics/export: checks the request as the caller (active member; the dataset, when
-- given, one it may see: else 404 like a missing one), records the export and enqueues
-- the job that builds it. At most 3 exports of one member are in flight at a time (429).
create function private.request_export(
  export_type text, dataset_id uuid default null, time_range text default null,
  format text default 'csv'
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_client uuid := private.current_client_id();
  v_type public.export_type;
  v_format public.export_format;
  v_range text := coalesce(request_export.time_range, 'all');
  v_dataset public.datasets;
  v_id uuid := gen_random_uuid();
  v_row public.exports;
  v_in_flight integer;
begin
  if v_client is null then
    perform private.raise_error(403, 'You are not an active member of any client.');
  end if;
  if request_export.export_type is null
     or request_export.export_type not in ('leads', 'conversations', 'lessons', 'analytics_summary') then
    perform private.raise_error(400, 'export_type must be leads, conversations, lessons or analytics_summary',
      jsonb_build_object('export_type', request_export.export_type));
  end if;
  if coalesce(request_export.format, 'csv') not in ('csv', 'xlsx') then
    perform private.raise_error(400, 'format must be csv or xlsx',
      jsonb_build_object('format', request_export.format));
  end if;
  if v_range not in ('today', 'week', 'month', 'all') then
    perform private.raise_error(400, 'time_range must be today, week, month or all',
      jsonb_build_object('time_range', request_export.time_range));
  end if;
  v_type := request_export.export_type::public.export_type;
  v_format := coalesce(request_export.format, 'csv')::public.export_format;
  if request_export.dataset_id is not null then
    select d.* into v_dataset from public.datasets d
    where d.id = request_export.dataset_id and d.client_id = v_client
      and (private.sees_all_datasets() or d.id = any (private.visible_dataset_ids()));
    if v_dataset.id is null then
      perform private.raise_error(404, 'dataset not found',
        jsonb_build_object('dataset_id', request_export.dataset_id));
    end if;
  end if;
  select count(*) into v_in_flight from public.exports e
  where e.requested_by = auth.uid() and e.status in ('pending', 'running')
    and e.created_at > now() - interval '1 hour';
  if v_in_flight >= 3 then
    perform private.raise_error(429, 'You have 3 exports being built; wait for one to finish.',
      jsonb_build_object('in_flight', v_in_flight), 'RATE_LIMITED', '{"Retry-After": "10"}'::jsonb);
  end if;
  insert into public.exports (
    id, client_id, requested_by, export_type, format, dataset_id, dataset_name, time_range,
    filename, storage_path
  ) values (
    v_id, v_client, auth.uid(), v_type, v_format, v_dataset.id, v_dataset.name, v_range,
    concat_ws('-', replace(v_type::text, '_', '-'),
      nullif(trim(both '-' from left(regexp_replace(lower(v_dataset.name), '[^a-z0-9]+', '-', 'g'), 40)), ''),
      nullif(v_range, 'all'),
      to_char(now() at time zone (select c.timezone from public.clients c where c.id = v_client), 'YYYY-MM-DD-HH24MI'))
      || '.' || v_format::text,
    v_client::text || '/' || v_id::text || '.' || v_format::text
  ) returning * into v_row;
  update public.exports e
  set job_id = private.enqueue_job(
    'exports.build', jsonb_build_object('export_id', v_id), now(), 'exports.build:' || v_id::text,
    v_client, 3, 50::smallint
  )
  where e.id = v_id
  returning * into v_row;
  return private.export_json(v_row);
end
$$;
comment on function private.request_export(text, uuid, text, text) is
  'analytics/export: validates the request as the caller, records the export (pending) and enqueues '
  'its exports.build job. 400 bad type/format/range, 403 not a member, 404 dataset not visible, '
  '429 three exports already in flight.';

-- The worker's side. It starts a build (the row, the requester and the client's time zone),
-- and records the outcome. begin_export returns null when there is nothing to build (the
-- export finished, failed or expired already: a duplicate delivery of the job).
create function private.begin_export(export_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row public.exports;
begin
  update public.exports e
  set status = 'running', started_at = now(), error = null
  where e.id = begin_export.export_id and e.status in ('pending', 'running')
  returning * into v_row;
  if v_row.id is null then
    return null;
  end if;
  return private.export_json(v_row) || jsonb_build_object(
    'client_id', v_row.client_id, 'requested_by', v_row.requested_by,
    'timezone', (select c.timezone from public.clients c where c.id = v_row.client_id),
    'since', private.export_since(v_row.time_range,
      (select c.timezone from public.clients c where c.id = v_row.client_id))
  );
end
$$;
comment on function private.begin_export(uuid) is
  'Worker: marks an export running and returns what building it needs, or null if it is settled.';

-- Worker: the file is stored; the export is ready until now + valid_for.
create function private.finish_export(
  export_id uuid, row_count integer, size_bytes bigint, valid_for interval default interval '24 hours'
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row public.exports;
begin
  update public.exports e
  set status = 'ready', row_count = finish_export.row_count, size_bytes = finish_export.size_bytes,
    completed_at = now(), expires_at = now() + valid_for, error = null
  where e.id = finish_export.export_id and e.status in ('pending', 'running')
  returning * into v_row;
  return private.export_json(v_row);
end
$$;
comment on function private.finish_export(uuid, integer, bigint, interval) is
  'Worker: the file is stored; the export is ready until now + valid_for (24 h).';

-- Worker: the export could not be built (its job's last attempt failed).
create function private.fail_export(export_id uuid, error text) returns void
language sql
security definer
set search_path = ''
as $$
  update public.exports e
  set status = 'failed', error = left(fail_export.error, 2000), completed_at = now()
  where e.id = fail_export.export_id and e.status in ('pending', 'running')
$$;
comment on function private.fail_export(uuid, text) is 'Worker: the export could not be built (last attempt).';

-- Purging expired files -----------------------------------------------------------------

-- Purge: ready exports past their expiry, oldest first.
create function private.expired_exports(max_rows integer default 500)
returns table (export_id uuid, storage_path text)
language sql
stable
security definer
set search_path = ''
as $$
  select e.id, e.storage_path from public.exports e
  where e.status = 'ready' and e.expires_at <= now()
  order by e.expires_at
  limit max_rows
$$;
comment on function private.expired_exports(integer) is 'Purge: ready exports past their expiry (oldest first).';

-- Purge: these exports' files are deleted; they are expired now.
create function private.mark_exports_purged(export_ids uuid[]) returns integer
language sql
security definer
set search_path = ''
as $$
  with done as (
    update public.exports e set status = 'expired', purged_at = now()
    where e.id = any (export_ids) and e.status = 'ready' and e.expires_at <= now()
    returning 1
  )
  select count(*)::integer from done
$$;
comment on function private.mark_exports_purged(uuid[]) is 'Purge: these files are deleted; their exports are expired.';

-- Called by pg_cron: one exports.purge job per quarter hour, only when something expired.
create function private.enqueue_exports_purge() returns bigint
language sql
security definer
set search_path = ''
as $$
  select private.enqueue_job(
    'exports.purge', '{}'::jsonb, now(),
    'exports.purge:' || to_char(date_trunc('minute', now()) - make_interval(
      mins => extract(minute from now())::integer % 15), 'YYYY-MM-DD"T"HH24:MI'),
    null, 5, 200::smallint
  )
  where exists (select from public.exports e where e.status = 'ready' and e.expires_at <= now())
$$;
comment on function private.enqueue_exports_purge() is
  'pg_cron (every 15 min): enqueues the exports.purge job when an export file has expired.';

revoke all on function private.export_json(public.exports), private.begin_export(uuid),
  private.finish_export(uuid, integer, bigint, interval), private.fail_export(uuid, text),
  private.expired_exports(integer), private.mark_exports_purged(uuid[]),
  private.enqueue_exports_purge(), private.request_export(text, uuid, text, text)
  from public, anon, authenticated;
grant execute on function private.request_export(text, uuid, text, text), private.export_json(public.exports)
  to authenticated;
grant execute on function private.export_json(public.exports), private.begin_export(uuid),
  private.finish_export(uuid, integer, bigint, interval), private.fail_export(uuid, text),
  private.expired_exports(integer), private.mark_exports_purged(uuid[]),
  private.enqueue_exports_purge(), private.request_export(text, uuid, text, text)
  to service_role;

select private.schedule_cron('exports-purge', '*/15 * * * *', 'select private.enqueue_exports_purge()');
