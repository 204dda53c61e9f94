-- Lead rules and indexes for lead management: flag timestamps kept by a trigger whatever
-- path changes the flags, a trigram search over names, email and phone digits, and the
-- indexes the lead list pages use.

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

-- Search text: lower-cased names and email plus the phone's digits, so that "+44 7700 900123",
-- "07700 900123" and "7700900123" all find +447700900123 (the query strips the same way and
-- drops leading zeros: an international 00 or a national trunk 0). Stored, not an index
-- expression: a trigram match is always rechecked on the row, and rechecking a stored
-- column costs a fifth of recomputing lower(concat(...)) per candidate (measured at 1M leads).
-- The expression is the column's own (no helper function): a SQL function needs
-- `set search_path` (Supabase's advisors), and a SET clause stops Postgres from inlining it,
-- which made every imported row pay ~3 us for the call (800k rows: 2.9 s instead of 0.5 s).
alter table public.leads add column search_text text generated always as (
  pg_catalog.lower(
    coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(email, '') || ' '
    || pg_catalog.replace(coalesce(phone_number, ''), '+', '')
  )
) stored;
comment on column public.leads.search_text is
  'Internal: what lead search matches (names, email, phone digits; lower case). Generated; not in API shapes.';

create index leads_search_trgm_idx on public.leads using gin (search_text extensions.gin_trgm_ops);

-- Filter-only lists of a dataset: counted from this index alone (index-only scan over the
-- included flags), and a status filter's newest-first page read in index order. It replaces
-- the plain (dataset_id, contact_status) index, whose lookups (e.g. a dataset's READY leads)
-- it serves the same way.
create index leads_dataset_status_cover_idx on public.leads (dataset_id, contact_status, created_at desc, id desc)
include (archived, manual_mode, lead_sentiment, client_id);
drop index public.leads_dataset_status_idx;

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
