-- Analytics: the dashboard's figures (overview, campaign progress, dataset comparison,
-- Sophie's measured impact), read from counters instead of scanning messages.
--   * four counter tables, one row per (dataset, client-local day, attributes), kept exact by
--     set-based, statement-level triggers on messages, leads and bookings in the same
--     transaction as the change (as the dataset counters of 10 datasets are): a statement
--     touching a million rows writes each affected counter row once with the summed delta of
--     its transition tables; increments commute, so concurrent writers never lose a count;
--       analytics_message_days  messages by local day and category, a column per status
--       analytics_lead_groups   leads by the attributes the figures read (status, sentiment,
--                               flags, sequence position): the snapshot tallies
--       analytics_lead_days     leads by the local day of their M1 and their outcome
--                               (replied, booked, converted): the cohorts behind the rates
--       analytics_booking_days  bookings by the local day they were made and their status
--   * a day is the client's local calendar day (clients.timezone, DST-correct through
--     `at time zone`); changing a client's time zone rebuilds its counters;
--   * private.recount_analytics repairs the counters from the raw rows with the definitions
--     private.analytics_*_of, which the pgTAP suite checks against the triggers' figures;
--     triggers take a shared advisory lock per dataset and the repair an exclusive one, so a
--     repair never races a writer (writers never block each other);
--   * RLS on the counters: a member reads the datasets it may see (01 tenancy's rules); a member
--     restricted to its assigned leads reads none, and its figures are counted from the raw
--     rows RLS shows it;
--   * the RPCs: analytics_overview, campaign_progress (the estimate is 20 outreach's
--     private.campaign_progress), dataset_comparison, sophie_impact (lessons applied through
--     30 ai's prompt versions, bookings of 40 bookings within the attribution window, a pooled
--     two-proportion z-test).

-- counter tables ------------------------------------------------------------------------
create table public.analytics_message_days (
  client_id uuid not null,
  dataset_id uuid not null,
  day date not null,
  message_category public.message_category not null,
  draft bigint not null default 0,
  pending bigint not null default 0,
  sending bigint not null default 0,
  queued bigint not null default 0,
  sent bigint not null default 0,
  delivered bigint not null default 0,
  undelivered bigint not null default 0,
  failed bigint not null default 0,
  received bigint not null default 0,
  canceled bigint not null default 0,
  messages bigint generated always as (
    draft + pending + sending + queued + sent + delivered + undelivered + failed + received + canceled
  ) stored,
  primary key (dataset_id, day, message_category),
  foreign key (dataset_id, client_id) references public.datasets (id, client_id) on delete cascade
);
comment on table public.analytics_message_days is
  'Counter: messages of a dataset per client-local day and category, one column per message status. Kept by '
  'triggers on messages; read by the analytics RPCs. Messages from unknown numbers (no dataset) are not counted.';
comment on column public.analytics_message_days.messages is 'Every message of the row, whatever its status.';
comment on column public.analytics_message_days.day is
  'The client''s local day of the message: sent_at, else received_at, else created_at.';
create index analytics_message_days_client_idx on public.analytics_message_days (client_id, day);

create table public.analytics_lead_groups (
  client_id uuid not null,
  dataset_id uuid not null,
  contact_status public.lead_status not null,
  lead_sentiment public.lead_sentiment,
  archived boolean not null,
  opted_out boolean not null,
  manual_mode boolean not null,
  replied boolean not null,
  call_booked boolean not null,
  sequence_step smallint not null,
  last_step smallint not null,
  leads bigint not null default 0,
  foreign key (dataset_id, client_id) references public.datasets (id, client_id) on delete cascade,
  constraint analytics_lead_groups_key unique nulls not distinct (
    dataset_id, contact_status, lead_sentiment, archived, opted_out, manual_mode, replied, call_booked,
    sequence_step, last_step
  )
);
comment on table public.analytics_lead_groups is
  'Counter: leads of a dataset grouped by the attributes the analytics read. Kept by triggers on leads.';
comment on column public.analytics_lead_groups.replied is 'The lead has replied at least once (reply_received_at set).';
comment on column public.analytics_lead_groups.last_step is
  'The last sequence step sent to the lead: 0 none, 1 M1, 2 M2, 3 M3 (from m1/m2/m3_sent_at).';
comment on column public.analytics_lead_groups.sequence_step is 'leads.sequence_step: steps queued so far.';
create index analytics_lead_groups_client_idx on public.analytics_lead_groups (client_id);

create table public.analytics_lead_days (
  client_id uuid not null,
  dataset_id uuid not null,
  day date not null,
  replied boolean not null,
  call_booked boolean not null,
  converted boolean not null,
  leads bigint not null default 0,
  primary key (dataset_id, day, replied, call_booked, converted),
  foreign key (dataset_id, client_id) references public.datasets (id, client_id) on delete cascade
);
comment on table public.analytics_lead_days is
  'Counter: leads of a dataset that had their M1, by the client-local day of the M1 (leads.m1_sent_at) and '
  'their outcome so far. Kept by triggers on leads; the period cohorts of the overview''s rates.';
comment on column public.analytics_lead_days.converted is 'contact_status = CONVERTED.';
create index analytics_lead_days_client_idx on public.analytics_lead_days (client_id, day);

create table public.analytics_booking_days (
  client_id uuid not null,
  dataset_id uuid not null,
  day date not null,
  status public.booking_status not null,
  bookings bigint not null default 0,
  primary key (dataset_id, day, status),
  foreign key (dataset_id, client_id) references public.datasets (id, client_id) on delete cascade
);
comment on table public.analytics_booking_days is
  'Counter: bookings of a dataset per client-local day they were made (created_at) and status. Kept by '
  'triggers on bookings.';
create index analytics_booking_days_client_idx on public.analytics_booking_days (client_id, day);

alter table public.analytics_message_days enable row level security;
alter table public.analytics_lead_groups enable row level security;
alter table public.analytics_booking_days enable row level security;
alter table public.analytics_lead_days enable row level security;

-- Counters are per dataset: members who may see the dataset read them. A member that sees
-- only its assigned leads reads none (a dataset's figures would tell about leads it may not
-- see); the analytics RPCs count its visible rows directly instead. One helper, evaluated
-- once per statement, gives the readable datasets, so a policy costs one lookup and the
-- primary keys (dataset_id, day, ...) serve the scans.
create function private.analytics_dataset_ids() returns uuid []
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  -- The rules of private.visible_dataset_ids and sees_only_assigned_leads, read from one
  -- membership lookup: admins and can_view_all_leads see every dataset of the client, a
  -- dataset list restricts to it, and without a list (assigned leads only) no counter is readable.
  return coalesce((
    select case
      when m.role = 'admin' or m.can_view_all_leads then
        array(select d.id from public.datasets d where d.client_id = m.client_id)
      when m.allowed_dataset_ids is not null then
        array(select d.id from public.datasets d where d.client_id = m.client_id and d.id = any (m.allowed_dataset_ids))
      else '{}'::uuid []
    end
    from private.current_membership() m
    where m.user_id is not null
  ), '{}'::uuid []);
end
$$;
comment on function private.analytics_dataset_ids() is
  'The datasets whose analytics counters the caller may read: those of its client it may see; none for a '
  'member restricted to its assigned leads, or for anyone without an active membership.';
revoke all on function private.analytics_dataset_ids() from public, anon;
grant execute on function private.analytics_dataset_ids() to authenticated, service_role;

-- Members read the message counters of the datasets they may read (analytics_dataset_ids).
create policy "members read message counters of visible datasets" on public.analytics_message_days
  for select to authenticated
  using (
    dataset_id = any ((select private.analytics_dataset_ids())::uuid [])
  );
-- Same rule as the message counters.
create policy "members read lead counters of visible datasets" on public.analytics_lead_groups
  for select to authenticated
  using (
    dataset_id = any ((select private.analytics_dataset_ids())::uuid [])
  );
-- Same rule as the message counters.
create policy "members read lead cohort counters of visible datasets" on public.analytics_lead_days
  for select to authenticated
  using (
    dataset_id = any ((select private.analytics_dataset_ids())::uuid [])
  );
-- Same rule as the message counters.
create policy "members read booking counters of visible datasets" on public.analytics_booking_days
  for select to authenticated
  using (
    dataset_id = any ((select private.analytics_dataset_ids())::uuid [])
  );

revoke all on public.analytics_message_days, public.analytics_lead_groups, public.analytics_lead_days,
  public.analytics_booking_days
from anon, authenticated;
grant select on public.analytics_message_days, public.analytics_lead_groups, public.analytics_lead_days,
  public.analytics_booking_days
to authenticated, service_role;

-- the definitions: counters recomputed from the raw rows ---------------------------------
-- Security invoker: run by the repair (as its owner) they count every row; run as a member
-- they count the rows RLS lets that member see (the RPCs' path for assigned-leads-only members,
-- and the naive baseline of the benchmark).

-- Messages per dataset, local day and category, counted per status.
create function private.analytics_message_days_of(p_dataset_id uuid default null)
returns setof public.analytics_message_days
language sql
stable
security invoker
set search_path = ''
as $$
  select m.client_id, m.dataset_id,
    (coalesce(m.sent_at, m.received_at, m.created_at) at time zone c.timezone)::date,
    m.message_category,
    count(*) filter (where m.status = 'draft'),
    count(*) filter (where m.status = 'pending'),
    count(*) filter (where m.status = 'sending'),
    count(*) filter (where m.status = 'queued'),
    count(*) filter (where m.status = 'sent'),
    count(*) filter (where m.status = 'delivered'),
    count(*) filter (where m.status = 'undelivered'),
    count(*) filter (where m.status = 'failed'),
    count(*) filter (where m.status = 'received'),
    count(*) filter (where m.status = 'canceled'),
    count(*)
  from public.messages m
  join public.clients c on c.id = m.client_id
  where m.dataset_id is not null and (p_dataset_id is null or m.dataset_id = p_dataset_id)
  group by 1, 2, 3, 4
$$;
comment on function private.analytics_message_days_of(uuid) is
  'Definition of analytics_message_days recomputed from messages (one dataset, or all visible when null).';

-- Leads per dataset and counted attributes.
create function private.analytics_lead_groups_of(p_dataset_id uuid default null)
returns setof public.analytics_lead_groups
language sql
stable
security invoker
set search_path = ''
as $$
  select l.client_id, l.dataset_id, l.contact_status, l.lead_sentiment, l.archived, l.opted_out, l.manual_mode,
    l.reply_received_at is not null, l.call_booked, l.sequence_step,
    (case when l.m3_sent_at is not null then 3 when l.m2_sent_at is not null then 2
      when l.m1_sent_at is not null then 1 else 0 end)::smallint,
    count(*)
  from public.leads l
  where p_dataset_id is null or l.dataset_id = p_dataset_id
  group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
$$;
comment on function private.analytics_lead_groups_of(uuid) is
  'Definition of analytics_lead_groups recomputed from leads (one dataset, or all visible when null).';

-- Leads that had their M1, per dataset, local day of the M1 and outcome.
create function private.analytics_lead_days_of(p_dataset_id uuid default null)
returns setof public.analytics_lead_days
language sql
stable
security invoker
set search_path = ''
as $$
  select l.client_id, l.dataset_id, (l.m1_sent_at at time zone c.timezone)::date,
    l.reply_received_at is not null, l.call_booked, l.contact_status = 'CONVERTED', count(*)
  from public.leads l
  join public.clients c on c.id = l.client_id
  where l.m1_sent_at is not null and (p_dataset_id is null or l.dataset_id = p_dataset_id)
  group by 1, 2, 3, 4, 5, 6
$$;
comment on function private.analytics_lead_days_of(uuid) is
  'Definition of analytics_lead_days recomputed from leads (one dataset, or all visible when null).';

-- Bookings per dataset, local day made and status.
create function private.analytics_booking_days_of(p_dataset_id uuid default null)
returns setof public.analytics_booking_days
language sql
stable
security invoker
set search_path = ''
as $$
  select b.client_id, b.dataset_id, (b.created_at at time zone c.timezone)::date, b.status, count(*)
  from public.bookings b
  join public.clients c on c.id = b.client_id
  where p_dataset_id is null or b.dataset_id = p_dataset_id
  group by 1, 2, 3, 4
$$;
comment on function private.analytics_booking_days_of(uuid) is
  'Definition of analytics_booking_days recomputed from bookings (one dataset, or all visible when null).';

-- Shared advisory locks on the datasets a statement changes, in one order (writers never
-- block each other; a repair, which takes them exclusively, waits for them and they for it).
create function private.analytics_lock_datasets(p_dataset_ids uuid [], p_exclusive boolean default false)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_id uuid;
begin
  for v_id in select distinct x from unnest(p_dataset_ids) x where x is not null order by 1 loop
    if p_exclusive then
      perform pg_catalog.pg_advisory_xact_lock(5090, pg_catalog.hashtext(v_id::text));
    else
      perform pg_catalog.pg_advisory_xact_lock_shared(5090, pg_catalog.hashtext(v_id::text));
    end if;
  end loop;
end
$$;
comment on function private.analytics_lock_datasets(uuid [], boolean) is
  'Advisory transaction locks (class 5090) on datasets'' analytics counters: shared for writers, '
  'exclusive for the repair.';

-- triggers: messages ---------------------------------------------------------------------
-- Each statement's deltas are grouped by counter key and upserted in key order. A delete
-- skips datasets deleted by the same statement (their counter rows went with them).
create function private.analytics_messages_inserted() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.analytics_lock_datasets(array(select distinct n.dataset_id from new_rows n));
  insert into public.analytics_message_days as a (client_id, dataset_id, day, message_category, draft, pending, sending, queued, sent, delivered, undelivered, failed, received, canceled)
  select n.client_id, n.dataset_id, (coalesce(n.sent_at, n.received_at, n.created_at) at time zone c.timezone)::date,
    n.message_category,
    count(*) filter (where n.status = 'draft'),
    count(*) filter (where n.status = 'pending'),
    count(*) filter (where n.status = 'sending'),
    count(*) filter (where n.status = 'queued'),
    count(*) filter (where n.status = 'sent'),
    count(*) filter (where n.status = 'delivered'),
    count(*) filter (where n.status = 'undelivered'),
    count(*) filter (where n.status = 'failed'),
    count(*) filter (where n.status = 'received'),
    count(*) filter (where n.status = 'canceled')
  from new_rows n
  join public.clients c on c.id = n.client_id
  where n.dataset_id is not null
  group by 1, 2, 3, 4
  order by 2, 3, 4
  on conflict (dataset_id, day, message_category)
  do update set draft = a.draft + excluded.draft,
    pending = a.pending + excluded.pending,
    sending = a.sending + excluded.sending,
    queued = a.queued + excluded.queued,
    sent = a.sent + excluded.sent,
    delivered = a.delivered + excluded.delivered,
    undelivered = a.undelivered + excluded.undelivered,
    failed = a.failed + excluded.failed,
    received = a.received + excluded.received,
    canceled = a.canceled + excluded.canceled;
  return null;
end
$$;
comment on function private.analytics_messages_inserted() is
  'Trigger (statement, transition table): adds inserted messages to analytics_message_days.';

-- Takes deleted messages off their counters, in key order.
create function private.analytics_messages_deleted() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.analytics_lock_datasets(array(select distinct o.dataset_id from old_rows o));
  insert into public.analytics_message_days as a (client_id, dataset_id, day, message_category, draft, pending, sending, queued, sent, delivered, undelivered, failed, received, canceled)
  select o.client_id, o.dataset_id, (coalesce(o.sent_at, o.received_at, o.created_at) at time zone c.timezone)::date,
    o.message_category,
    -count(*) filter (where o.status = 'draft'),
    -count(*) filter (where o.status = 'pending'),
    -count(*) filter (where o.status = 'sending'),
    -count(*) filter (where o.status = 'queued'),
    -count(*) filter (where o.status = 'sent'),
    -count(*) filter (where o.status = 'delivered'),
    -count(*) filter (where o.status = 'undelivered'),
    -count(*) filter (where o.status = 'failed'),
    -count(*) filter (where o.status = 'received'),
    -count(*) filter (where o.status = 'canceled')
  from old_rows o
  join public.clients c on c.id = o.client_id
  where o.dataset_id is not null and exists (select from public.datasets d where d.id = o.dataset_id)
  group by 1, 2, 3, 4
  order by 2, 3, 4
  on conflict (dataset_id, day, message_category)
  do update set draft = a.draft + excluded.draft,
    pending = a.pending + excluded.pending,
    sending = a.sending + excluded.sending,
    queued = a.queued + excluded.queued,
    sent = a.sent + excluded.sent,
    delivered = a.delivered + excluded.delivered,
    undelivered = a.undelivered + excluded.undelivered,
    failed = a.failed + excluded.failed,
    received = a.received + excluded.received,
    canceled = a.canceled + excluded.canceled;
  return null;
end
$$;
comment on function private.analytics_messages_deleted() is
  'Trigger (statement, transition table): removes deleted messages from analytics_message_days '
  '(skipped for datasets deleted by the same statement).';

-- Moves updated messages from their old counter keys to their new ones.
create function private.analytics_messages_updated() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Old rows count -1 and new rows +1 under their keys: an update that moves no key (content,
  -- twilio_sid, ai_metadata, ...) nets to zero per key and writes nothing.
  perform private.analytics_lock_datasets(array(
    select n.dataset_id from new_rows n union select o.dataset_id from old_rows o
  ));
  insert into public.analytics_message_days as a (client_id, dataset_id, day, message_category, draft, pending, sending, queued, sent, delivered, undelivered, failed, received, canceled)
  select d.client_id, d.dataset_id, d.day, d.message_category, d.draft, d.pending, d.sending, d.queued, d.sent, d.delivered, d.undelivered, d.failed, d.received, d.canceled
  from (
    select x.client_id, x.dataset_id, (x.at_time at time zone c.timezone)::date as day, x.message_category,
      coalesce(sum(x.sign) filter (where x.status = 'draft'), 0) as draft,
      coalesce(sum(x.sign) filter (where x.status = 'pending'), 0) as pending,
      coalesce(sum(x.sign) filter (where x.status = 'sending'), 0) as sending,
      coalesce(sum(x.sign) filter (where x.status = 'queued'), 0) as queued,
      coalesce(sum(x.sign) filter (where x.status = 'sent'), 0) as sent,
      coalesce(sum(x.sign) filter (where x.status = 'delivered'), 0) as delivered,
      coalesce(sum(x.sign) filter (where x.status = 'undelivered'), 0) as undelivered,
      coalesce(sum(x.sign) filter (where x.status = 'failed'), 0) as failed,
      coalesce(sum(x.sign) filter (where x.status = 'received'), 0) as received,
      coalesce(sum(x.sign) filter (where x.status = 'canceled'), 0) as canceled
    from (
      select n.client_id, n.dataset_id, coalesce(n.sent_at, n.received_at, n.created_at) as at_time,
        n.message_category, n.status, 1 as sign
      from new_rows n
      where n.dataset_id is not null
      union all
      select o.client_id, o.dataset_id, coalesce(o.sent_at, o.received_at, o.created_at),
        o.message_category, o.status, -1
      from old_rows o
      where o.dataset_id is not null
    ) x
    join public.clients c on c.id = x.client_id
    group by 1, 2, 3, 4
  ) d
  where d.draft <> 0 or d.pending <> 0 or d.sending <> 0 or d.queued <> 0 or d.sent <> 0 or d.delivered <> 0 or d.undelivered <> 0 or d.failed <> 0 or d.received <> 0 or d.canceled <> 0
  order by 2, 3, 4
  on conflict (dataset_id, day, message_category)
  do update set draft = a.draft + excluded.draft,
    pending = a.pending + excluded.pending,
    sending = a.sending + excluded.sending,
    queued = a.queued + excluded.queued,
    sent = a.sent + excluded.sent,
    delivered = a.delivered + excluded.delivered,
    undelivered = a.undelivered + excluded.undelivered,
    failed = a.failed + excluded.failed,
    received = a.received + excluded.received,
    canceled = a.canceled + excluded.canceled;
  return null;
end
$$;
comment on function private.analytics_messages_updated() is
  'Trigger (statement, transition tables): applies the net change of updated messages to analytics_message_days; '
  'writes nothing when no counted attribute moved.';

create trigger messages_analytics_insert after insert on public.messages
referencing new table as new_rows
for each statement execute function private.analytics_messages_inserted();
create trigger messages_analytics_update after update on public.messages
referencing old table as old_rows new table as new_rows
for each statement execute function private.analytics_messages_updated();
create trigger messages_analytics_delete after delete on public.messages
referencing old table as old_rows
for each statement execute function private.analytics_messages_deleted();

-- triggers: leads ------------------------------------------------------------------------
-- The keys of a lead, as private.analytics_lead_groups_of and analytics_lead_days_of define
-- them, are written out in each function (a transition table cannot be passed to another
-- function). One statement's leads, each counted +1 (new) or -1 (old), are aggregated once
-- into a temporary delta, then applied to both tables.
create function private.analytics_apply_lead_deltas(p_deltas jsonb) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- p_deltas: [{client_id, dataset_id, day (local day of the M1, null without), contact_status, lead_sentiment, archived,
  -- opted_out, manual_mode, replied, call_booked, sequence_step, last_step, n}], already
  -- grouped, n the signed count. Deleted datasets are skipped.
  insert into public.analytics_lead_groups as a (
    client_id, dataset_id, contact_status, lead_sentiment, archived, opted_out, manual_mode,
    replied, call_booked, sequence_step, last_step, leads
  )
  select x.client_id, x.dataset_id, x.contact_status, x.lead_sentiment, x.archived, x.opted_out, x.manual_mode,
    x.replied, x.call_booked, x.sequence_step, x.last_step, sum(x.n)
  from jsonb_to_recordset(p_deltas) x (
    client_id uuid, dataset_id uuid, contact_status public.lead_status, lead_sentiment public.lead_sentiment, archived boolean, opted_out boolean, manual_mode boolean,
    replied boolean, call_booked boolean, sequence_step smallint, last_step smallint, n bigint
  )
  where exists (select from public.datasets d where d.id = x.dataset_id)
  group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
  having sum(x.n) <> 0
  order by 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
  on conflict on constraint analytics_lead_groups_key
  do update set leads = a.leads + excluded.leads;

  insert into public.analytics_lead_days as a (client_id, dataset_id, day, replied, call_booked, converted, leads)
  select x.client_id, x.dataset_id, x.day, x.replied, x.call_booked, x.contact_status = 'CONVERTED', sum(x.n)
  from jsonb_to_recordset(p_deltas) x (
    client_id uuid, dataset_id uuid, day date, contact_status public.lead_status,
    replied boolean, call_booked boolean, n bigint
  )
  where x.day is not null and exists (select from public.datasets d where d.id = x.dataset_id)
  group by 1, 2, 3, 4, 5, 6
  having sum(x.n) <> 0
  order by 2, 3, 4, 5, 6
  on conflict (dataset_id, day, replied, call_booked, converted)
  do update set leads = a.leads + excluded.leads;
end
$$;
comment on function private.analytics_apply_lead_deltas(jsonb) is
  'Applies one statement''s grouped, signed lead counts to analytics_lead_groups and analytics_lead_days.';

-- Adds inserted leads to the lead counters.
create function private.analytics_leads_inserted() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.analytics_lock_datasets(array(select distinct n.dataset_id from new_rows n));
  perform private.analytics_apply_lead_deltas((
    select jsonb_agg(g) from (
      select n.client_id, n.dataset_id, (n.m1_sent_at at time zone c.timezone)::date as day, n.contact_status, n.lead_sentiment, n.archived, n.opted_out,
        n.manual_mode, n.reply_received_at is not null as replied, n.call_booked, n.sequence_step,
        (case when n.m3_sent_at is not null then 3 when n.m2_sent_at is not null then 2
          when n.m1_sent_at is not null then 1 else 0 end)::smallint as last_step,
        count(*) as n
      from new_rows n
      join public.clients c on c.id = n.client_id
      group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
    ) g
  ));
  return null;
end
$$;
comment on function private.analytics_leads_inserted() is
  'Trigger (statement, transition table): adds inserted leads to the lead counters.';

-- Takes deleted leads off the lead counters.
create function private.analytics_leads_deleted() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.analytics_lock_datasets(array(select distinct o.dataset_id from old_rows o));
  perform private.analytics_apply_lead_deltas((
    select jsonb_agg(g) from (
      select o.client_id, o.dataset_id, (o.m1_sent_at at time zone c.timezone)::date as day, o.contact_status, o.lead_sentiment, o.archived, o.opted_out,
        o.manual_mode, o.reply_received_at is not null as replied, o.call_booked, o.sequence_step,
        (case when o.m3_sent_at is not null then 3 when o.m2_sent_at is not null then 2
          when o.m1_sent_at is not null then 1 else 0 end)::smallint as last_step,
        -count(*) as n
      from old_rows o
      join public.clients c on c.id = o.client_id
      group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
    ) g
  ));
  return null;
end
$$;
comment on function private.analytics_leads_deleted() is
  'Trigger (statement, transition table): removes deleted leads from the lead counters '
  '(skipped for datasets deleted by the same statement).';

-- Moves updated leads from their old counter keys to their new ones.
create function private.analytics_leads_updated() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.analytics_lock_datasets(array(
    select n.dataset_id from new_rows n union select o.dataset_id from old_rows o
  ));
  -- Old rows -1, new rows +1: an update that moves no key (notes, names, other timestamps)
  -- nets to nothing here and writes nothing.
  perform private.analytics_apply_lead_deltas((
    select jsonb_agg(g) from (
      select x.client_id, x.dataset_id, x.day, x.contact_status, x.lead_sentiment, x.archived, x.opted_out,
        x.manual_mode, x.replied, x.call_booked, x.sequence_step, x.last_step, sum(x.sign) as n
      from (
        select n.client_id, n.dataset_id, (n.m1_sent_at at time zone c.timezone)::date as day, n.contact_status, n.lead_sentiment, n.archived,
          n.opted_out, n.manual_mode, n.reply_received_at is not null as replied, n.call_booked, n.sequence_step,
          (case when n.m3_sent_at is not null then 3 when n.m2_sent_at is not null then 2
            when n.m1_sent_at is not null then 1 else 0 end)::smallint as last_step,
          1 as sign
        from new_rows n
        join public.clients c on c.id = n.client_id
        union all
        select o.client_id, o.dataset_id, (o.m1_sent_at at time zone c.timezone)::date as day, o.contact_status, o.lead_sentiment, o.archived,
          o.opted_out, o.manual_mode, o.reply_received_at is not null, o.call_booked, o.sequence_step,
          (case when o.m3_sent_at is not null then 3 when o.m2_sent_at is not null then 2
            when o.m1_sent_at is not null then 1 else 0 end)::smallint,
          -1
        from old_rows o
        join public.clients c on c.id = o.client_id
      ) x
      group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
      having sum(x.sign) <> 0
    ) g
  ));
  return null;
end
$$;
comment on function private.analytics_leads_updated() is
  'Trigger (statement, transition tables): applies the net change of updated leads to the lead counters; '
  'writes nothing when no counted attribute moved.';

-- Named to sort before leads_stats_* and leads_suppressions_after_stats (triggers of one event
-- fire in name order; the order does not matter to these counters, which have no range check).
create trigger leads_analytics_insert after insert on public.leads
referencing new table as new_rows
for each statement execute function private.analytics_leads_inserted();
create trigger leads_analytics_update after update on public.leads
referencing old table as old_rows new table as new_rows
for each statement execute function private.analytics_leads_updated();
create trigger leads_analytics_delete after delete on public.leads
referencing old table as old_rows
for each statement execute function private.analytics_leads_deleted();

-- triggers: bookings ---------------------------------------------------------------------
create function private.analytics_bookings_inserted() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.analytics_lock_datasets(array(select distinct n.dataset_id from new_rows n));
  insert into public.analytics_booking_days as a (client_id, dataset_id, day, status, bookings)
  select n.client_id, n.dataset_id, (n.created_at at time zone c.timezone)::date, n.status, count(*)
  from new_rows n
  join public.clients c on c.id = n.client_id
  group by 1, 2, 3, 4
  order by 2, 3, 4
  on conflict (dataset_id, day, status) do update set bookings = a.bookings + excluded.bookings;
  return null;
end
$$;
comment on function private.analytics_bookings_inserted() is
  'Trigger (statement, transition table): adds inserted bookings to analytics_booking_days.';

-- Takes deleted bookings off their counters.
create function private.analytics_bookings_deleted() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.analytics_lock_datasets(array(select distinct o.dataset_id from old_rows o));
  insert into public.analytics_booking_days as a (client_id, dataset_id, day, status, bookings)
  select o.client_id, o.dataset_id, (o.created_at at time zone c.timezone)::date, o.status, -count(*)
  from old_rows o
  join public.clients c on c.id = o.client_id
  where exists (select from public.datasets d where d.id = o.dataset_id)
  group by 1, 2, 3, 4
  order by 2, 3, 4
  on conflict (dataset_id, day, status) do update set bookings = a.bookings + excluded.bookings;
  return null;
end
$$;
comment on function private.analytics_bookings_deleted() is
  'Trigger (statement, transition table): removes deleted bookings from analytics_booking_days.';

-- Moves updated bookings (a status change) between their counter keys.
create function private.analytics_bookings_updated() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.analytics_lock_datasets(array(
    select n.dataset_id from new_rows n union select o.dataset_id from old_rows o
  ));
  insert into public.analytics_booking_days as a (client_id, dataset_id, day, status, bookings)
  select x.client_id, x.dataset_id, (x.created_at at time zone c.timezone)::date, x.status, sum(x.sign)
  from (
    select n.client_id, n.dataset_id, n.created_at, n.status, 1 as sign from new_rows n
    union all
    select o.client_id, o.dataset_id, o.created_at, o.status, -1 from old_rows o
  ) x
  join public.clients c on c.id = x.client_id
  group by 1, 2, 3, 4
  having sum(x.sign) <> 0
  order by 2, 3, 4
  on conflict (dataset_id, day, status) do update set bookings = a.bookings + excluded.bookings;
  return null;
end
$$;
comment on function private.analytics_bookings_updated() is
  'Trigger (statement, transition tables): applies the net change of updated bookings to analytics_booking_days.';

create trigger bookings_analytics_insert after insert on public.bookings
referencing new table as new_rows
for each statement execute function private.analytics_bookings_inserted();
create trigger bookings_analytics_update after update on public.bookings
referencing old table as old_rows new table as new_rows
for each statement execute function private.analytics_bookings_updated();
create trigger bookings_analytics_delete after delete on public.bookings
referencing old table as old_rows
for each statement execute function private.analytics_bookings_deleted();

-- TRUNCATE of a source table empties its counters.
create function private.analytics_source_truncated() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_table_name = 'messages' then
    delete from public.analytics_message_days;
  elsif tg_table_name = 'leads' then
    delete from public.analytics_lead_groups;
    delete from public.analytics_lead_days;
  elsif tg_table_name = 'bookings' then
    delete from public.analytics_booking_days;
  end if;
  return null;
end
$$;
comment on function private.analytics_source_truncated() is
  'Trigger: TRUNCATE of messages, leads or bookings empties its counters.';
create trigger messages_analytics_truncate after truncate on public.messages
for each statement execute function private.analytics_source_truncated();
create trigger leads_analytics_truncate after truncate on public.leads
for each statement execute function private.analytics_source_truncated();
create trigger bookings_analytics_truncate after truncate on public.bookings
for each statement execute function private.analytics_source_truncated();

-- repair ---------------------------------------------------------------------------------
-- How many counter rows differ from a recount of the raw rows, in either direction, over every
-- dataset (0 when the triggers kept them exact). Reads only; recount_analytics repairs.
create function private.analytics_drift() returns bigint
language sql
stable
security definer
set search_path = ''
as $$
  select
    (select count(*) from (
      select * from private.analytics_message_days_of(null)
      except select * from public.analytics_message_days where messages <> 0) x)
    + (select count(*) from (
      select * from public.analytics_message_days where messages <> 0
      except select * from private.analytics_message_days_of(null)) x)
    + (select count(*) from (
      select * from private.analytics_lead_groups_of(null)
      except select * from public.analytics_lead_groups where leads <> 0) x)
    + (select count(*) from (
      select * from public.analytics_lead_groups where leads <> 0
      except select * from private.analytics_lead_groups_of(null)) x)
    + (select count(*) from (
      select * from private.analytics_lead_days_of(null)
      except select * from public.analytics_lead_days where leads <> 0) x)
    + (select count(*) from (
      select * from public.analytics_lead_days where leads <> 0
      except select * from private.analytics_lead_days_of(null)) x)
    + (select count(*) from (
      select * from private.analytics_booking_days_of(null)
      except select * from public.analytics_booking_days where bookings <> 0) x)
    + (select count(*) from (
      select * from public.analytics_booking_days where bookings <> 0
      except select * from private.analytics_booking_days_of(null)) x)
$$;
comment on function private.analytics_drift() is
  'Counter rows that differ from a recount of the raw rows, both directions, every dataset: 0 when exact. '
  'Reads only (private.recount_analytics repairs).';
revoke all on function private.analytics_drift() from public, anon, authenticated;

create function private.recount_analytics(p_dataset_id uuid default null) returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_ids uuid [];
  v_wrong integer;
  v_m public.analytics_message_days [];
  v_l public.analytics_lead_groups [];
  v_d public.analytics_lead_days [];
  v_b public.analytics_booking_days [];
begin
  -- One dataset, or every dataset when null. The exclusive locks wait for writers in flight
  -- (which hold them shared) and hold new ones off until this transaction ends, so the
  -- recount neither misses nor double-counts a concurrent change.
  v_ids := array(select d.id from public.datasets d where p_dataset_id is null or d.id = p_dataset_id);
  perform private.analytics_lock_datasets(v_ids, true);

  v_m := array(select x from private.analytics_message_days_of(p_dataset_id) x);
  v_l := array(select x from private.analytics_lead_groups_of(p_dataset_id) x);
  v_d := array(select x from private.analytics_lead_days_of(p_dataset_id) x);
  v_b := array(select x from private.analytics_booking_days_of(p_dataset_id) x);

  -- How many counter rows were wrong (missing, extra non-zero, or a different figure).
  with cm as (
    select a.* from public.analytics_message_days a
    where (p_dataset_id is null or a.dataset_id = p_dataset_id) and a.messages <> 0
  ),
  cl as (
    select a.* from public.analytics_lead_groups a
    where (p_dataset_id is null or a.dataset_id = p_dataset_id) and a.leads <> 0
  ),
  cd as (
    select a.* from public.analytics_lead_days a
    where (p_dataset_id is null or a.dataset_id = p_dataset_id) and a.leads <> 0
  ),
  cb as (
    select a.* from public.analytics_booking_days a
    where (p_dataset_id is null or a.dataset_id = p_dataset_id) and a.bookings <> 0
  )
  select
    (select count(*) from (select * from unnest(v_m) except select * from cm) x)
    + (select count(*) from (select * from cm except select * from unnest(v_m)) x)
    + (select count(*) from (select * from unnest(v_l) except select * from cl) x)
    + (select count(*) from (select * from cl except select * from unnest(v_l)) x)
    + (select count(*) from (select * from unnest(v_d) except select * from cd) x)
    + (select count(*) from (select * from cd except select * from unnest(v_d)) x)
    + (select count(*) from (select * from unnest(v_b) except select * from cb) x)
    + (select count(*) from (select * from cb except select * from unnest(v_b)) x)
  into v_wrong;

  delete from public.analytics_message_days a where p_dataset_id is null or a.dataset_id = p_dataset_id;
  delete from public.analytics_lead_groups a where p_dataset_id is null or a.dataset_id = p_dataset_id;
  delete from public.analytics_lead_days a where p_dataset_id is null or a.dataset_id = p_dataset_id;
  delete from public.analytics_booking_days a where p_dataset_id is null or a.dataset_id = p_dataset_id;
  insert into public.analytics_message_days (client_id, dataset_id, day, message_category, draft, pending, sending, queued, sent, delivered, undelivered, failed, received, canceled)
  select client_id, dataset_id, day, message_category, draft, pending, sending, queued, sent, delivered, undelivered, failed, received, canceled from unnest(v_m);
  insert into public.analytics_lead_groups select * from unnest(v_l);
  insert into public.analytics_lead_days select * from unnest(v_d);
  insert into public.analytics_booking_days select * from unnest(v_b);
  return v_wrong;
end
$$;
comment on function private.recount_analytics(uuid) is
  'Repair: recomputes the analytics counters of one dataset (or all when null) from messages, leads and '
  'bookings; returns how many counter rows were wrong (0 when the triggers kept them exact).';

-- A client's local days move with its time zone: rebuild its counters when it changes.
create function private.analytics_client_timezone_changed() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid;
begin
  for v_id in select d.id from public.datasets d where d.client_id = new.id order by d.id loop
    perform private.recount_analytics(v_id);
  end loop;
  return null;
end
$$;
comment on function private.analytics_client_timezone_changed() is
  'Trigger: a client''s new time zone re-buckets its analytics counters into the new local days.';
create trigger clients_analytics_timezone after update of timezone on public.clients
for each row when (new.timezone is distinct from old.timezone)
execute function private.analytics_client_timezone_changed();

revoke all on function
  private.analytics_message_days_of(uuid), private.analytics_lead_groups_of(uuid),
  private.analytics_booking_days_of(uuid), private.analytics_lead_days_of(uuid),
  private.analytics_lock_datasets(uuid [], boolean), private.analytics_apply_lead_deltas(jsonb),
  private.analytics_messages_inserted(), private.analytics_messages_updated(),
  private.analytics_messages_deleted(), private.analytics_leads_inserted(), private.analytics_leads_updated(),
  private.analytics_leads_deleted(), private.analytics_bookings_inserted(), private.analytics_bookings_updated(),
  private.analytics_bookings_deleted(), private.analytics_source_truncated(), private.recount_analytics(uuid),
  private.analytics_client_timezone_changed()
from public, anon, authenticated;
grant execute on function
  private.analytics_message_days_of(uuid), private.analytics_lead_groups_of(uuid),
  private.analytics_lead_days_of(uuid), private.analytics_booking_days_of(uuid)
to authenticated, service_role;
grant execute on function private.recount_analytics(uuid) to service_role;
-- The sequencing's estimate, called by analytics_campaign_progress (as the member) only after
-- the dataset was found visible.
grant execute on function private.campaign_progress(uuid, timestamptz) to authenticated;

-- GET /api/analytics/overview ------------------------------------------------------------
-- The figures, defined once here (docs/design/analytics.md restates them for readers):
--   snapshot (now, whatever the period): total_leads, active_leads, hot_leads (the dataset
--     counters' definitions), sentiment_breakdown, status_breakdown (every lead, archived too);
--   events in the period (local days from .. to): messages_sent (outbound messages in status
--     sent, delivered or undelivered, i.e. handed to the carrier; total = every outbound
--     category, manual and system messages included), replies_received (inbound replies),
--     calls_booked (bookings made in the period that still stand: status accepted), and the
--     three daily trends, one entry per local day with zero days present;
--   the period's cohort (leads whose M1 was sent in the period): reply_rate = leads who
--     replied / leads messaged, converted = those now CONVERTED, conversion_rate = converted /
--     leads messaged. Rates are percentages with one decimal, 0 when nobody was messaged.
-- Periods: today = the client's local today; week = the last 7 local days; month = the last
-- 30; all = from the first day with data. Every day ends at today.
create function private.analytics_overview_build(
  p_dataset_id uuid,
  p_from date,
  p_to date,
  p_from_rows boolean
) returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  -- PL/pgSQL rather than SQL: the statement's plan is cached per session instead of being
  -- made again on every call.
  -- Each source is the counter table, or (p_from_rows) the same rows recomputed from the raw
  -- tables; the branch not chosen is never run. Day filters apply before anything is summed.
  -- The client filter repeats what RLS allows, so that the (client_id, day) indexes serve.
  -- Messages are summed per (day, category) in one pass: sent = handed to the carrier.
  return (with m as (
    select y.day, y.message_category, sum(y.sent + y.delivered + y.undelivered) as sent, sum(y.messages) as n
    from (
      select a.day, a.message_category, a.sent, a.delivered, a.undelivered, a.messages from public.analytics_message_days a
      where not p_from_rows and a.client_id = (select private.current_client_id())
        and (p_dataset_id is null or a.dataset_id = p_dataset_id)
        and a.day between coalesce(p_from, '-infinity'::date) and p_to and a.messages <> 0
      union all
      select x.day, x.message_category, x.sent, x.delivered, x.undelivered, x.messages
      from private.analytics_message_days_of(p_dataset_id) x
      where p_from_rows and x.day between coalesce(p_from, '-infinity'::date) and p_to
    ) y
    group by 1, 2
  ),
  ld as (
    select a.day, a.replied, a.converted, a.leads from public.analytics_lead_days a
    where not p_from_rows and a.client_id = (select private.current_client_id())
        and (p_dataset_id is null or a.dataset_id = p_dataset_id)
      and a.day between coalesce(p_from, '-infinity'::date) and p_to and a.leads <> 0
    union all
    select x.day, x.replied, x.converted, x.leads from private.analytics_lead_days_of(p_dataset_id) x
    where p_from_rows and x.day between coalesce(p_from, '-infinity'::date) and p_to
  ),
  b as (
    select a.day, a.bookings from public.analytics_booking_days a
    where not p_from_rows and a.client_id = (select private.current_client_id())
        and (p_dataset_id is null or a.dataset_id = p_dataset_id) and a.status = 'accepted'
      and a.day between coalesce(p_from, '-infinity'::date) and p_to and a.bookings <> 0
    union all
    select x.day, x.bookings from private.analytics_booking_days_of(p_dataset_id) x
    where p_from_rows and x.status = 'accepted' and x.day between coalesce(p_from, '-infinity'::date) and p_to
  ),
  -- Snapshot tallies, first grouped by the four attributes the definitions read (a few
  -- hundred groups), so the definition functions run once per group, not per counter row.
  l as (
    select g.archived, g.opted_out, g.contact_status, g.lead_sentiment, sum(g.leads) as n
    from (
      select a.archived, a.opted_out, a.contact_status, a.lead_sentiment, a.leads
      from public.analytics_lead_groups a
      where not p_from_rows and a.client_id = (select private.current_client_id())
        and (p_dataset_id is null or a.dataset_id = p_dataset_id) and a.leads <> 0
      union all
      select x.archived, x.opted_out, x.contact_status, x.lead_sentiment, x.leads
      from private.analytics_lead_groups_of(p_dataset_id) x
      where p_from_rows
    ) g
    group by 1, 2, 3, 4
  ),
  bounds as (
    select coalesce(p_from, least(
      (select min(m.day) from m), (select min(b.day) from b), (select min(ld.day) from ld), p_to
    )) as first_day
  ),
  days as (
    select g::date as day from bounds, generate_series(bounds.first_day, p_to, interval '1 day') g
  ),
  sent as (
    select m.day, m.message_category, m.sent as n from m
    where m.message_category <> 'lead_reply' and m.sent <> 0
  ),
  replies as (
    select m.day, m.n from m where m.message_category = 'lead_reply'
  ),
  booked as (select b.day, sum(b.bookings) as n from b group by 1),
  cohort as (
    select
      coalesce(sum(ld.leads), 0) as messaged,
      coalesce(sum(ld.leads) filter (where ld.replied), 0) as replied,
      coalesce(sum(ld.leads) filter (where ld.converted), 0) as converted
    from ld
  ),
  snapshot as (
    select
      coalesce(sum(l.n), 0) as total,
      coalesce(sum(l.n * private.lead_counts_as_active(l.archived, l.opted_out, l.contact_status)), 0) as active,
      coalesce(sum(l.n * private.lead_counts_as_hot(l.archived, l.contact_status, l.lead_sentiment)), 0) as hot
    from l
  )
  select jsonb_build_object(
    'metrics', jsonb_build_object(
      'total_leads', s.total::bigint,
      'active_leads', s.active::bigint,
      'messages_sent', (
        select jsonb_build_object(
          'm1', coalesce(sum(x.n) filter (where x.message_category = 'm1'), 0)::bigint,
          'm2', coalesce(sum(x.n) filter (where x.message_category = 'm2'), 0)::bigint,
          'm3', coalesce(sum(x.n) filter (where x.message_category = 'm3'), 0)::bigint,
          'ai_responses', coalesce(sum(x.n) filter (where x.message_category = 'ai_response'), 0)::bigint,
          'total', coalesce(sum(x.n), 0)::bigint
        )
        from sent x
      ),
      'replies_received', (select coalesce(sum(x.n), 0)::bigint from replies x),
      'reply_rate', coalesce(round(100.0 * c.replied / nullif(c.messaged, 0), 1), 0),
      'hot_leads', s.hot::bigint,
      'calls_booked', (select coalesce(sum(x.n), 0)::bigint from booked x),
      'converted', c.converted::bigint,
      'conversion_rate', coalesce(round(100.0 * c.converted / nullif(c.messaged, 0), 1), 0)
    ),
    'sentiment_breakdown', (
      select jsonb_object_agg(e.v, coalesce(x.n, 0)::bigint)
      from unnest(enum_range(null::public.lead_sentiment)) e (v)
      left join (select l.lead_sentiment, sum(l.n) as n from l group by 1) x on x.lead_sentiment = e.v
    ),
    'status_breakdown', (
      select jsonb_object_agg(e.v, coalesce(x.n, 0)::bigint)
      from unnest(enum_range(null::public.lead_status)) e (v)
      left join (select l.contact_status, sum(l.n) as n from l group by 1) x on x.contact_status = e.v
    ),
    'trends', jsonb_build_object(
      'daily_messages', (
        select coalesce(jsonb_agg(jsonb_build_object('date', d.day, 'count', coalesce(x.n, 0)::bigint) order by d.day), '[]')
        from days d left join (select y.day, sum(y.n) as n from sent y group by 1) x on x.day = d.day
      ),
      'daily_replies', (
        select coalesce(jsonb_agg(jsonb_build_object('date', d.day, 'count', coalesce(x.n, 0)::bigint) order by d.day), '[]')
        from days d left join replies x on x.day = d.day
      ),
      'daily_bookings', (
        select coalesce(jsonb_agg(jsonb_build_object('date', d.day, 'count', coalesce(x.n, 0)::bigint) order by d.day), '[]')
        from days d left join booked x on x.day = d.day
      )
    )
  )
  from snapshot s, cohort c);
end
$$;
comment on function private.analytics_overview_build(uuid, date, date, boolean) is
  'Assembles the overview JSON for one dataset (or all visible) and the local days p_from..p_to (p_from null = '
  'from the first day with data), from the counter tables or (p_from_rows) from the raw rows.';

-- The first local day of a period ending today (null for all).
create function private.analytics_period_start(p_time_range text, p_today date) returns date
language plpgsql
immutable
set search_path = ''
as $$
begin
  return case coalesce(p_time_range, 'all')
    when 'today' then p_today
    when 'week' then p_today - 6
    when 'month' then p_today - 29
    when 'all' then null
  end;
end
$$;
comment on function private.analytics_period_start(text, date) is
  'First local day of the period: today, week (7 days), month (30 days), all (null = since the first data).';

-- The caller's client and its time zone, after checking the filters; raises 400/403/404.
create function private.analytics_scope(p_dataset_id uuid, p_time_range text) returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  v_client uuid := private.require_member();
begin
  if p_time_range is not null and p_time_range not in ('today', 'week', 'month', 'all') then
    perform private.raise_error(400, 'time_range must be one of today, week, month, all',
      jsonb_build_object('field', 'time_range', 'value', p_time_range));
  end if;
  if p_dataset_id is not null and not exists (select from public.datasets d where d.id = p_dataset_id) then
    perform private.raise_error(404, format('dataset %s not found', p_dataset_id));
  end if;
  return (select c.timezone from public.clients c where c.id = v_client);
end
$$;
comment on function private.analytics_scope(uuid, text) is
  'Checks the analytics filters (member, time_range, visible dataset) and returns the client''s time zone.';

-- Body of public.analytics_overview: checks the filters, then builds from counters or rows.
create function private.analytics_overview(
  p_dataset_id uuid,
  p_time_range text,
  p_now timestamptz default now(),
  p_from_rows boolean default false
) returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_tz text := private.analytics_scope(p_dataset_id, p_time_range);
  v_today date := (p_now at time zone v_tz)::date;
begin
  -- Members restricted to their assigned leads read no counters (see the policies): their
  -- figures are counted from the rows RLS shows them, as is the benchmark's naive baseline.
  return private.analytics_overview_build(
    p_dataset_id, private.analytics_period_start(p_time_range, v_today), v_today,
    p_from_rows or private.sees_only_assigned_leads()
  );
end
$$;
comment on function private.analytics_overview(uuid, text, timestamptz, boolean) is
  'Body of public.analytics_overview (security invoker). p_now fixes "today" (tests); p_from_rows counts '
  'from the raw rows instead of the counters (the naive baseline; same figures).';

-- GET /api/analytics/overview (PostgREST GET or POST /rpc/analytics_overview).
create function public.analytics_overview(dataset_id uuid default null, time_range text default 'all')
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.analytics_overview(dataset_id, time_range, now(), false)
$$;
comment on function public.analytics_overview(uuid, text) is
  'GET /api/analytics/overview: {metrics, sentiment_breakdown, status_breakdown, trends} over the caller''s '
  'visible datasets (or one), time_range today | week | month | all, in the client''s local days.';

-- campaign progress (not in the API contract: GET /rest/v1/rpc/campaign_progress?dataset_id=...) ---
-- Per step M1/M2/M3: waiting (leads in the sequence whose step is not queued yet: not archived,
-- opted out or in manual mode), the step's messages by status (queued = pending, sending or
-- queued at Twilio), replies (leads whose last step before replying was this one) and opt-outs
-- the same way, each rate over the leads that received the step. estimated_completion is the
-- sequencing's estimate (private.campaign_progress: an upper bound assuming nobody else replies
-- or opts out, at the campaign's pace and the client's hourly budget inside the sending window,
-- plus the M2/M3 delays the last leads still wait); null, with the reason, when the campaign is
-- not active or nothing is left to send.
create function private.analytics_campaign_progress(
  p_dataset_id uuid,
  p_now timestamptz default now(),
  p_from_rows boolean default false
) returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_dataset public.datasets;
  v_campaign public.campaigns;
  v_m public.analytics_message_days [];
  v_l public.analytics_lead_groups [];
  v_steps jsonb;
  v_totals jsonb;
  v_remaining numeric;
  v_pace_estimate jsonb;
  v_estimate jsonb;
begin
  perform private.require_member();
  if p_dataset_id is null then
    perform private.raise_error(400, 'dataset_id is required', jsonb_build_object('field', 'dataset_id'));
  end if;
  select d.* into v_dataset from public.datasets d where d.id = p_dataset_id;
  if not found then
    perform private.raise_error(404, format('dataset %s not found', p_dataset_id));
  end if;
  select c.* into v_campaign from public.campaigns c where c.dataset_id = p_dataset_id;

  if p_from_rows or private.sees_only_assigned_leads() then
    v_m := array(
      select x from private.analytics_message_days_of(p_dataset_id) x where x.message_category in ('m1', 'm2', 'm3')
    );
    v_l := array(select x from private.analytics_lead_groups_of(p_dataset_id) x);
  else
    v_m := array(
      select a from public.analytics_message_days a
      where a.dataset_id = p_dataset_id and a.message_category in ('m1', 'm2', 'm3') and a.messages <> 0
    );
    v_l := array(select a from public.analytics_lead_groups a where a.dataset_id = p_dataset_id and a.leads <> 0);
  end if;

  select jsonb_agg(jsonb_build_object(
      'step', 'M' || k.step,
      'waiting', k.waiting, 'queued', k.queued, 'sent', k.sent, 'delivered', k.delivered,
      'undelivered', k.undelivered, 'failed', k.failed, 'canceled', k.canceled,
      'received', k.received, 'replies', k.replies,
      'reply_rate', coalesce(round(100.0 * k.replies / nullif(k.received, 0), 1), 0),
      'opt_outs', k.opt_outs,
      'opt_out_rate', coalesce(round(100.0 * k.opt_outs / nullif(k.received, 0), 1), 0)
    ) order by k.step)
  into v_steps
  from (
    select s.step,
      (select coalesce(sum(l.leads), 0)::bigint from unnest(v_l) l
        where not l.archived and not l.opted_out and not l.manual_mode and l.sequence_step = s.step - 1
          and l.contact_status = (array['READY', 'M1_SENT', 'M2_SENT']::public.lead_status [])[s.step]) as waiting,
      coalesce(sum(m.pending + m.sending + m.queued), 0)::bigint as queued,
      coalesce(sum(m.sent), 0)::bigint as sent,
      coalesce(sum(m.delivered), 0)::bigint as delivered,
      coalesce(sum(m.undelivered), 0)::bigint as undelivered,
      coalesce(sum(m.failed), 0)::bigint as failed,
      coalesce(sum(m.canceled), 0)::bigint as canceled,
      (select coalesce(sum(l.leads), 0)::bigint from unnest(v_l) l where l.last_step >= s.step) as received,
      (select coalesce(sum(l.leads), 0)::bigint from unnest(v_l) l where l.last_step = s.step and l.replied) as replies,
      (select coalesce(sum(l.leads), 0)::bigint from unnest(v_l) l where l.last_step = s.step and l.opted_out)
      as opt_outs
    from generate_series(1, 3) s (step)
    left join unnest(v_m) m on m.message_category = ('m' || s.step)::public.message_category
    group by s.step
  ) k;

  select jsonb_build_object(
      'leads', coalesce(sum(l.leads), 0)::bigint,
      'messaged', coalesce(sum(l.leads) filter (where l.last_step >= 1), 0)::bigint,
      'replied', coalesce(sum(l.leads) filter (where l.last_step >= 1 and l.replied), 0)::bigint,
      'reply_rate', coalesce(round(
        100.0 * sum(l.leads) filter (where l.last_step >= 1 and l.replied)
        / nullif(sum(l.leads) filter (where l.last_step >= 1), 0), 1), 0),
      'opt_outs', coalesce(sum(l.leads) filter (where l.opted_out), 0)::bigint,
      'opt_out_rate', coalesce(round(
        100.0 * sum(l.leads) filter (where l.last_step >= 1 and l.opted_out)
        / nullif(sum(l.leads) filter (where l.last_step >= 1), 0), 1), 0),
      'delivery_error_rate', (
        select coalesce(round(
          100.0 * sum(m.undelivered + m.failed)
          / nullif(sum(m.sent + m.delivered + m.undelivered + m.failed), 0), 1), 0)
        from unnest(v_m) m where m.message_category in ('m1', 'm2', 'm3')
      )
    ),
    -- Sequence messages still to go for leads in the sequence, if none of them replies.
    coalesce(sum(l.leads * (3 - l.last_step)) filter (
      where not l.archived and not l.opted_out and not l.manual_mode and not l.replied
        and l.contact_status in ('READY', 'M1_SENT', 'M2_SENT')), 0)
  into v_totals, v_remaining
  from unnest(v_l) l;

  if v_dataset.campaign_status <> 'active' or v_campaign.dataset_id is null then
    v_estimate := jsonb_build_object('estimated_completion', null,
      'reason', format('the campaign is %s', v_dataset.campaign_status));
  elsif v_remaining = 0 then
    v_estimate := jsonb_build_object('estimated_completion', null, 'reason', 'nothing left to send');
  else
    -- The sequencing's own estimate: the campaign's pace capped by the client's hourly
    -- budget, spent only inside the sending window, and the M2/M3 delays of the last chain.
    v_pace_estimate := private.campaign_progress(p_dataset_id, p_now);
    v_estimate := jsonb_build_object(
      'estimated_completion', v_pace_estimate -> 'estimated_completion',
      'reason', 'upper bound: no further replies or opt-outs, the configured pace, hourly budget and sending window',
      'remaining_messages', v_remaining::bigint,
      'messages_per_hour', v_pace_estimate -> 'per_hour'
    );
  end if;

  return jsonb_build_object('campaign_progress', jsonb_build_object(
    'dataset_id', v_dataset.id,
    'name', v_dataset.name,
    'campaign_status', v_dataset.campaign_status,
    'steps', v_steps,
    'totals', v_totals,
    'estimated_completion', v_estimate -> 'estimated_completion',
    'estimate', v_estimate - 'estimated_completion'
  ));
end
$$;
comment on function private.analytics_campaign_progress(uuid, timestamptz, boolean) is
  'Body of public.campaign_progress (security invoker). p_now fixes the estimate''s clock (tests); '
  'p_from_rows counts from raw rows instead of the counters.';

-- Campaign progress of one dataset (PostgREST /rpc/campaign_progress).
create function public.campaign_progress(dataset_id uuid) returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.analytics_campaign_progress(dataset_id, now(), false)
$$;
comment on function public.campaign_progress(uuid) is
  'Campaign progress of one visible dataset: per step M1/M2/M3 waiting, queued, sent, delivered, undelivered, '
  'failed, replies, opt-outs and rates; totals with the delivery error rate; an honest estimated_completion.';

revoke all on function
  private.analytics_overview_build(uuid, date, date, boolean),
  private.analytics_period_start(text, date), private.analytics_scope(uuid, text),
  private.analytics_overview(uuid, text, timestamptz, boolean), public.analytics_overview(uuid, text),
  private.analytics_campaign_progress(uuid, timestamptz, boolean), public.campaign_progress(uuid)
from public, anon;
grant execute on function
  private.analytics_overview_build(uuid, date, date, boolean),
  private.analytics_period_start(text, date), private.analytics_scope(uuid, text),
  private.analytics_overview(uuid, text, timestamptz, boolean), public.analytics_overview(uuid, text),
  private.analytics_campaign_progress(uuid, timestamptz, boolean), public.campaign_progress(uuid)
to authenticated, service_role;

-- Lessons at work: applications and their outcome -----------------------------------------
-- A lesson is applied to every AI message sent with a prompt version that included it
-- (prompts.lesson_ids of ai_metadata.prompt_version_id). The application succeeds when the
-- lead's first booking was made after the message and within the client's attribution window
-- (private.attribution_window, of the sophie band). Security invoker: a member counts
-- the messages and bookings RLS lets it see.

-- The AI messages that answered leads, with their prompt version's lessons and outcome.
create function private.analytics_ai_answers(p_client_id uuid)
returns table (
  message_id uuid, lead_id uuid, dataset_id uuid, answered_at timestamptz, lesson_ids uuid [], succeeded boolean
)
language sql
stable
security invoker
set search_path = ''
as $$
  with w as (select private.attribution_window(p_client_id) as w),
  firsts as (
    select b.lead_id, min(b.created_at) as booked_at
    from public.bookings b where b.client_id = p_client_id group by b.lead_id
  )
  select m.id, m.lead_id, m.dataset_id, coalesce(m.sent_at, m.created_at), p.lesson_ids,
    coalesce(f.booked_at >= coalesce(m.sent_at, m.created_at)
      and f.booked_at <= coalesce(m.sent_at, m.created_at) + (select w.w from w), false)
  from public.messages m
  join public.prompts p on p.id::text = m.ai_metadata ->> 'prompt_version_id' and p.client_id = m.client_id
  left join firsts f on f.lead_id = m.lead_id
  where m.client_id = p_client_id and m.ai_generated and m.direction = 'outbound' and m.lead_id is not null
    and m.status not in ('draft', 'canceled', 'failed', 'undelivered')
$$;
comment on function private.analytics_ai_answers(uuid) is
  'Every AI message a client sent with a known prompt version: its lessons and whether the lead''s first booking '
  'followed within the attribution window.';

-- One row per lesson applied to an AI message, with the message's outcome.
create function private.lesson_applications(p_client_id uuid)
returns table (lesson_id uuid, message_id uuid, lead_id uuid, dataset_id uuid, applied_at timestamptz, succeeded boolean)
language sql
stable
security invoker
set search_path = ''
as $$
  select x.lesson_id, a.message_id, a.lead_id, a.dataset_id, a.answered_at, a.succeeded
  from private.analytics_ai_answers(p_client_id) a
  cross join lateral unnest(a.lesson_ids) x (lesson_id)
$$;
comment on function private.lesson_applications(uuid) is
  'One row per (AI message, lesson in its prompt version): when it was applied and whether it succeeded.';

-- GET /api/analytics/dataset-comparison --------------------------------------------------
-- Per visible dataset: total_leads; reply, booking and conversion rates over the leads
-- messaged (M1 sent), in percent; avg_messages_to_booking = messages in the conversation
-- before the lead's first booking, averaged over booked leads (null when none); and
-- top_performing_lessons = titles of up to 3 lessons applied at least 5 times in the dataset,
-- by success rate then applications.
create function private.dataset_comparison(p_from_rows boolean default false) returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_client uuid := private.require_member();
  v_l public.analytics_lead_groups [];
begin
  if p_from_rows or private.sees_only_assigned_leads() then
    v_l := array(select x from private.analytics_lead_groups_of(null) x);
  else
    v_l := array(select a from public.analytics_lead_groups a where a.leads <> 0);
  end if;
  return jsonb_build_object('datasets', coalesce((
    with g as (
      select l.dataset_id,
        sum(l.leads) as total,
        sum(l.leads) filter (where l.last_step >= 1) as messaged,
        sum(l.leads) filter (where l.last_step >= 1 and l.replied) as replied,
        sum(l.leads) filter (where l.last_step >= 1 and l.call_booked) as booked,
        sum(l.leads) filter (where l.last_step >= 1 and l.contact_status = 'CONVERTED') as converted
      from unnest(v_l) l group by l.dataset_id
    ),
    booked as (
      select b.dataset_id, avg((
        select count(*) from public.messages m where m.lead_id = b.lead_id and m.created_at < b.created_at
      )) as avg_messages
      from (
        select distinct on (b.lead_id) b.lead_id, b.dataset_id, b.created_at
        from public.bookings b order by b.lead_id, b.created_at
      ) b
      group by b.dataset_id
    ),
    lessons as (
      select r.dataset_id, array_agg(r.title order by r.rank) as titles
      from (
        select a.dataset_id, le.title,
          row_number() over (
            partition by a.dataset_id
            order by avg(a.succeeded::integer) desc, count(*) desc, le.title
          ) as rank
        from private.lesson_applications(v_client) a
        join public.lessons le on le.id = a.lesson_id
        group by a.dataset_id, le.id, le.title
        having count(*) >= 5
      ) r
      where r.rank <= 3
      group by r.dataset_id
    )
    select jsonb_agg(jsonb_build_object(
        'dataset_id', d.id,
        'name', d.name,
        'total_leads', coalesce(g.total, 0)::bigint,
        'reply_rate', coalesce(round(100.0 * g.replied / nullif(g.messaged, 0), 1), 0),
        'booking_rate', coalesce(round(100.0 * g.booked / nullif(g.messaged, 0), 1), 0),
        'conversion_rate', coalesce(round(100.0 * g.converted / nullif(g.messaged, 0), 1), 0),
        'avg_messages_to_booking', round(bk.avg_messages, 1),
        'top_performing_lessons', coalesce(to_jsonb(ls.titles), '[]')
      ) order by d.created_at, d.name, d.id)
    from public.datasets d
    left join g on g.dataset_id = d.id
    left join booked bk on bk.dataset_id = d.id
    left join lessons ls on ls.dataset_id = d.id
  ), '[]'));
end
$$;
comment on function private.dataset_comparison(boolean) is
  'Body of public.dataset_comparison (security invoker). p_from_rows counts leads from raw rows.';

-- GET /api/analytics/dataset-comparison (PostgREST /rpc/dataset_comparison).
create function public.dataset_comparison() returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.dataset_comparison(false)
$$;
comment on function public.dataset_comparison() is
  'GET /api/analytics/dataset-comparison: {"datasets": [{dataset_id, name, total_leads, reply_rate, booking_rate, '
  'conversion_rate, avg_messages_to_booking, top_performing_lessons}]} over the caller''s visible datasets.';

-- GET /api/analytics/sophie-impact -------------------------------------------------------
-- Two-proportion z-test (pooled), two-sided. Not enough data, so no z and no p, unless each
-- group has at least 30 conversations and, with the pooled rate p, each group expects at
-- least 5 successes and 5 failures (n p >= 5, n (1 - p) >= 5): the normal approximation's
-- usual textbook conditions.
create function private.two_proportion_z_test(p_x1 bigint, p_n1 bigint, p_x2 bigint, p_n2 bigint) returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_p double precision;
  v_se double precision;
  v_z double precision;
  v_pvalue double precision;
begin
  if p_n1 < 30 or p_n2 < 30 then
    return jsonb_build_object('enough_data', false, 'reason', 'fewer than 30 conversations in a group');
  end if;
  v_p := (p_x1 + p_x2)::double precision / (p_n1 + p_n2);
  if least(p_n1, p_n2) * v_p < 5 or least(p_n1, p_n2) * (1 - v_p) < 5 then
    return jsonb_build_object('enough_data', false, 'reason', 'fewer than 5 expected bookings or non-bookings in a group');
  end if;
  v_se := sqrt(v_p * (1 - v_p) * (1.0 / p_n1 + 1.0 / p_n2));
  v_z := (p_x2::double precision / p_n2 - p_x1::double precision / p_n1) / v_se;
  v_pvalue := 2 * (1 - private.normal_cdf(abs(v_z)));
  return jsonb_build_object('enough_data', true, 'z', v_z, 'p_value', v_pvalue, 'confidence', 1 - v_pvalue);
end
$$;
comment on function private.two_proportion_z_test(bigint, bigint, bigint, bigint) is
  'Pooled two-proportion z-test of x2/n2 against x1/n1 (two-sided): {enough_data, z, p_value, confidence = 1 - p}; '
  'enough_data false (with the reason) below 30 per group or 5 expected successes/failures per group.';

-- Conversations (leads) answered by the AI, grouped by their first AI answer: baseline when
-- that answer's prompt version included no lesson, "with lessons" when it did. A
-- conversation succeeds when the lead's first booking followed that answer within the
-- attribution window. Rates are percentages; improvement_percent = relative change of the
-- rate ((current - baseline) / baseline, in %), null when the baseline rate is 0 or a group
-- is empty; confidence_level = 1 - p of the z-test (0-1), null with "not enough data".
-- top_lessons: up to 10 lessons by impact_score = applications x (success rate - baseline
-- booking rate) / 100: the bookings the lesson's applications won above the baseline rate
-- (negative: below it).
create function private.sophie_impact() returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_client uuid := private.require_member();
  v_n1 bigint;
  v_x1 bigint;
  v_n2 bigint;
  v_x2 bigint;
  v_r1 numeric;
  v_r2 numeric;
  v_test jsonb;
  v_metrics jsonb;
  v_top jsonb;
begin
  select count(*) filter (where not f.with_lessons), count(*) filter (where not f.with_lessons and f.succeeded),
    count(*) filter (where f.with_lessons), count(*) filter (where f.with_lessons and f.succeeded)
  into v_n1, v_x1, v_n2, v_x2
  from (
    select distinct on (a.lead_id) a.lead_id, cardinality(a.lesson_ids) > 0 as with_lessons, a.succeeded
    from private.analytics_ai_answers(v_client) a
    order by a.lead_id, a.answered_at, a.message_id
  ) f;
  v_r1 := round(100.0 * v_x1 / nullif(v_n1, 0), 1);
  v_r2 := round(100.0 * v_x2 / nullif(v_n2, 0), 1);
  v_test := private.two_proportion_z_test(v_x1, v_n1, v_x2, v_n2);

  select jsonb_build_object(
    'insights_generated', (select count(*) from public.sophie_insights i where i.client_id = v_client),
    'insights_approved', (
      select count(*) from public.sophie_insights i where i.client_id = v_client and i.status = 'approved_and_learned'
    ),
    'lessons_created', (select count(*) from public.lessons le where le.client_id = v_client),
    'lessons_active', (
      select count(*) from public.lessons le
      where (le.client_id = v_client or le.client_id is null) and le.status = 'active'
    )
  ) into v_metrics;

  select coalesce(jsonb_agg(t.j order by t.impact desc, t.applied desc, t.title), '[]')
  into v_top
  from (
    select le.title, count(*) as applied,
      round((count(*) * (avg(a.succeeded::integer) - coalesce(v_r1, 0) / 100.0))::numeric, 2) as impact,
      jsonb_build_object(
        'lesson_id', le.id, 'title', le.title, 'times_applied', count(*),
        'success_rate', round(100.0 * avg(a.succeeded::integer), 1),
        'impact_score', round((count(*) * (avg(a.succeeded::integer) - coalesce(v_r1, 0) / 100.0))::numeric, 2)
      ) as j
    from private.lesson_applications(v_client) a
    join public.lessons le on le.id = a.lesson_id
    group by le.id, le.title
    order by 3 desc, 2 desc, 1
    limit 10
  ) t;

  return jsonb_build_object(
    'sophie_metrics', v_metrics,
    'performance_improvement', jsonb_build_object(
      'baseline_booking_rate', v_r1,
      'current_booking_rate', v_r2,
      'improvement_percent', case when v_r1 > 0 and v_r2 is not null
        then round(100.0 * (v_x2::numeric / v_n2 - v_x1::numeric / v_n1) / (v_x1::numeric / v_n1), 1) end,
      'confidence_level', case when (v_test ->> 'enough_data')::boolean
        then round((v_test ->> 'confidence')::numeric, 4) end,
      'baseline_conversations', v_n1,
      'current_conversations', v_n2,
      'z_score', case when (v_test ->> 'enough_data')::boolean then round((v_test ->> 'z')::numeric, 3) end,
      'p_value', case when (v_test ->> 'enough_data')::boolean then round((v_test ->> 'p_value')::numeric, 6) end,
      'note', case when not (v_test ->> 'enough_data')::boolean then 'not enough data: ' || (v_test ->> 'reason') end
    ),
    'top_lessons', v_top
  );
end
$$;
comment on function private.sophie_impact() is 'Body of public.sophie_impact (security invoker).';

-- GET /api/analytics/sophie-impact (PostgREST /rpc/sophie_impact).
create function public.sophie_impact() returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.sophie_impact()
$$;
comment on function public.sophie_impact() is
  'GET /api/analytics/sophie-impact: {sophie_metrics, performance_improvement (baseline vs with-lessons booking '
  'rate, z-test confidence or "not enough data"), top_lessons (times_applied, success_rate, impact_score)}.';

revoke all on function
  private.analytics_ai_answers(uuid), private.lesson_applications(uuid),
  private.dataset_comparison(boolean), public.dataset_comparison(),
  private.two_proportion_z_test(bigint, bigint, bigint, bigint), private.sophie_impact(), public.sophie_impact()
from public, anon;
grant execute on function
  private.analytics_ai_answers(uuid), private.lesson_applications(uuid),
  private.dataset_comparison(boolean), public.dataset_comparison(),
  private.two_proportion_z_test(bigint, bigint, bigint, bigint), private.sophie_impact(), public.sophie_impact()
to authenticated, service_role;
