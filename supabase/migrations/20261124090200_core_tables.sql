-- Core tables: datasets, their campaign settings, leads, conversations and messages.
-- Composite foreign keys (x_id, client_id) make a row pointing into another tenant
-- impossible at the schema level, whatever the policies say.

create type public.campaign_status as enum ('draft', 'active', 'paused', 'completed');
create type public.lead_status as enum (
  'READY', 'M1_SENT', 'M2_SENT', 'M3_SENT', 'REPLIED', 'HOT', 'WARM', 'COLD',
  'CALL_BOOKED', 'CONVERTED', 'NOT_INTERESTED', 'NO_RESPONSE', 'OPTED_OUT', 'UNDELIVERABLE'
);
create type public.lead_sentiment as enum ('POSITIVE', 'NEGATIVE', 'NEUTRAL', 'HOT', 'UNCLEAR');
create type public.conversation_status as enum ('active', 'needs_human', 'closed');
create type public.ai_mode as enum ('auto', 'suggest', 'off');
create type public.message_direction as enum ('outbound', 'inbound');
create type public.message_category as enum (
  'm1', 'm2', 'm3', 'ai_response', 'human_manual', 'lead_reply', 'system'
);
create type public.message_status as enum (
  'draft', 'pending', 'sending', 'queued', 'sent', 'delivered', 'undelivered', 'failed',
  'received', 'canceled'
);

-- datasets ------------------------------------------------------------------------------
create table public.datasets (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null default private.current_client_id()
    references public.clients (id) on delete cascade,
  name text not null check (length(trim(name)) between 1 and 200),
  description text,
  source text,
  uploaded_file_url text,
  total_leads integer not null default 0 check (total_leads >= 0),
  active_leads integer not null default 0 check (active_leads >= 0),
  hot_leads integer not null default 0 check (hot_leads >= 0),
  converted_leads integer not null default 0 check (converted_leads >= 0),
  campaign_status public.campaign_status not null default 'draft',
  campaign_start_date timestamptz,
  campaign_end_date timestamptz,
  ai_mode public.ai_mode,
  created_by uuid default auth.uid() references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (id, client_id),
  check (campaign_end_date is null or campaign_start_date is null or campaign_end_date >= campaign_start_date)
);
comment on table public.datasets is 'An uploaded lead list and the campaign run on it.';
comment on column public.datasets.total_leads is 'Kept exact by triggers on leads; not writable by users.';
comment on column public.datasets.ai_mode is 'AI mode for this dataset''s conversations; null inherits the client''s.';
create index datasets_client_id_idx on public.datasets (client_id, created_at desc);
create index datasets_created_by_idx on public.datasets (created_by);

create trigger datasets_touch before update on public.datasets
  for each row execute function private.touch_updated_at();
create trigger datasets_client_fixed before update of client_id on public.datasets
  for each row execute function private.forbid_client_change();

-- campaign settings (one row per dataset) -------------------------------------------------
create table public.campaigns (
  dataset_id uuid primary key,
  client_id uuid not null default private.current_client_id(),
  m1_delay_hours numeric not null default 0 check (m1_delay_hours between 0 and 8760),
  m2_delay_hours numeric not null default 48 check (m2_delay_hours between 0 and 8760),
  m3_delay_hours numeric not null default 96 check (m3_delay_hours between 0 and 8760),
  ai_response_delay_seconds integer not null default 60 check (ai_response_delay_seconds between 0 and 86400),
  rate_limit_messages_per_minute integer not null default 1 check (rate_limit_messages_per_minute between 1 and 6000),
  hours_start smallint not null default 9 check (hours_start between 0 and 23),
  hours_end smallint not null default 21 check (hours_end between 1 and 24),
  days text[] not null default array['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']
    check (days <@ array['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] and cardinality(days) > 0),
  m1_template text,
  m2_template text,
  m3_template text,
  started_at timestamptz,
  paused_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  foreign key (dataset_id, client_id) references public.datasets (id, client_id) on delete cascade,
  check (hours_end > hours_start)
);
comment on table public.campaigns is 'Campaign settings of a dataset: sequence delays, pace, schedule window, templates.';
comment on column public.campaigns.hours_start is 'Sending window start, local hour of the lead (inclusive).';
comment on column public.campaigns.hours_end is 'Sending window end, local hour of the lead (exclusive).';
create index campaigns_client_id_idx on public.campaigns (client_id);

create trigger campaigns_touch before update on public.campaigns
  for each row execute function private.touch_updated_at();
create trigger campaigns_client_fixed before update of client_id on public.campaigns
  for each row execute function private.forbid_client_change();

-- leads ---------------------------------------------------------------------------------
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
  unique (id, client_id),
  unique (dataset_id, phone_number),
  foreign key (dataset_id, client_id) references public.datasets (id, client_id) on delete cascade
);
comment on table public.leads is 'A person on a dataset''s list; phone_number is E.164 and unique within the dataset.';
comment on column public.leads.timezone is 'IANA timezone derived from the number; null falls back to the client''s.';
comment on column public.leads.manual_mode is 'True when staff handle the conversation: the AI does not answer.';
comment on column public.leads.opted_out is 'True after STOP (or equivalent): nothing is ever sent to this lead.';
create index leads_client_id_idx on public.leads (client_id);
create index leads_dataset_status_idx on public.leads (dataset_id, contact_status);
create index leads_client_phone_idx on public.leads (client_id, phone_number);
create index leads_assigned_to_idx on public.leads (assigned_to) where assigned_to is not null;

create trigger leads_touch before update on public.leads
  for each row execute function private.touch_updated_at();
create trigger leads_client_fixed before update of client_id on public.leads
  for each row execute function private.forbid_client_change();

-- conversations -------------------------------------------------------------------------
create table public.conversations (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null default private.current_client_id(),
  dataset_id uuid not null,
  lead_id uuid not null unique,
  status public.conversation_status not null default 'active',
  sentiment public.lead_sentiment,
  quality_score numeric(4, 3) check (quality_score between 0 and 1),
  ai_mode public.ai_mode,
  message_count integer not null default 0 check (message_count >= 0),
  started_at timestamptz not null default now(),
  last_message_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (id, client_id),
  foreign key (lead_id, client_id) references public.leads (id, client_id) on delete cascade,
  foreign key (dataset_id, client_id) references public.datasets (id, client_id) on delete cascade
);
comment on table public.conversations is 'The SMS thread with one lead.';
comment on column public.conversations.ai_mode is 'AI mode override for this thread; null inherits dataset then client.';
create index conversations_client_id_idx on public.conversations (client_id, last_message_at desc);
create index conversations_dataset_id_idx on public.conversations (dataset_id);

create trigger conversations_touch before update on public.conversations
  for each row execute function private.touch_updated_at();
create trigger conversations_client_fixed before update of client_id on public.conversations
  for each row execute function private.forbid_client_change();

-- messages ------------------------------------------------------------------------------
create table public.messages (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null,
  dataset_id uuid,
  conversation_id uuid,
  lead_id uuid,
  direction public.message_direction not null,
  message_category public.message_category not null,
  status public.message_status not null,
  content text not null check (length(content) between 1 and 1600),
  from_number text,
  to_number text,
  twilio_sid text unique,
  segments smallint,
  error_code integer,
  error_message text,
  sent_at timestamptz,
  delivered_at timestamptz,
  failed_at timestamptz,
  received_at timestamptz,
  ai_generated boolean not null default false,
  ai_confidence numeric(4, 3) check (ai_confidence between 0 and 1),
  ai_reasoning text,
  ai_quality_score numeric(4, 3) check (ai_quality_score between 0 and 1),
  ai_metadata jsonb not null default '{}'::jsonb,
  sophie_feedback text,
  sophie_feedback_status text,
  sent_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  foreign key (conversation_id, client_id) references public.conversations (id, client_id) on delete cascade,
  foreign key (lead_id, client_id) references public.leads (id, client_id) on delete cascade,
  foreign key (dataset_id, client_id) references public.datasets (id, client_id) on delete cascade,
  foreign key (client_id) references public.clients (id) on delete cascade,
  check ((lead_id is null) = (conversation_id is null)),
  check (direction = 'inbound' or lead_id is not null)
);
comment on table public.messages is
  'Every SMS in or out. Inbound messages from unknown numbers are kept with no lead.';
comment on column public.messages.dataset_id is 'Denormalised for realtime feed filters (dataset_id=eq.X).';
comment on column public.messages.ai_metadata is
  'AI decision record: prompt version, lessons applied, token usage, model.';
create index messages_conversation_idx on public.messages (conversation_id, created_at);
create index messages_lead_idx on public.messages (lead_id, created_at);
create index messages_dataset_idx on public.messages (dataset_id, created_at);
create index messages_client_idx on public.messages (client_id, created_at);
create index messages_sent_by_idx on public.messages (sent_by) where sent_by is not null;

create trigger messages_touch before update on public.messages
  for each row execute function private.touch_updated_at();
create trigger messages_client_fixed before update of client_id on public.messages
  for each row execute function private.forbid_client_change();

-- row level security --------------------------------------------------------------------
alter table public.datasets enable row level security;
alter table public.campaigns enable row level security;
alter table public.leads enable row level security;
alter table public.conversations enable row level security;
alter table public.messages enable row level security;

-- A row of a dataset is visible to active members of its client who may see that dataset;
-- a member that sees only its assigned leads (see private.sees_only_assigned_leads) sees
-- only those leads and their threads and messages.
create policy "members read visible datasets" on public.datasets
  for select to authenticated
  using (
    client_id = (select private.current_client_id())
    and ((select private.sees_all_datasets()) or id = any ((select private.visible_dataset_ids())::uuid[]))
  );
create policy "admins and managers create datasets" on public.datasets
  for insert to authenticated
  with check (client_id = (select private.current_client_id()) and (select private.can_manage_datasets()));
create policy "admins and managers update visible datasets" on public.datasets
  for update to authenticated
  using (
    client_id = (select private.current_client_id()) and (select private.can_manage_datasets())
    and ((select private.sees_all_datasets()) or id = any ((select private.visible_dataset_ids())::uuid[]))
  )
  with check (client_id = (select private.current_client_id()));
create policy "admins delete datasets" on public.datasets
  for delete to authenticated
  using (client_id = (select private.current_client_id()) and (select private.is_admin()));

create policy "members read visible campaign settings" on public.campaigns
  for select to authenticated
  using (
    client_id = (select private.current_client_id())
    and ((select private.sees_all_datasets()) or dataset_id = any ((select private.visible_dataset_ids())::uuid[]))
  );
-- The `exists` makes another client's dataset answer as a missing one does (this policy's
-- 42501), before the row reaches the primary key (whose 23505 would tell that the dataset
-- exists and has settings) or the foreign key.
create policy "admins and managers create settings of visible datasets" on public.campaigns
  for insert to authenticated
  with check (
    client_id = (select private.current_client_id()) and (select private.can_manage_datasets())
    and ((select private.sees_all_datasets()) or dataset_id = any ((select private.visible_dataset_ids())::uuid[]))
    and exists (
      select 1 from public.datasets as d
      where d.id = campaigns.dataset_id and d.client_id = campaigns.client_id
    )
  );
create policy "admins and managers update settings of visible datasets" on public.campaigns
  for update to authenticated
  using (
    client_id = (select private.current_client_id()) and (select private.can_manage_datasets())
    and ((select private.sees_all_datasets()) or dataset_id = any ((select private.visible_dataset_ids())::uuid[]))
  )
  with check (client_id = (select private.current_client_id()));

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
create policy "writers update leads of visible datasets" on public.leads
  for update to authenticated
  using (
    client_id = (select private.current_client_id()) and (select private.can_write())
    and ((select private.sees_all_datasets()) or dataset_id = any ((select private.visible_dataset_ids())::uuid[]))
    and (not (select private.sees_only_assigned_leads()) or assigned_to = (select auth.uid()))
  )
  with check (client_id = (select private.current_client_id()));
create policy "admins delete leads" on public.leads
  for delete to authenticated
  using (client_id = (select private.current_client_id()) and (select private.is_admin()));

create policy "members read conversations of visible datasets" on public.conversations
  for select to authenticated
  using (
    client_id = (select private.current_client_id())
    and ((select private.sees_all_datasets()) or dataset_id = any ((select private.visible_dataset_ids())::uuid[]))
    and (not (select private.sees_only_assigned_leads()) or lead_id = any ((select private.assigned_lead_ids())::uuid[]))
  );
create policy "writers update conversations of visible datasets" on public.conversations
  for update to authenticated
  using (
    client_id = (select private.current_client_id()) and (select private.can_write())
    and ((select private.sees_all_datasets()) or dataset_id = any ((select private.visible_dataset_ids())::uuid[]))
    and (not (select private.sees_only_assigned_leads()) or lead_id = any ((select private.assigned_lead_ids())::uuid[]))
  )
  with check (client_id = (select private.current_client_id()));

-- Messages are written only through RPCs and workers (the send path enforces opt-out,
-- hours and limits), so authenticated users get read access only.
create policy "members read messages of visible datasets" on public.messages
  for select to authenticated
  using (
    client_id = (select private.current_client_id())
    and (
      (select private.sees_all_datasets())
      or dataset_id = any ((select private.visible_dataset_ids())::uuid[])
    )
    and (not (select private.sees_only_assigned_leads()) or lead_id = any ((select private.assigned_lead_ids())::uuid[]))
  );

-- Table privileges: what a user may touch at all; RLS then decides which rows.
revoke all on public.datasets, public.campaigns, public.leads, public.conversations, public.messages from anon;
revoke all on public.datasets, public.campaigns, public.leads, public.conversations, public.messages
  from authenticated;
grant select, delete on public.datasets to authenticated;
grant insert (name, description, source, campaign_start_date, campaign_end_date, ai_mode)
  on public.datasets to authenticated;
grant update (name, description, source, campaign_status, campaign_start_date, campaign_end_date, ai_mode)
  on public.datasets to authenticated;
grant select on public.campaigns to authenticated;
grant insert (
  dataset_id, m1_delay_hours, m2_delay_hours, m3_delay_hours, ai_response_delay_seconds,
  rate_limit_messages_per_minute, hours_start, hours_end, days, m1_template, m2_template, m3_template
) on public.campaigns to authenticated;
grant update (
  m1_delay_hours, m2_delay_hours, m3_delay_hours, ai_response_delay_seconds,
  rate_limit_messages_per_minute, hours_start, hours_end, days, m1_template, m2_template, m3_template
) on public.campaigns to authenticated;
grant select, delete on public.leads to authenticated;
grant insert (dataset_id, first_name, last_name, phone_number, email, postcode, inquiry_date, notes,
  custom_fields, assigned_to) on public.leads to authenticated;
grant update (first_name, last_name, email, postcode, notes, contact_status, lead_sentiment,
  manual_mode, archived, assigned_to) on public.leads to authenticated;
grant select on public.conversations to authenticated;
grant update (status, ai_mode) on public.conversations to authenticated;
grant select on public.messages to authenticated;

-- Realtime feeds (messages by dataset, leads by dataset, conversations).
alter publication supabase_realtime add table public.messages, public.leads, public.conversations;
