-- Leads: a person on a dataset's list, and everything that keeps a lead row right.
--   * every leads column is in the one create table below, including search_text (lead
--     search) and sequence_step (the outreach sequence position);
--   * RLS: a lead is visible with its dataset, or (failing closed) only when assigned to the
--     member; realtime feed by dataset;
--   * statement-level triggers keep the dataset counters exact with set-based deltas; a row
--     trigger stamps flag times and checks assignees; another tells staff when a lead turns HOT;
--   * the lead list (filters, trigram search, pagination) and the lead RPCs in the API
--     contract's shapes.
-- get_lead reads conversations (20 outreach) and sophie_insights (31 sophie); it is plpgsql,
-- which resolves them when it runs.

-- types -----------------------------------------------------------------------------------
create type public.lead_status as enum (
  'READY', 'M1_SENT', 'M2_SENT', 'M3_SENT', 'REPLIED', 'HOT', 'WARM', 'COLD',
  'CALL_BOOKED', 'CONVERTED', 'NOT_INTERESTED', 'NO_RESPONSE', 'OPTED_OUT', 'UNDELIVERABLE'
);
comment on type public.lead_status is
  'A lead''s place in the outreach: READY, the sequence steps, replies, booking and outcomes.';
create type public.lead_sentiment as enum ('POSITIVE', 'NEGATIVE', 'NEUTRAL', 'HOT', 'UNCLEAR');
comment on type public.lead_sentiment is 'The sentiment of a lead''s latest replies, as the AI assessed it.';

-- leads -----------------------------------------------------------------------------------
create table public.leads (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null default private.current_client_id(),
  dataset_id uuid not null,
  first_name text,
  last_name text,
  phone_number text not null check (phone_number ~ '^\+[1-9][0-9]{6,14}$'),
  email text check (email is null or email ~* '^[^@\s]+@[^@\s]+\.[^@\s]+$'),
  postcode text,
  inquiry_date date,
  notes text,
  custom_fields jsonb not null default '{}'::jsonb,
  timezone text,
  contact_status public.lead_status not null default 'READY',
  lead_sentiment public.lead_sentiment,
  latest_lead_reply text,
  reply_received_at timestamptz,
  m1_sent_at timestamptz,
  m2_sent_at timestamptz,
  m3_sent_at timestamptz,
  call_booked boolean not null default false,
  call_booked_time timestamptz,
  cal_booking_id text,
  manual_mode boolean not null default false,
  manual_mode_activated_at timestamptz,
  archived boolean not null default false,
  archived_at timestamptz,
  opted_out boolean not null default false,
  opted_out_at timestamptz,
  assigned_to uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- Search text: lower-cased names and email plus the phone's digits, so that "+44 7700 900123",
  -- "07700 900123" and "7700900123" all find +447700900123 (the query strips the same way and
  -- drops leading zeros: an international 00 or a national trunk 0). Stored, not an index
  -- expression: a trigram match is always rechecked on the row, and rechecking a stored
  -- column costs a fifth of recomputing lower(concat(...)) per candidate (measured at 1M leads).
  -- The expression is the column's own (no helper function): a SQL function needs
  -- `set search_path` (Supabase's advisors), and a SET clause stops Postgres from inlining it,
  -- which made every imported row pay ~3 us for the call (800k rows: 2.9 s instead of 0.5 s).
  search_text text generated always as (
    pg_catalog.lower(
      coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(email, '') || ' '
      || pg_catalog.replace(coalesce(phone_number, ''), '+', '')
    )
  ) stored,
  sequence_step smallint not null default 0 check (sequence_step between 0 and 3),
  unique (id, client_id),
  unique (dataset_id, phone_number),
  foreign key (dataset_id, client_id) references public.datasets (id, client_id) on delete cascade
);
comment on table public.leads is 'A person on a dataset''s list; phone_number is E.164 and unique within the dataset.';
comment on column public.leads.timezone is 'IANA timezone derived from the number; null falls back to the client''s.';
comment on column public.leads.manual_mode is 'True when staff handle the conversation: the AI does not answer.';
comment on column public.leads.opted_out is 'True after STOP (or equivalent): nothing is ever sent to this lead.';
comment on column public.leads.search_text is
  'Internal: what lead search matches (names, email, phone digits; lower case). Generated; not in API shapes.';
comment on column public.leads.sequence_step is
  'Sequence messages queued so far (0 = none, 1..3 = M1..M3). Set when the tick queues a step, so a '
  'lead whose message is queued but not yet sent is never queued again.';
create index leads_client_id_idx on public.leads (client_id);
create index leads_client_phone_idx on public.leads (client_id, phone_number);
create index leads_assigned_to_idx on public.leads (assigned_to) where assigned_to is not null;

create trigger leads_touch before update on public.leads
  for each row execute function private.touch_updated_at();
create trigger leads_client_fixed before update of client_id on public.leads
  for each row execute function private.forbid_client_change();

-- row level security and privileges -------------------------------------------------------
alter table public.leads enable row level security;

-- Members read the leads of the datasets they may see, or only their assigned leads when they fail
-- closed.
create policy "members read leads of visible datasets" on public.leads
  for select to authenticated
  using (
    client_id = (select private.current_client_id())
    and ((select private.sees_all_datasets()) or dataset_id = any ((select private.visible_dataset_ids())::uuid[]))
    and (not (select private.sees_only_assigned_leads()) or assigned_to = (select auth.uid()))
  );
-- The `exists` (one primary-key probe per row) makes another client's dataset answer as a
-- missing one does, before the row reaches (dataset_id, phone_number)'s unique index, whose
-- 23505 would tell whether that phone number is on the other client's list.
create policy "writers add leads to visible datasets" on public.leads
  for insert to authenticated
  with check (
    client_id = (select private.current_client_id()) and (select private.can_write())
    and ((select private.sees_all_datasets()) or dataset_id = any ((select private.visible_dataset_ids())::uuid[]))
    and (not (select private.sees_only_assigned_leads()) or assigned_to = (select auth.uid()))
    and exists (
      select 1 from public.datasets as d
      where d.id = leads.dataset_id and d.client_id = leads.client_id
    )
  );
-- Members who may write change the leads they may see (the columns the grants allow).
create policy "writers update leads of visible datasets" on public.leads
  for update to authenticated
  using (
    client_id = (select private.current_client_id()) and (select private.can_write())
    and ((select private.sees_all_datasets()) or dataset_id = any ((select private.visible_dataset_ids())::uuid[]))
    and (not (select private.sees_only_assigned_leads()) or assigned_to = (select auth.uid()))
  )
  with check (client_id = (select private.current_client_id()));
-- Only admins delete leads.
create policy "admins delete leads" on public.leads
  for delete to authenticated
  using (client_id = (select private.current_client_id()) and (select private.is_admin()));


-- Table privileges: what a user may touch at all; RLS then decides which rows.
revoke all on public.leads from anon;
revoke all on public.leads from authenticated;
grant select, delete on public.leads to authenticated;
grant insert (dataset_id, first_name, last_name, phone_number, email, postcode, inquiry_date, notes,
  custom_fields, assigned_to) on public.leads to authenticated;
grant update (first_name, last_name, email, postcode, notes, contact_status, lead_sentiment,
  manual_mode, archived, assigned_to) on public.leads to authenticated;

-- Realtime feed of leads by dataset.
alter publication supabase_realtime add table public.leads;

-- dataset counters ------------------------------------------------------------------------
-- Dataset lead counters (total, active, hot, converted) kept exact by set-based,
-- statement-level triggers on leads. A statement touching a million rows updates each
-- affected dataset row once, with the summed deltas from the transition tables. The
-- counters are increments, so concurrent writers commute: each waits for the dataset row
-- lock held by the other and adds its own delta, and the totals stay exact.

-- What each lead contributes (0 or 1). One definition, used by the triggers and the recount.
-- A SET clause stops Postgres from inlining a SQL function (a call then costs ~4 us: 800k
-- leads counted in 4 s instead of 0.27 s), so the callers never call them per row: they
-- first group the rows by the four attributes these read (a handful of groups per dataset)
-- and call them once per group, weighted by the group's size (0.21-0.28 s for the same 800k).
create function private.lead_counts_as_active(
  p_archived boolean, p_opted_out boolean, p_status public.lead_status
) returns integer
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case
    when not p_archived and not p_opted_out
      and p_status not in (
        'CONVERTED'::public.lead_status, 'NOT_INTERESTED'::public.lead_status,
        'OPTED_OUT'::public.lead_status, 'UNDELIVERABLE'::public.lead_status
      )
    then 1 else 0
  end
$$;
comment on function private.lead_counts_as_active(boolean, boolean, public.lead_status) is
  '1 when a lead is active: not archived, not opted out, and contact_status not one of '
  'CONVERTED, NOT_INTERESTED, OPTED_OUT, UNDELIVERABLE.';

-- 1 when a lead is hot: not archived, and contact_status = HOT or lead_sentiment = HOT.
create function private.lead_counts_as_hot(
  p_archived boolean, p_status public.lead_status, p_sentiment public.lead_sentiment
) returns integer
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case
    when not p_archived
      and (p_status = 'HOT'::public.lead_status or p_sentiment is not distinct from 'HOT'::public.lead_sentiment)
    then 1 else 0
  end
$$;
comment on function private.lead_counts_as_hot(boolean, public.lead_status, public.lead_sentiment) is
  '1 when a lead is hot: not archived, and contact_status = HOT or lead_sentiment = HOT.';

-- 1 when contact_status = CONVERTED (archived or not).
create function private.lead_counts_as_converted(p_status public.lead_status) returns integer
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case when p_status = 'CONVERTED'::public.lead_status then 1 else 0 end
$$;
comment on function private.lead_counts_as_converted(public.lead_status) is
  '1 when contact_status = CONVERTED (archived or not).';

comment on column public.datasets.total_leads is
  'Every lead of the dataset, archived and opted-out included. Kept exact by triggers on leads.';
comment on column public.datasets.active_leads is
  'Leads not archived, not opted out, and not CONVERTED / NOT_INTERESTED / OPTED_OUT / UNDELIVERABLE. '
  'Kept exact by triggers on leads.';
comment on column public.datasets.hot_leads is
  'Leads not archived whose contact_status or lead_sentiment is HOT. Kept exact by triggers on leads.';
comment on column public.datasets.converted_leads is
  'Leads whose contact_status is CONVERTED (archived included). Kept exact by triggers on leads.';

create type private.dataset_stat_delta as (
  dataset_id uuid,
  total_delta integer,
  active_delta integer,
  hot_delta integer,
  converted_delta integer
);
comment on type private.dataset_stat_delta is 'Net change of one dataset''s lead counters in one statement.';

-- Adds per-dataset counter deltas, locking dataset rows in id order (no deadlocks between writers).
create function private.apply_dataset_stat_deltas(p_deltas private.dataset_stat_delta []) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_deltas is null or cardinality(p_deltas) = 0 then
    return;
  end if;
  -- Lock the dataset rows in one global order, so two statements touching the same
  -- datasets queue behind each other instead of deadlocking.
  perform 1 from public.datasets d
  where d.id in (select x.dataset_id from unnest(p_deltas) x)
  order by d.id
  for no key update;

  update public.datasets d
  set total_leads = d.total_leads + x.total_delta,
    active_leads = d.active_leads + x.active_delta,
    hot_leads = d.hot_leads + x.hot_delta,
    converted_leads = d.converted_leads + x.converted_delta
  from unnest(p_deltas) x
  where d.id = x.dataset_id;
end
$$;
comment on function private.apply_dataset_stat_deltas(private.dataset_stat_delta []) is
  'Adds per-dataset counter deltas, locking dataset rows in id order (no deadlocks between writers).';

-- Trigger (statement): adds inserted leads to their datasets' counters.
create function private.leads_stats_after_insert() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.apply_dataset_stat_deltas(array(
    select row(
      g.dataset_id, sum(g.n)::integer,
      sum(g.n * private.lead_counts_as_active(g.archived, g.opted_out, g.contact_status))::integer,
      sum(g.n * private.lead_counts_as_hot(g.archived, g.contact_status, g.lead_sentiment))::integer,
      sum(g.n * private.lead_counts_as_converted(g.contact_status))::integer
    )::private.dataset_stat_delta
    from (
      select n.dataset_id, n.archived, n.opted_out, n.contact_status, n.lead_sentiment, count(*) as n
      from new_rows n
      group by n.dataset_id, n.archived, n.opted_out, n.contact_status, n.lead_sentiment
    ) g
    group by g.dataset_id
  ));
  return null;
end
$$;

-- Trigger (statement): removes deleted leads from their datasets' counters.
create function private.leads_stats_after_delete() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.apply_dataset_stat_deltas(array(
    select row(
      g.dataset_id, -sum(g.n)::integer,
      -sum(g.n * private.lead_counts_as_active(g.archived, g.opted_out, g.contact_status))::integer,
      -sum(g.n * private.lead_counts_as_hot(g.archived, g.contact_status, g.lead_sentiment))::integer,
      -sum(g.n * private.lead_counts_as_converted(g.contact_status))::integer
    )::private.dataset_stat_delta
    from (
      select o.dataset_id, o.archived, o.opted_out, o.contact_status, o.lead_sentiment, count(*) as n
      from old_rows o
      group by o.dataset_id, o.archived, o.opted_out, o.contact_status, o.lead_sentiment
    ) g
    group by g.dataset_id
  ));
  return null;
end
$$;

-- Trigger (statement): moves changed leads between counters and datasets.
create function private.leads_stats_after_update() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Transition tables cannot be combined with an `update of <columns>` list, so the
  -- cheap path is a comparison: the net delta per dataset is computed in one pass over
  -- both transition tables (no join), and datasets whose counters did not move are not
  -- written (nor locked). A statement that only touches e.g. m1_sent_at or notes costs an
  -- aggregate over its own rows and nothing else: its old and new rows cancel per group.
  perform private.apply_dataset_stat_deltas(array(
    select row(
      g.dataset_id, sum(g.n)::integer,
      sum(g.n * private.lead_counts_as_active(g.archived, g.opted_out, g.contact_status))::integer,
      sum(g.n * private.lead_counts_as_hot(g.archived, g.contact_status, g.lead_sentiment))::integer,
      sum(g.n * private.lead_counts_as_converted(g.contact_status))::integer
    )::private.dataset_stat_delta
    from (
      select c.dataset_id, c.archived, c.opted_out, c.contact_status, c.lead_sentiment, sum(c.sign) as n
      from (
        select n.dataset_id, n.archived, n.opted_out, n.contact_status, n.lead_sentiment, 1 as sign
        from new_rows n
        union all
        select o.dataset_id, o.archived, o.opted_out, o.contact_status, o.lead_sentiment, -1
        from old_rows o
      ) c
      group by c.dataset_id, c.archived, c.opted_out, c.contact_status, c.lead_sentiment
      having sum(c.sign) <> 0
    ) g
    group by g.dataset_id
    having sum(g.n) <> 0
      or sum(g.n * private.lead_counts_as_active(g.archived, g.opted_out, g.contact_status)) <> 0
      or sum(g.n * private.lead_counts_as_hot(g.archived, g.contact_status, g.lead_sentiment)) <> 0
      or sum(g.n * private.lead_counts_as_converted(g.contact_status)) <> 0
  ));
  return null;
end
$$;

-- Trigger (statement): a truncate of leads zeroes every dataset's counters.
create function private.leads_stats_after_truncate() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.datasets
  set total_leads = 0, active_leads = 0, hot_leads = 0, converted_leads = 0
  where total_leads <> 0 or active_leads <> 0 or hot_leads <> 0 or converted_leads <> 0;
  return null;
end
$$;

comment on function private.leads_stats_after_insert() is
  'Trigger (statement, transition table): adds inserted leads to their datasets'' counters.';
comment on function private.leads_stats_after_delete() is
  'Trigger (statement, transition table): removes deleted leads from their datasets'' counters.';
comment on function private.leads_stats_after_update() is
  'Trigger (statement, transition tables): applies the net counter change of updated leads; '
  'writes nothing when no counted attribute changed.';
comment on function private.leads_stats_after_truncate() is 'Trigger: TRUNCATE leads zeroes every dataset''s counters.';

create trigger leads_stats_insert after insert on public.leads
referencing new table as new_rows
for each statement execute function private.leads_stats_after_insert();

create trigger leads_stats_update after update on public.leads
referencing old table as old_rows new table as new_rows
for each statement execute function private.leads_stats_after_update();

create trigger leads_stats_delete after delete on public.leads
referencing old table as old_rows
for each statement execute function private.leads_stats_after_delete();

create trigger leads_stats_truncate after truncate on public.leads
for each statement execute function private.leads_stats_after_truncate();

-- Repair: recounts the lead counters of one dataset (or all when null) from the leads table;
-- returns how many datasets were wrong.
create function private.recount_dataset_stats(p_dataset_id uuid default null) returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid;
  v_fixed integer := 0;
  v_changed integer;
begin
  -- One dataset, or every dataset (in id order) when p_dataset_id is null. The row lock is
  -- taken before counting, so a concurrent writer's trigger waits and then adds its delta
  -- to the recounted figure: nothing is counted twice or lost.
  for v_id in
    select d.id from public.datasets d
    where p_dataset_id is null or d.id = p_dataset_id
    order by d.id
  loop
    perform 1 from public.datasets d where d.id = v_id for no key update;
    update public.datasets d
    set total_leads = s.total, active_leads = s.active, hot_leads = s.hot, converted_leads = s.converted
    from (
      select
        coalesce(sum(g.n), 0)::integer as total,
        coalesce(sum(g.n * private.lead_counts_as_active(g.archived, g.opted_out, g.contact_status)), 0)::integer
        as active,
        coalesce(sum(g.n * private.lead_counts_as_hot(g.archived, g.contact_status, g.lead_sentiment)), 0)::integer
        as hot,
        coalesce(sum(g.n * private.lead_counts_as_converted(g.contact_status)), 0)::integer as converted
      from (
        select l.archived, l.opted_out, l.contact_status, l.lead_sentiment, count(*) as n
        from public.leads l
        where l.dataset_id = v_id
        group by l.archived, l.opted_out, l.contact_status, l.lead_sentiment
      ) g
    ) s
    where d.id = v_id
      and (d.total_leads, d.active_leads, d.hot_leads, d.converted_leads)
      is distinct from (s.total, s.active, s.hot, s.converted);
    get diagnostics v_changed = row_count;
    v_fixed := v_fixed + v_changed;
  end loop;
  return v_fixed;
end
$$;
comment on function private.recount_dataset_stats(uuid) is
  'Repair: recounts the lead counters of one dataset (or all when null) from the leads table; '
  'returns how many datasets were wrong.';

revoke all on function
  private.lead_counts_as_active(boolean, boolean, public.lead_status),
  private.lead_counts_as_hot(boolean, public.lead_status, public.lead_sentiment),
  private.lead_counts_as_converted(public.lead_status)
from public, anon;
grant execute on function
  private.lead_counts_as_active(boolean, boolean, public.lead_status),
  private.lead_counts_as_hot(boolean, public.lead_status, public.lead_sentiment),
  private.lead_counts_as_converted(public.lead_status)
to authenticated, service_role;
revoke all on function private.apply_dataset_stat_deltas(private.dataset_stat_delta []),
  private.recount_dataset_stats(uuid)
from public, anon, authenticated;
grant execute on function private.recount_dataset_stats(uuid) to service_role;

-- lead rules and indexes ------------------------------------------------------------------
-- Lead rules and indexes for lead management: flag timestamps kept by a trigger whatever
-- path changes the flags, a trigram search over names, email and phone digits, and the
-- indexes the lead list pages use.

-- Trigger: archived_at / manual_mode_activated_at are set when the flag turns on and cleared when
-- it turns off.
create function private.stamp_lead_flags() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.archived and (tg_op = 'INSERT' or not old.archived) then
    new.archived_at := now();
  elsif not new.archived then
    new.archived_at := null;
  end if;
  if new.manual_mode and (tg_op = 'INSERT' or not old.manual_mode) then
    new.manual_mode_activated_at := now();
  elsif not new.manual_mode then
    new.manual_mode_activated_at := null;
  end if;
  return new;
end
$$;
comment on function private.stamp_lead_flags() is
  'Trigger: archived_at / manual_mode_activated_at are set when the flag turns on and cleared when it turns off.';

create trigger leads_stamp_flags before insert or update of archived, manual_mode on public.leads
for each row execute function private.stamp_lead_flags();

comment on column public.leads.archived_at is 'When the lead was last archived; null while not archived (kept by trigger).';
comment on column public.leads.manual_mode_activated_at is
  'When manual mode was last switched on; null while off (kept by trigger).';

-- Lead search: trigram matches over leads.search_text (see the column).
create index leads_search_trgm_idx on public.leads using gin (search_text extensions.gin_trgm_ops);

-- Filter-only lists of a dataset: counted from this index alone (index-only scan over the
-- included flags), and a status filter's newest-first page read in index order. It also serves
-- the plain (dataset_id, contact_status) lookups (e.g. a dataset's READY leads).
create index leads_dataset_status_cover_idx on public.leads (dataset_id, contact_status, created_at desc, id desc)
include (archived, manual_mode, lead_sentiment, client_id);

-- Newest-first pages, client-wide and per dataset (the default lead list order).
create index leads_client_created_idx on public.leads (client_id, created_at desc, id desc);
create index leads_dataset_created_idx on public.leads (dataset_id, created_at desc, id desc);

-- assigned_to must be an active member of the lead's own client, whatever path sets it
-- (PostgREST PATCH, update_lead, the service). Checked only when the value changes, so a
-- lead assigned to a since-suspended member can still be edited otherwise. This BEFORE
-- trigger runs before RLS's check, so it answers only a signed-in caller RLS lets write the
-- lead (an active, writing member of its client): anyone else (a read-only member, a user of
-- another client) gets RLS's 42501 whoever the assignee is, instead of a 22023-or-42501 that
-- would tell them who is a member. A user who exists elsewhere and one who does not exist
-- get the same 22023 (this runs before the foreign key to auth.users).
create function private.validate_lead_assignee() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.assigned_to is null or (tg_op = 'UPDATE' and new.assigned_to is not distinct from old.assigned_to) then
    return new;
  end if;
  -- `role` is the caller's (SET ROLE), not this function's owner.
  if current_setting('role', true) in ('authenticated', 'anon')
    and not (new.client_id is not distinct from private.current_client_id() and private.can_write()) then
    return new;
  end if;
  if not exists (
    select from public.client_members m
    where m.user_id = new.assigned_to and m.client_id = new.client_id and m.status = 'active'
  ) then
    perform private.raise_error(400, 'assigned_to must be an active member of the lead''s client');
  end if;
  return new;
end
$$;
comment on function private.validate_lead_assignee() is
  'Trigger: a lead can only be assigned to an active member of its own client (400 otherwise).';

create trigger leads_validate_assignee before insert or update of assigned_to on public.leads
for each row execute function private.validate_lead_assignee();

-- hot lead notification -------------------------------------------------------------------
-- A lead turning HOT (by status or sentiment, from the AI, staff or a webhook) is worth an
-- immediate heads-up. A row trigger with a WHEN clause costs nothing for other updates. It can
-- fire more than once for a lead (booked, then the AI's sentiment HOT): notify_staff's dedupe
-- key hot_lead:<lead> tells each person once.
create function private.notify_hot_lead() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_name text := coalesce(nullif(trim(concat_ws(' ', new.first_name, new.last_name)), ''), new.phone_number);
  v_conversation uuid;
begin
  select c.id into v_conversation from public.conversations c where c.lead_id = new.id;
  -- Once per lead and person (dedupe key hot_lead:<lead>), however often status and sentiment
  -- go back and forth.
  perform private.notify_staff(
    new.client_id, 'hot_lead',
    'Hot lead: ' || v_name,
    coalesce('Latest reply: ' || left(new.latest_lead_reply, 300), v_name || ' is now HOT.'),
    'immediate',
    coalesce('/conversations/' || v_conversation, '/leads/' || new.id),
    jsonb_build_object('lead_id', new.id, 'conversation_id', v_conversation, 'kind', 'hot_lead'),
    new.dataset_id, new.id
  );
  return null;
end
$$;
comment on function private.notify_hot_lead() is
  'Trigger: notifies admins, managers and the assigned rep (once each per lead) when a lead becomes HOT.';
revoke all on function private.notify_hot_lead() from public, anon, authenticated;

create trigger leads_notify_hot after update of contact_status, lead_sentiment on public.leads
  for each row
  when (
    (new.contact_status = 'HOT' or new.lead_sentiment = 'HOT')
    and old.contact_status is distinct from 'HOT' and old.lead_sentiment is distinct from 'HOT'
  )
  execute function private.notify_hot_lead();

-- lead list -------------------------------------------------------------------------------
-- GET /api/leads: the lead list with filters, search (names, email, phone in any format),
-- sort and the API contract's pagination object.

-- Escapes LIKE wildcards (%, _ and backslash) so text matches literally.
create function private.like_escape(p_text text) returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select replace(replace(replace(p_text, '\', '\\'), '%', '\%'), '_', '\_')
$$;
comment on function private.like_escape(text) is 'Escapes LIKE wildcards (%, _ and backslash) so text matches literally.';

-- SQL conditions (each a trigram-indexable LIKE on leads.search_text) for a search box term: every
-- word must match; a phone-like term is matched by its digits without 00 / trunk-0 prefixes.
create function private.lead_search_conditions(p_search text) returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_term text := lower(btrim(p_search));
  v_words text [];
  v_word text;
  v_sql text := '';
begin
  if v_term is null or v_term = '' then
    return '';
  end if;
  if length(v_term) > 200 then
    perform private.raise_error(400, 'search is longer than 200 characters');
  end if;
  -- A term made only of phone characters is one number however it is spaced:
  -- "+44 (0)7700 900-123" -> "447700900123"; "07700 900123" -> "7700900123".
  if v_term ~ '^[0-9+()./ -]+$' and v_term ~ '[0-9]' then
    v_words := array[regexp_replace(v_term, '\s', '', 'g')];
  else
    v_words := regexp_split_to_array(v_term, '\s+');
  end if;
  foreach v_word in array v_words loop
    if v_word ~ '^[0-9+()./-]+$' and v_word ~ '[0-9]' then
      -- Phone digits: drop an international "00" or a national trunk "0", which never
      -- appear in the stored E.164 digits ("+44 (0)..." also loses the bracketed 0).
      v_word := regexp_replace(regexp_replace(v_word, '\(0\)', ''), '[^0-9]', '', 'g');
      v_word := coalesce(nullif(ltrim(v_word, '0'), ''), v_word);
    end if;
    if v_word ~ '^[^@]{3,}@.' then
      -- An email: the domain's trigrams ("gma", "com", ...) are in most rows and make the
      -- index scan slow, so the index looks for "local@" and the row check for the whole.
      v_sql := v_sql || format(
        ' and l.search_text like %L and strpos(l.search_text, %L) > 0',
        '%' || private.like_escape(split_part(v_word, '@', 1)) || '@%', v_word
      );
    else
      v_sql := v_sql || format(' and l.search_text like %L', '%' || private.like_escape(v_word) || '%');
    end if;
  end loop;
  return v_sql;
end
$$;
comment on function private.lead_search_conditions(text) is
  'SQL conditions (each a trigram-indexable LIKE on leads.search_text) for a search box term: '
  'every word must match; a phone-like term is matched by its digits without 00 / trunk-0 prefixes.';

-- GET /api/leads -----------------------------------------------------------------------------
-- The query runs in a security-definer function with the tenancy rule written out, because
-- under RLS Postgres may not use an index for a condition whose operator is not leakproof
-- (LIKE, lower(), enum equality): the trigram index would be ignored and every search would
-- scan the client's leads. The rule applied is exactly the leads select policy: the caller's
-- client, and only the datasets they may see (tests compare both for restricted members).
create function private.list_leads_page(
  p_dataset_id uuid,
  p_status public.lead_status,
  p_sentiment public.lead_sentiment,
  p_search text,
  p_archived boolean,
  p_manual_mode boolean,
  p_page integer,
  p_limit integer,
  p_sort text,
  p_order text
) returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_client uuid := private.require_member();
  v_visible uuid [] := private.visible_dataset_ids();
  v_assigned_only boolean := private.sees_only_assigned_leads();
  v_page integer := coalesce(p_page, 1);
  v_limit integer := coalesce(p_limit, 50);
  v_order text := lower(coalesce(p_order, 'desc'));
  v_sort text;
  v_search text;
  v_filters text := '';
  v_scope text := ' and l.client_id = $6';
  v_total bigint;
  v_rows jsonb;
begin
  if v_page < 1 then
    perform private.raise_error(400, format('page must be 1 or more (got %s)', v_page));
  end if;
  if v_limit not between 1 and 100 then
    perform private.raise_error(400, format('limit must be between 1 and 100 (got %s)', v_limit));
  end if;
  if v_order not in ('asc', 'desc') then
    perform private.raise_error(400, format('order must be asc or desc (got %s)', p_order));
  end if;
  v_sort := case coalesce(p_sort, 'created')
    when 'created' then 'l.created_at %1$s, l.id %1$s'
    when 'name' then 'lower(l.last_name) %1$s nulls last, lower(l.first_name) %1$s nulls last, l.id %1$s'
    when 'status' then 'l.contact_status %1$s, l.created_at desc, l.id desc'
    when 'reply_date' then 'l.reply_received_at %1$s nulls last, l.created_at desc, l.id desc'
  end;
  if v_sort is null then
    perform private.raise_error(400, format('sort must be one of name, status, reply_date, created (got %s)', p_sort));
  end if;
  v_sort := format(v_sort, v_order);
  if p_dataset_id is not null then
    -- One check of the dataset instead of a tenancy test per lead: a visible dataset's
    -- leads are all the caller's (composite foreign key), an invisible one lists nothing.
    if not exists (
      select from public.datasets d
      where d.id = p_dataset_id and d.client_id = v_client and (v_visible is null or d.id = any(v_visible))
    ) then
      return jsonb_build_object('leads', '[]'::jsonb, 'pagination', jsonb_build_object(
        'page', v_page, 'limit', v_limit, 'total', 0, 'pages', 0
      ));
    end if;
    v_scope := '';
  elsif v_visible is not null then
    v_scope := v_scope || ' and l.dataset_id = any($7)';
  end if;
  if v_assigned_only then
    -- A member without can_view_all_leads and without a dataset list: its assigned leads only.
    v_scope := v_scope || ' and l.assigned_to = auth.uid()';
  end if;

  -- Only the filters given become SQL, so every call gets a plan for exactly its filters.
  if p_dataset_id is not null then v_filters := v_filters || ' and l.dataset_id = $1'; end if;
  if p_status is not null then v_filters := v_filters || ' and l.contact_status = $2'; end if;
  if p_sentiment is not null then v_filters := v_filters || ' and l.lead_sentiment = $3'; end if;
  if p_archived is not null then v_filters := v_filters || ' and l.archived = $4'; end if;
  if p_manual_mode is not null then v_filters := v_filters || ' and l.manual_mode = $5'; end if;
  v_search := private.lead_search_conditions(p_search);

  if v_search <> '' then
    -- A search: the trigram index finds the matches and each is rechecked on its row, so
    -- one pass collects them; the count and the sorted page both come from that set,
    -- instead of a second, separately planned scan for the page.
    execute format(
      $q$
      with m as materialized (
        select l.id, l.first_name, l.last_name, l.phone_number, l.email, l.postcode,
          l.contact_status, l.lead_sentiment, l.latest_lead_reply, l.reply_received_at,
          l.call_booked, l.call_booked_time, l.manual_mode, l.archived, l.created_at
        from public.leads l
        where true %s
      )
      select (select count(*) from m),
        (select coalesce(jsonb_agg(to_jsonb(l)), '[]'::jsonb)
         from (select * from m l order by %s limit %s offset %s) l)
      $q$,
      v_scope || v_filters || v_search, v_sort, v_limit, (v_page::bigint - 1) * v_limit
    ) into v_total, v_rows
    using p_dataset_id, p_status, p_sentiment, p_archived, p_manual_mode, v_client, v_visible;
  else
    if v_filters in ('', ' and l.dataset_id = $1') and not v_assigned_only then
      -- No filter but the dataset: the exact count is the datasets' trigger-kept counter
      -- (a lead is visible exactly when its dataset is, unless the caller sees only its
      -- assigned leads), not a scan of the leads.
      execute 'select coalesce(sum(d.total_leads), 0) from public.datasets d'
        || ' where d.client_id = $2 and ($1 is null or d.id = $1) and ($3 is null or d.id = any($3))'
      into v_total using p_dataset_id, v_client, v_visible;
    else
      -- Filters of a dataset are counted from the covering index (index-only scan).
      execute 'select count(*) from public.leads l where true' || v_scope || v_filters
      into v_total using p_dataset_id, p_status, p_sentiment, p_archived, p_manual_mode, v_client, v_visible;
    end if;
    execute format(
      $q$
      select coalesce(jsonb_agg(jsonb_build_object(
          'id', l.id, 'first_name', l.first_name, 'last_name', l.last_name,
          'phone_number', l.phone_number, 'email', l.email, 'postcode', l.postcode,
          'contact_status', l.contact_status, 'lead_sentiment', l.lead_sentiment,
          'latest_lead_reply', l.latest_lead_reply, 'reply_received_at', l.reply_received_at,
          'call_booked', l.call_booked, 'call_booked_time', l.call_booked_time,
          'manual_mode', l.manual_mode, 'archived', l.archived, 'created_at', l.created_at
        )), '[]'::jsonb)
      from (
        select l.* from public.leads l
        where true %s
        order by %s
        limit %s offset %s
      ) l
      $q$,
      v_scope || v_filters, v_sort, v_limit, (v_page::bigint - 1) * v_limit
    ) into v_rows using p_dataset_id, p_status, p_sentiment, p_archived, p_manual_mode, v_client, v_visible;
  end if;

  return jsonb_build_object(
    'leads', v_rows,
    'pagination', jsonb_build_object(
      'page', v_page, 'limit', v_limit, 'total', v_total, 'pages', ceil(v_total::numeric / v_limit)::bigint
    )
  );
end
$$;
comment on function private.list_leads_page(
  uuid, public.lead_status, public.lead_sentiment, text, boolean, boolean, integer, integer, text, text
) is
  'Body of public.list_leads. Security definer so indexes serve non-leakproof conditions; applies the '
  'leads select policy explicitly (caller''s client, visible datasets only).';

-- GET /api/leads: visible leads filtered by dataset, status, sentiment, archived, manual mode and a
-- search over names, email and phone (any format); sorted by name | status | reply_date | created;
-- page >= 1, limit 1..100.
create function public.list_leads(
  dataset_id uuid default null,
  status public.lead_status default null,
  sentiment public.lead_sentiment default null,
  search text default null,
  archived boolean default null,
  manual_mode boolean default null,
  page integer default 1,
  "limit" integer default 50,
  sort text default 'created',
  "order" text default 'desc'
) returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.list_leads_page(
    dataset_id, status, sentiment, search, archived, manual_mode, page, "limit", sort, "order"
  )
$$;
comment on function public.list_leads(
  uuid, public.lead_status, public.lead_sentiment, text, boolean, boolean, integer, integer, text, text
) is
  'GET /api/leads: visible leads filtered by dataset, status, sentiment, archived, manual mode and a '
  'search over names, email and phone (any format); sorted by name | status | reply_date | created; '
  'page >= 1, limit 1..100. Returns {"leads": [...], "pagination": {page, limit, total, pages}}.';

revoke all on function
  private.list_leads_page(uuid, public.lead_status, public.lead_sentiment, text, boolean, boolean, integer, integer, text, text),
  private.like_escape(text), private.lead_search_conditions(text),
  public.list_leads(uuid, public.lead_status, public.lead_sentiment, text, boolean, boolean, integer, integer, text, text)
from public, anon;
grant execute on function
  private.list_leads_page(uuid, public.lead_status, public.lead_sentiment, text, boolean, boolean, integer, integer, text, text),
  private.like_escape(text), private.lead_search_conditions(text),
  public.list_leads(uuid, public.lead_status, public.lead_sentiment, text, boolean, boolean, integer, integer, text, text)
to authenticated, service_role;

-- lead RPCs -------------------------------------------------------------------------------
-- Lead RPCs in the API contract's shapes (GET/PUT /api/leads/[id], archive and manual-mode toggles).
-- Security invoker: RLS on leads decides visibility (404 when a lead is not visible) and
-- the column grants decide what may change; triggers keep stats, timestamps and assignees right.

-- GET /api/leads/[id] ------------------------------------------------------------------------
create function private.get_lead(p_id uuid) returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_lead public.leads;
  v_conversation jsonb;
  v_insights jsonb;
begin
  select l.* into v_lead from public.leads l where l.id = p_id;
  if not found then
    perform private.raise_error(404, format('lead %s not found', p_id));
  end if;
  select jsonb_build_object(
    'id', c.id, 'message_count', c.message_count, 'last_message_at', c.last_message_at,
    'status', c.status, 'sentiment', c.sentiment
  ) into v_conversation
  from public.conversations c where c.lead_id = p_id;
  select coalesce(jsonb_agg(jsonb_build_object(
    'id', i.id, 'severity', i.severity, 'title', i.title, 'status', i.status, 'created_at', i.created_at
  ) order by i.created_at desc, i.id), '[]'::jsonb) into v_insights
  from public.sophie_insights i where i.lead_id = p_id;
  return jsonb_build_object('lead', to_jsonb(v_lead) - 'search_text' || jsonb_build_object(
    'conversation', v_conversation, 'sophie_insights', v_insights
  ));
end
$$;
comment on function private.get_lead(uuid) is 'Body of public.get_lead (security invoker).';

-- GET /api/leads/[id]: every lead column plus "conversation" (summary or null) and
-- "sophie_insights"; 404 when not visible.
create function public.get_lead(id uuid) returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.get_lead(id)
$$;
comment on function public.get_lead(uuid) is
  'GET /api/leads/[id]: every lead column plus "conversation" (summary or null) and "sophie_insights"; '
  '404 when not visible.';

-- The lead the caller is about to change: 404 when not visible, 403 for read-only members.
create function private.writable_lead(p_id uuid) returns public.leads
language plpgsql
stable
set search_path = ''
as $$
declare
  v_lead public.leads;
begin
  -- Runs as the caller: RLS hides other tenants' and restricted datasets' leads (404);
  -- read-only members see the lead but may not change it (403).
  select l.* into v_lead from public.leads l where l.id = p_id;
  if not found then
    perform private.raise_error(404, format('lead %s not found', p_id));
  end if;
  if not private.can_write() then
    perform private.raise_error(403, 'read-only members cannot change leads');
  end if;
  return v_lead;
end
$$;
comment on function private.writable_lead(uuid) is
  'The lead the caller is about to change: 404 when not visible, 403 for read-only members.';

-- PUT /api/leads/[id] ------------------------------------------------------------------------
create function private.update_lead(p_id uuid, p_patch jsonb) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_lead public.leads;
  v_email text;
begin
  perform private.reject_unknown_keys(p_patch, array[
    'first_name', 'last_name', 'email', 'postcode', 'notes', 'contact_status', 'lead_sentiment',
    'manual_mode', 'archived', 'assigned_to'
  ]);
  v_lead := private.writable_lead(p_id);
  if p_patch ? 'email' then
    v_email := lower(private.text_field(p_patch, 'email'));
    if v_email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' then
      perform private.raise_error(400, format('email is not a valid address: %s', v_email));
    end if;
  end if;

  update public.leads l set
    first_name = case when p_patch ? 'first_name' then private.text_field(p_patch, 'first_name') else l.first_name end,
    last_name = case when p_patch ? 'last_name' then private.text_field(p_patch, 'last_name') else l.last_name end,
    email = case when p_patch ? 'email' then v_email else l.email end,
    postcode = case when p_patch ? 'postcode' then private.text_field(p_patch, 'postcode') else l.postcode end,
    notes = case when p_patch ? 'notes' then private.text_field(p_patch, 'notes') else l.notes end,
    contact_status = case
      when p_patch ? 'contact_status' then private.enum_field(
          p_patch, 'contact_status', enum_range(null::public.lead_status)::text [], false
        )::public.lead_status
      else l.contact_status
    end,
    lead_sentiment = case
      when p_patch ? 'lead_sentiment' then private.enum_field(
          p_patch, 'lead_sentiment', enum_range(null::public.lead_sentiment)::text [], true
        )::public.lead_sentiment
      else l.lead_sentiment
    end,
    manual_mode = case when p_patch ? 'manual_mode' then private.boolean_field(p_patch, 'manual_mode') else l.manual_mode end,
    archived = case when p_patch ? 'archived' then private.boolean_field(p_patch, 'archived') else l.archived end,
    assigned_to = case when p_patch ? 'assigned_to' then private.uuid_field(p_patch, 'assigned_to') else l.assigned_to end
  where l.id = v_lead.id
  returning l.* into v_lead;
  return jsonb_build_object('lead', to_jsonb(v_lead) - 'search_text');
end
$$;
comment on function private.update_lead(uuid, jsonb) is 'Body of public.update_lead (security invoker).';

-- PUT /api/leads/[id]: patches only the API contract's fields (first_name, last_name, email,
-- postcode, notes, contact_status, lead_sentiment, manual_mode, archived, assigned_to); 400 for
-- other keys or bad values.
create function public.update_lead(id uuid, patch jsonb) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.update_lead(id, patch)
$$;
comment on function public.update_lead(uuid, jsonb) is
  'PUT /api/leads/[id]: patches only the API contract''s fields (first_name, last_name, email, postcode, notes, '
  'contact_status, lead_sentiment, manual_mode, archived, assigned_to); 400 for other keys or bad values.';

-- POST /api/leads/[id]/archive ---------------------------------------------------------------
create function private.toggle_lead_archive(p_lead_id uuid) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_lead public.leads := private.writable_lead(p_lead_id);
begin
  update public.leads l set archived = not l.archived
  where l.id = v_lead.id
  returning l.* into v_lead;
  return jsonb_build_object('lead_id', v_lead.id, 'archived', v_lead.archived, 'archived_at', v_lead.archived_at);
end
$$;
comment on function private.toggle_lead_archive(uuid) is 'Body of public.toggle_lead_archive (security invoker).';

-- POST /api/leads/[id]/archive: flips archived; returns {"lead_id", "archived", "archived_at"}.
create function public.toggle_lead_archive(id uuid) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.toggle_lead_archive(id)
$$;
comment on function public.toggle_lead_archive(uuid) is
  'POST /api/leads/[id]/archive: flips archived; returns {"lead_id", "archived", "archived_at"}.';

-- POST /api/leads/[id]/manual-mode ------------------------------------------------------------
create function private.set_lead_manual_mode(p_lead_id uuid, p_enabled boolean) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_lead public.leads := private.writable_lead(p_lead_id);
begin
  if p_enabled is null then
    perform private.raise_error(400, 'enabled must be true or false');
  end if;
  update public.leads l set manual_mode = p_enabled
  where l.id = v_lead.id
  returning l.* into v_lead;
  return jsonb_build_object(
    'lead_id', v_lead.id, 'manual_mode', v_lead.manual_mode,
    'manual_mode_activated_at', v_lead.manual_mode_activated_at
  );
end
$$;
comment on function private.set_lead_manual_mode(uuid, boolean) is 'Body of public.set_lead_manual_mode (security invoker).';

-- POST /api/leads/[id]/manual-mode: switches manual mode (the AI stays silent while on); returns
-- {"lead_id", "manual_mode", "manual_mode_activated_at"}.
create function public.set_lead_manual_mode(id uuid, enabled boolean) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.set_lead_manual_mode(id, enabled)
$$;
comment on function public.set_lead_manual_mode(uuid, boolean) is
  'POST /api/leads/[id]/manual-mode: switches manual mode (the AI stays silent while on); '
  'returns {"lead_id", "manual_mode", "manual_mode_activated_at"}.';

revoke all on function private.writable_lead(uuid),
  private.get_lead(uuid), private.update_lead(uuid, jsonb), private.toggle_lead_archive(uuid),
  private.set_lead_manual_mode(uuid, boolean),
  public.get_lead(uuid), public.update_lead(uuid, jsonb), public.toggle_lead_archive(uuid),
  public.set_lead_manual_mode(uuid, boolean)
from public, anon;
grant execute on function private.writable_lead(uuid),
  private.get_lead(uuid), private.update_lead(uuid, jsonb), private.toggle_lead_archive(uuid),
  private.set_lead_manual_mode(uuid, boolean),
  public.get_lead(uuid), public.update_lead(uuid, jsonb), public.toggle_lead_archive(uuid),
  public.set_lead_manual_mode(uuid, boolean)
to authenticated, service_role;
