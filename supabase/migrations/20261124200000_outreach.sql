-- Outreach: campaigns, conversations and messages, and the rules every SMS obeys.
--   * tables: campaign settings per dataset, the SMS thread per lead, every message in or out
--     (every column in its create table), the suppression list, pacing, Twilio events;
--   * one send path: every SMS is a messages row queued by private.queue_sms (or in bulk by the
--     sequencing tick); private.prepare_send re-checks opt-out, lead and campaign state, the
--     schedule window, both rate limits and per-number pacing right before Twilio;
--   * opt-out first: keywords and a maintained phrase set (data) in the ingest, before any AI;
--   * M1/M2/M3 sequencing by a set-based pg_cron tick; campaign RPCs; Twilio webhooks handled
--     idempotently; manual messaging and the conversation view; stranded sends reconciled;
--   * campaign completion: NO_RESPONSE after M3 and a grace period, completed campaigns.
-- prepare_send and the inbound ingest ask private.effective_ai_mode (30 ai); they are plpgsql,
-- which resolves the call when it runs. conversations.ai_consecutive_messages (the AI safeguard,
-- 30 ai) is a column of conversations, so it is defined here.

-- types -----------------------------------------------------------------------------------
create type public.conversation_status as enum ('active', 'needs_human', 'closed');
comment on type public.conversation_status is 'A thread: active, needs_human (handed to a person) or closed.';
create type public.message_direction as enum ('outbound', 'inbound');
comment on type public.message_direction is 'outbound (to the lead) or inbound (from a number).';
create type public.message_category as enum (
  'm1', 'm2', 'm3', 'ai_response', 'human_manual', 'lead_reply', 'system'
);
comment on type public.message_category is
  'Why a message exists: a sequence step, an AI response, a staff message, a lead reply or a system message.';
create type public.message_status as enum (
  'draft', 'pending', 'sending', 'queued', 'sent', 'delivered', 'undelivered', 'failed',
  'received', 'canceled'
);
comment on type public.message_status is
  'A message''s delivery state, moved forward only (Twilio statuses plus draft, pending, sending, canceled).';

-- campaign settings -----------------------------------------------------------------------
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
  no_response_grace_hours numeric not null default 72 check (no_response_grace_hours between 0 and 8760),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  foreign key (dataset_id, client_id) references public.datasets (id, client_id) on delete cascade,
  check (hours_end > hours_start)
);
comment on table public.campaigns is 'Campaign settings of a dataset: sequence delays, pace, schedule window, templates.';
comment on column public.campaigns.hours_start is 'Sending window start, local hour of the lead (inclusive).';
comment on column public.campaigns.hours_end is 'Sending window end, local hour of the lead (exclusive).';
comment on column public.campaigns.no_response_grace_hours is
  'Hours a lead has to reply after M3 before it becomes NO_RESPONSE (default 72).';
create index campaigns_client_id_idx on public.campaigns (client_id);

create trigger campaigns_touch before update on public.campaigns
  for each row execute function private.touch_updated_at();
create trigger campaigns_client_fixed before update of client_id on public.campaigns
  for each row execute function private.forbid_client_change();

-- conversations ---------------------------------------------------------------------------
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
  ai_consecutive_messages integer not null default 0 check (ai_consecutive_messages >= 0),
  unique (id, client_id),
  foreign key (lead_id, client_id) references public.leads (id, client_id) on delete cascade,
  foreign key (dataset_id, client_id) references public.datasets (id, client_id) on delete cascade
);
comment on table public.conversations is 'The SMS thread with one lead.';
comment on column public.conversations.ai_mode is 'AI mode override for this thread; null inherits dataset then client.';
comment on column public.conversations.ai_consecutive_messages is
  'AI messages sent on their own since a person last stepped in (a staff message, an approved draft, '
  'or manual mode switched off). Compared with the client''s ai_max_consecutive_messages.';
create index conversations_client_id_idx on public.conversations (client_id, last_message_at desc);
create index conversations_dataset_id_idx on public.conversations (dataset_id);

create trigger conversations_touch before update on public.conversations
  for each row execute function private.touch_updated_at();
create trigger conversations_client_fixed before update of client_id on public.conversations
  for each row execute function private.forbid_client_change();

-- messages --------------------------------------------------------------------------------
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
  send_started_at timestamptz,
  send_attempts smallint not null default 0,
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
comment on column public.messages.send_started_at is
  'When prepare_send handed the message to a worker (recorded before calling Twilio). With status '
  '"sending" and no result it marks an ambiguous attempt to reconcile. Rate limits count it.';
comment on column public.messages.send_attempts is 'How many times prepare_send released the message for sending.';
create index messages_conversation_idx on public.messages (conversation_id, created_at);
create index messages_lead_idx on public.messages (lead_id, created_at);
create index messages_dataset_idx on public.messages (dataset_id, created_at);
create index messages_client_idx on public.messages (client_id, created_at);
create index messages_sent_by_idx on public.messages (sent_by) where sent_by is not null;

create trigger messages_touch before update on public.messages
  for each row execute function private.touch_updated_at();
create trigger messages_client_fixed before update of client_id on public.messages
  for each row execute function private.forbid_client_change();

-- row level security and privileges -------------------------------------------------------
alter table public.campaigns enable row level security;
alter table public.conversations enable row level security;
alter table public.messages enable row level security;

-- Members read the campaign settings of the datasets they may see.
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
-- Admins and managers change the campaign settings of the datasets they may see.
create policy "admins and managers update settings of visible datasets" on public.campaigns
  for update to authenticated
  using (
    client_id = (select private.current_client_id()) and (select private.can_manage_datasets())
    and ((select private.sees_all_datasets()) or dataset_id = any ((select private.visible_dataset_ids())::uuid[]))
  )
  with check (client_id = (select private.current_client_id()));


-- Members read the threads of the datasets they may see (threads follow their lead when a member
-- fails closed).
create policy "members read conversations of visible datasets" on public.conversations
  for select to authenticated
  using (
    client_id = (select private.current_client_id())
    and ((select private.sees_all_datasets()) or dataset_id = any ((select private.visible_dataset_ids())::uuid[]))
    and (not (select private.sees_only_assigned_leads()) or lead_id = any ((select private.assigned_lead_ids())::uuid[]))
  );
-- Members who may write change a visible thread's status and AI mode.
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
revoke all on public.campaigns, public.conversations, public.messages from anon;
revoke all on public.campaigns, public.conversations, public.messages from authenticated;
grant select on public.campaigns to authenticated;
grant insert (
  dataset_id, m1_delay_hours, m2_delay_hours, m3_delay_hours, ai_response_delay_seconds,
  rate_limit_messages_per_minute, hours_start, hours_end, days, m1_template, m2_template, m3_template
) on public.campaigns to authenticated;
grant update (
  m1_delay_hours, m2_delay_hours, m3_delay_hours, ai_response_delay_seconds,
  rate_limit_messages_per_minute, hours_start, hours_end, days, m1_template, m2_template, m3_template
) on public.campaigns to authenticated;
grant select on public.conversations to authenticated;
grant update (status, ai_mode) on public.conversations to authenticated;
grant select on public.messages to authenticated;

-- Realtime feeds (messages by dataset, conversations).
alter publication supabase_realtime add table public.messages, public.conversations;

-- outreach state --------------------------------------------------------------------------
-- State the outreach rules keep: the per-client suppression list, each lead's place in the
-- M1/M2/M3 sequence, the send attempt on each message, per-number pacing, Twilio status
-- events (for deduplication and out-of-order callbacks) and inbound SMS no client owns.

-- suppressions ---------------------------------------------------------------------------
create table public.suppressions (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null default private.current_client_id() references public.clients (id) on delete cascade,
  phone_number text not null check (phone_number ~ '^\+[1-9][0-9]{6,14}$'),
  reason text not null default 'staff' check (length(reason) between 1 and 200),
  source text not null default 'staff'
    check (source in ('inbound_keyword', 'inbound_phrase', 'twilio_opt_out', 'twilio_error', 'ai', 'staff')),
  created_by uuid default auth.uid() references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  unique (client_id, phone_number)
);
comment on table public.suppressions is
  'Per-client do-not-contact list: nothing is ever sent to these numbers, manual messages included. '
  'Filled by STOP keywords, Twilio opt-out data, Twilio error 21610, the AI (opt-out intent) and staff.';
comment on column public.suppressions.reason is 'Why: the keyword received, the Twilio error, or a note by staff.';
comment on column public.suppressions.source is
  'inbound_keyword (STOP etc.), inbound_phrase (private.opt_out_phrases), twilio_opt_out (OptOutType), '
  'twilio_error (21610), ai (reply decision or ai.classify_opt_out), staff.';

alter table public.suppressions enable row level security;

-- Members read their client's suppression list.
create policy "members read their client's suppressions" on public.suppressions
  for select to authenticated
  using (client_id = (select private.current_client_id()));
-- Admins and managers add numbers to the suppression list by hand (source staff).
create policy "admins and managers add suppressions" on public.suppressions
  for insert to authenticated
  with check (
    client_id = (select private.current_client_id()) and (select private.can_manage_datasets()) and source = 'staff'
  );
-- Only a suppression staff added may be removed by staff; a lead's own STOP is lifted only by
-- the lead texting START.
create policy "admins remove suppressions staff added" on public.suppressions
  for delete to authenticated
  using (client_id = (select private.current_client_id()) and (select private.is_admin()) and source = 'staff');

revoke all on public.suppressions from anon, authenticated;
grant select, delete on public.suppressions to authenticated;
grant insert (phone_number, reason) on public.suppressions to authenticated;
grant all on public.suppressions to service_role;

-- leads: the sequence position (leads.sequence_step, defined with the leads) ---------------

-- The leads waiting for their next sequence step, keyed so that one tick probes each
-- (dataset, timezone, step) with a short index range scan in due order: the cost of a tick
-- depends on the rate limits, not on how many leads are due.
create index leads_sequence_waiting_idx on public.leads (
  dataset_id,
  (coalesce(timezone, '')),
  sequence_step,
  (case sequence_step when 0 then created_at when 1 then m1_sent_at else m2_sent_at end)
)
where not archived and not opted_out and not manual_mode
  and (
    (sequence_step = 0 and contact_status = 'READY')
    or (sequence_step = 1 and contact_status = 'M1_SENT')
    or (sequence_step = 2 and contact_status = 'M2_SENT')
  );

-- A number suppressed earlier is opted out the moment it is imported again.
create function private.leads_apply_suppressions() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if exists (select from public.suppressions) then
    update public.leads l
    set opted_out = true, opted_out_at = coalesce(l.opted_out_at, s.created_at), contact_status = 'OPTED_OUT'
    from new_rows n
    join public.suppressions s on s.client_id = n.client_id and s.phone_number = n.phone_number
    where l.id = n.id and not l.opted_out;
  end if;
  return null;
end
$$;
comment on function private.leads_apply_suppressions() is
  'Statement trigger: leads inserted with a suppressed number are opted out at once.';

-- Named to sort after leads_stats_insert: triggers on one event fire in name order, and the
-- counters must have counted the inserted leads as active before this update takes them off
-- (the other order briefly makes an empty dataset's active_leads -1, which its check refuses).
create trigger leads_suppressions_after_stats after insert on public.leads
  referencing new table as new_rows
  for each statement execute function private.leads_apply_suppressions();

-- messages: indexes the send rules use (send_started_at, send_attempts are defined with the messages)

-- At most one M1, one M2 and one M3 per lead, whatever runs twice.
create unique index messages_sequence_once_idx on public.messages (lead_id, message_category)
where message_category in ('m1', 'm2', 'm3');
create index messages_client_started_idx on public.messages (client_id, send_started_at)
where send_started_at is not null;
create index messages_dataset_started_idx on public.messages (dataset_id, send_started_at)
where send_started_at is not null and message_category in ('m1', 'm2', 'm3');
create index messages_pending_by_number_idx on public.messages (client_id, to_number) where status = 'pending';
create index messages_pending_by_dataset_idx on public.messages (dataset_id) where status = 'pending';

-- per-number pacing ----------------------------------------------------------------------
create table private.sending_pace (
  sender text primary key,
  next_free_at timestamptz not null
);
comment on table private.sending_pace is
  'Next free send slot per sending long code (or messaging service): one atomic upsert per send.';

-- Twilio status callbacks -----------------------------------------------------------------
create table private.twilio_status_events (
  message_sid text not null,
  status text not null,
  error_code integer,
  params jsonb not null,
  received_at timestamptz not null default now(),
  applied_at timestamptz,
  primary key (message_sid, status)
);
comment on table private.twilio_status_events is
  'Each (MessageSid, MessageStatus) once: deduplicates retried callbacks; events for a sid not stored yet '
  '(callback faster than the send result) wait here and are applied when the sid is recorded.';
create index twilio_status_events_unapplied_idx on private.twilio_status_events (message_sid)
where applied_at is null;

-- inbound SMS to a number no client owns --------------------------------------------------
create table private.unmatched_inbound (
  message_sid text primary key,
  from_number text,
  to_number text,
  body text,
  params jsonb not null,
  received_at timestamptz not null default now()
);
comment on table private.unmatched_inbound is
  'Inbound SMS whose To number (and messaging service) belongs to no client: kept, never dropped, for an '
  'operator to look at (messages.client_id cannot be null).';

revoke all on private.sending_pace, private.twilio_status_events, private.unmatched_inbound
  from public, anon, authenticated;
grant all on private.sending_pace, private.twilio_status_events, private.unmatched_inbound to service_role;
revoke all on function private.leads_apply_suppressions() from public, anon, authenticated;

-- SMS helpers -----------------------------------------------------------------------------
-- Pure helpers of the send rules: phone numbers as Twilio sends them, keywords, the opt-out
-- line, template merge fields, the schedule window in a lead's local time (DST-correct) and
-- the forward-only order of message statuses.

-- small pure helpers -----------------------------------------------------------------------
create function private.sms_e164(p_raw text) returns text
language sql
immutable
set search_path = ''
as $$
  -- Twilio sends E.164. Tolerates separators, a 00 prefix, and a '+' lost to form decoding.
  select case
    when v ~ '^\+[1-9][0-9]{6,14}$' then v
    when v ~ '^[1-9][0-9]{9,14}$' then '+' || v
  end
  from (
    select case when r like '00%' then '+' || substr(r, 3) else r end as v
    from (select regexp_replace(coalesce(p_raw, ''), '[[:space:]().-]', '', 'g') as r) x
  ) y
$$;
comment on function private.sms_e164(text) is 'A phone number as E.164, or null when it is not one.';

-- True when a text already tells the reader how to opt out ("Reply STOP...", "opt out",
-- "unsubscribe").
create function private.has_opt_out_instruction(p_text text) returns boolean
language sql
immutable
set search_path = ''
as $$
  select coalesce(p_text ~* '((reply|text|txt|send|respond)( with)?[[:space:]]+["''“]?(stop|end|unsubscribe))|opt[- ]?out|unsubscribe', false)
$$;
comment on function private.has_opt_out_instruction(text) is
  'True when a text already tells the reader how to opt out ("Reply STOP...", "opt out", "unsubscribe").';

-- STOP, START or HELP when an inbound body is one of the opt-out, opt-in or help keywords; else
-- null.
create function private.sms_keyword(p_body text) returns text
language sql
immutable
set search_path = ''
as $$
  -- The whole message, trimmed of spaces and punctuation, upper-cased: the way carriers and
  -- Twilio read keywords ("stop", " Stop! ", "STOP." all count; "please stop" does not).
  select case
    when k in ('STOP', 'STOPALL', 'STOP ALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'OPTOUT', 'OPT OUT', 'REVOKE')
      then 'STOP'
    when k in ('START', 'UNSTOP', 'YES') then 'START'
    when k in ('HELP', 'INFO') then 'HELP'
  end
  from (
    select upper(regexp_replace(
      regexp_replace(coalesce(p_body, ''), '^[[:space:][:punct:]]+|[[:space:][:punct:]]+$', '', 'g'),
      '[[:space:]]+', ' ', 'g'
    )) as k
  ) x
$$;
comment on function private.sms_keyword(text) is
  'STOP, START or HELP when an inbound body is one of the opt-out, opt-in or help keywords; else null.';

-- The client's opt-out line (settings.opt_out_line), or 'Reply STOP to opt out'.
create function private.client_opt_out_line(p_settings jsonb) returns text
language sql
immutable
set search_path = ''
as $$
  select coalesce(nullif(trim(p_settings ->> 'opt_out_line'), ''), 'Reply STOP to opt out')
$$;
comment on function private.client_opt_out_line(jsonb) is
  'The client''s opt-out line (settings.opt_out_line), or ''Reply STOP to opt out''.';

-- Appends the opt-out line unless the text already has an opt-out instruction (keeps within 1,600
-- chars).
create function private.with_opt_out_line(p_content text, p_line text) returns text
language sql
immutable
set search_path = ''
as $$
  select case
    when private.has_opt_out_instruction(p_content) then p_content
    when length(p_content) + length(p_line) + 1 <= 1600 then p_content || E'\n' || p_line
    else left(p_content, 1599 - length(p_line)) || E'\n' || p_line
  end
$$;
comment on function private.with_opt_out_line(text, text) is
  'Appends the opt-out line unless the text already has an opt-out instruction (keeps within 1,600 chars).';

-- Fills {first_name}, {last_name}, {full_name}, {company_name}, {email}, {postcode} and custom
-- fields, with {field|fallback} for empty values ("Hi {first_name|there}" -> "Hi there").
create function private.render_template(p_template text, p_lead public.leads, p_company text) returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  v_rest text := coalesce(p_template, '');
  v_out text := '';
  v_open integer;
  v_close integer;
  v_inner text;
  v_key text;
  v_val text;
begin
  -- {field} or {field|fallback}. Known fields come from the lead and the client; anything else
  -- is looked up in the lead's custom_fields. An empty field takes the fallback ("there" for
  -- names when none is given), and the spacing around a dropped word is tidied. A scan with
  -- strpos, not a regexp_matches query: the tick renders thousands of messages per statement.
  loop
    v_open := strpos(v_rest, '{');
    exit when v_open = 0;
    v_close := strpos(substr(v_rest, v_open + 1), '}');
    exit when v_close = 0;
    v_inner := substr(v_rest, v_open + 1, v_close - 1);
    if v_inner !~ '^[[:space:]]*[A-Za-z_][A-Za-z0-9_]*[[:space:]]*(\|[^{}]*)?$' then
      v_out := v_out || left(v_rest, v_open);
      v_rest := substr(v_rest, v_open + 1);
      continue;
    end if;
    v_key := trim(split_part(v_inner, '|', 1));
    v_val := case lower(v_key)
      when 'first_name' then p_lead.first_name
      when 'last_name' then p_lead.last_name
      when 'full_name' then concat_ws(' ', p_lead.first_name, p_lead.last_name)
      when 'name' then concat_ws(' ', p_lead.first_name, p_lead.last_name)
      when 'company_name' then p_company
      when 'company' then p_company
      when 'business_name' then p_company
      when 'email' then p_lead.email
      when 'postcode' then p_lead.postcode
      when 'phone_number' then p_lead.phone_number
      else coalesce(p_lead.custom_fields ->> v_key, p_lead.custom_fields ->> lower(v_key))
    end;
    v_val := coalesce(
      nullif(trim(v_val), ''),
      case when strpos(v_inner, '|') > 0 then trim(substr(v_inner, strpos(v_inner, '|') + 1)) end,
      case when lower(v_key) in ('first_name', 'name', 'full_name') then 'there' end,
      ''
    );
    v_out := v_out || left(v_rest, v_open - 1) || v_val;
    v_rest := substr(v_rest, v_open + v_close + 1);
  end loop;
  v_out := v_out || v_rest;
  if strpos(v_out, '  ') > 0 or v_out ~ '[ \t][,.!?;:]' then
    v_out := regexp_replace(v_out, '[ \t]{2,}', ' ', 'g');
    v_out := regexp_replace(v_out, '[ \t]+([,.!?;:])', '\1', 'g');
  end if;
  return trim(v_out);
end
$$;
comment on function private.render_template(text, public.leads, text) is
  'Fills {first_name}, {last_name}, {full_name}, {company_name}, {email}, {postcode} and custom fields, '
  'with {field|fallback} for empty values ("Hi {first_name|there}" -> "Hi there").';

-- schedule window ------------------------------------------------------------------------
create function private.in_send_window(
  p_at timestamptz, p_tz text, p_hours_start integer, p_hours_end integer, p_days text []
) returns boolean
language sql
stable
set search_path = ''
as $$
  select extract(hour from l) >= p_hours_start
    and extract(hour from l) < p_hours_end
    and (array['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'])[extract(isodow from l)::integer] = any (p_days)
  from (select p_at at time zone p_tz as l) x
$$;
comment on function private.in_send_window(timestamptz, text, integer, integer, text []) is
  'True when p_at falls inside the sending window [hours_start, hours_end) on an allowed day, in p_tz local time.';

-- The first instant at or after p_at inside the sending window, evaluated in p_tz (DST-correct).
create function private.next_send_window(
  p_at timestamptz, p_tz text, p_hours_start integer, p_hours_end integer, p_days text []
) returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  v_local timestamp := p_at at time zone p_tz;
  v_day date := v_local::date;
  v_candidate timestamptz;
begin
  if private.in_send_window(p_at, p_tz, p_hours_start, p_hours_end, p_days) then
    return p_at;
  end if;
  -- The next allowed day's opening hour, converted from local wall time to an instant in that
  -- zone: a DST change between now and then moves the UTC instant, never the local hour.
  for i in 0..7 loop
    v_candidate := ((v_day + i) + make_interval(hours => p_hours_start)) at time zone p_tz;
    if v_candidate > p_at
       and (array['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'])[extract(isodow from v_day + i)::integer] = any (p_days) then
      return v_candidate;
    end if;
  end loop;
  return null;
end
$$;
comment on function private.next_send_window(timestamptz, text, integer, integer, text []) is
  'The first instant at or after p_at inside the sending window, evaluated in p_tz (DST-correct).';

-- message status: forward only -----------------------------------------------------------
create function private.message_status_rank(p_status public.message_status) returns integer
language sql
immutable
set search_path = ''
as $$
  select case p_status
    when 'draft' then 0 when 'pending' then 1 when 'sending' then 2 when 'queued' then 3
    when 'sent' then 4 when 'delivered' then 5 when 'undelivered' then 5 when 'failed' then 5
    when 'canceled' then 6 when 'received' then 6
  end
$$;
comment on function private.message_status_rank(public.message_status) is
  'Order of outbound states; a message only moves to a higher rank. Rank 5+ states are final.';

-- Twilio's message status mapped to ours; null for statuses that do not concern an outbound
-- message.
create function private.twilio_message_status(p_status text) returns public.message_status
language sql
immutable
set search_path = ''
as $$
  select case lower(p_status)
    when 'accepted' then 'queued' when 'scheduled' then 'queued' when 'queued' then 'queued'
    when 'sending' then 'queued' when 'sent' then 'sent' when 'delivered' then 'delivered'
    when 'read' then 'delivered' when 'undelivered' then 'undelivered' when 'failed' then 'failed'
    when 'canceled' then 'failed'
  end::public.message_status
$$;
comment on function private.twilio_message_status(text) is
  'Twilio''s message status mapped to ours; null for statuses that do not concern an outbound message.';

revoke all on function private.sms_e164(text), private.has_opt_out_instruction(text), private.sms_keyword(text),
  private.client_opt_out_line(jsonb), private.with_opt_out_line(text, text),
  private.render_template(text, public.leads, text),
  private.in_send_window(timestamptz, text, integer, integer, text []),
  private.next_send_window(timestamptz, text, integer, integer, text []),
  private.message_status_rank(public.message_status), private.twilio_message_status(text)
  from public, anon, authenticated;
grant execute on function private.sms_e164(text), private.has_opt_out_instruction(text), private.sms_keyword(text),
  private.render_template(text, public.leads, text),
  private.in_send_window(timestamptz, text, integer, integer, text []),
  private.next_send_window(timestamptz, text, integer, integer, text [])
  to service_role;

-- opt-out and message status --------------------------------------------------------------
-- Opt-out, opt-in and undeliverable numbers, cancelling pending sends, and applying a message
-- status forward only (with Twilio error classification). Used by the send path, the status
-- callbacks and the inbound SMS path alike.

-- Cancels pending outbound messages (by number and/or lead and categories) and their queued
-- sms.send jobs.
create function private.cancel_pending_messages(
  p_client_id uuid, p_phone text, p_lead_id uuid, p_categories public.message_category [], p_reason text
) returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_rows integer;
begin
  -- Pending messages only: a message already handed to a worker ('sending') is past recall,
  -- which is why prepare_send re-checks everything at the last moment.
  with canceled as (
    update public.messages m
    set status = 'canceled', error_message = p_reason
    where m.status = 'pending'
      and m.client_id = p_client_id
      and (p_phone is null or m.to_number = p_phone)
      and (p_lead_id is null or m.lead_id = p_lead_id)
      and (p_categories is null or m.message_category = any (p_categories))
    returning m.id
  ), jobs as (
    update private.jobs j
    set status = 'canceled', finished_at = now(), last_error = 'message canceled: ' || p_reason, locked_until = null
    from canceled c
    where j.idempotency_key = 'sms.send:' || c.id and j.status = 'queued'
    returning 1
  )
  select count(*) into v_rows from canceled;
  return v_rows;
end
$$;
comment on function private.cancel_pending_messages(uuid, text, uuid, public.message_category [], text) is
  'Cancels pending outbound messages (by number and/or lead and categories) and their queued sms.send jobs.';

-- Opts a number out for a client at once: suppression row, every lead with that number OPTED_OUT,
-- every pending message to it canceled.
create function private.opt_out_number(p_client_id uuid, p_phone text, p_reason text, p_source text)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_leads integer;
begin
  insert into public.suppressions (client_id, phone_number, reason, source, created_by)
  values (p_client_id, p_phone, left(p_reason, 200), p_source, null)
  on conflict (client_id, phone_number) do nothing;
  update public.leads l
  set opted_out = true, opted_out_at = coalesce(l.opted_out_at, now()), contact_status = 'OPTED_OUT'
  where l.client_id = p_client_id and l.phone_number = p_phone
    and (not l.opted_out or l.contact_status <> 'OPTED_OUT');
  get diagnostics v_leads = row_count;
  perform private.cancel_pending_messages(p_client_id, p_phone, null, null, 'opted_out');
  return v_leads;
end
$$;
comment on function private.opt_out_number(uuid, text, text, text) is
  'Opts a number out for a client at once: suppression row, every lead with that number OPTED_OUT, every '
  'pending message to it canceled. Also the entry point for the AI''s opt-out intent (source ai).';

-- Lifts a client's suppression of a number (START/UNSTOP/YES); its leads become REPLIED, not
-- re-sequenced.
create function private.opt_in_number(p_client_id uuid, p_phone text) returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_removed integer;
begin
  delete from public.suppressions s where s.client_id = p_client_id and s.phone_number = p_phone;
  get diagnostics v_removed = row_count;
  -- Back in contact, but the sequence does not silently restart: the lead is REPLIED (it has
  -- just texted us), which no sequence step picks up; staff decide what happens next.
  update public.leads l
  set opted_out = false, opted_out_at = null,
      contact_status = case when l.contact_status = 'OPTED_OUT' then 'REPLIED' else l.contact_status end
  where l.client_id = p_client_id and l.phone_number = p_phone and l.opted_out;
  return v_removed;
end
$$;
comment on function private.opt_in_number(uuid, text) is
  'Lifts a client''s suppression of a number (START/UNSTOP/YES); its leads become REPLIED, not re-sequenced.';

-- An invalid or landline number (Twilio 21211, 21614, 30006...): its leads become UNDELIVERABLE,
-- pending messages canceled.
create function private.mark_number_undeliverable(p_client_id uuid, p_phone text, p_code integer) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.leads l
  set contact_status = 'UNDELIVERABLE'
  where l.client_id = p_client_id and l.phone_number = p_phone
    and l.contact_status not in ('UNDELIVERABLE', 'OPTED_OUT', 'CALL_BOOKED', 'CONVERTED');
  perform private.cancel_pending_messages(p_client_id, p_phone, null, null, 'undeliverable (Twilio ' || p_code || ')');
end
$$;
comment on function private.mark_number_undeliverable(uuid, text, integer) is
  'An invalid or landline number (Twilio 21211, 21614, 30006...): its leads become UNDELIVERABLE, pending messages canceled.';

-- Acts on a Twilio error code: 21610 opts the number out; invalid/landline codes make it
-- undeliverable.
create function private.classify_send_error(p_msg public.messages, p_code integer) returns text
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_code is null or p_msg.to_number is null then
    return null;
  end if;
  if p_code = 21610 then
    perform private.opt_out_number(p_msg.client_id, p_msg.to_number, 'Twilio error 21610: recipient unsubscribed',
      'twilio_error');
    return 'opted_out';
  end if;
  if p_code in (21211, 21214, 21217, 21612, 21614, 30005, 30006) then
    perform private.mark_number_undeliverable(p_msg.client_id, p_msg.to_number, p_code);
    return 'undeliverable';
  end if;
  return null;
end
$$;
comment on function private.classify_send_error(public.messages, integer) is
  'Acts on a Twilio error code: 21610 opts the number out; invalid/landline codes make it undeliverable.';

-- Moves an outbound message forward (never back), stamping sent/delivered/failed times and error
-- codes.
create function private.apply_message_status(
  p_id uuid, p_new public.message_status, p_error_code integer, p_error_message text, p_at timestamptz
) returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_msg public.messages;
begin
  select m.* into v_msg from public.messages m where m.id = p_id for update;
  if not found or p_new is null then
    return false;
  end if;
  -- Forward only: delivered is never overwritten by a late 'sent', a failure never hidden by
  -- a later segment's status; final states stay final.
  if private.message_status_rank(v_msg.status) >= 5
     or private.message_status_rank(p_new) <= private.message_status_rank(v_msg.status) then
    return false;
  end if;
  update public.messages m
  set status = p_new,
      sent_at = case when p_new in ('queued', 'sent', 'delivered') then coalesce(m.sent_at, p_at) else m.sent_at end,
      delivered_at = case when p_new = 'delivered' then coalesce(m.delivered_at, p_at) else m.delivered_at end,
      failed_at = case when p_new in ('failed', 'undelivered') then coalesce(m.failed_at, p_at) else m.failed_at end,
      error_code = coalesce(p_error_code, m.error_code),
      error_message = coalesce(p_error_message, m.error_message)
  where m.id = p_id
  returning m.* into v_msg;
  if p_new in ('failed', 'undelivered') then
    perform private.classify_send_error(v_msg, p_error_code);
  end if;
  return true;
end
$$;
comment on function private.apply_message_status(uuid, public.message_status, integer, text, timestamptz) is
  'Moves an outbound message forward (never back), stamping sent/delivered/failed times and error codes.';

-- Applies one status callback to the message with that sid; false when no message has the sid yet.
create function private.apply_twilio_status_event(p_sid text, p_status text, p_error_code integer, p_at timestamptz)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid;
begin
  select m.id into v_id from public.messages m where m.twilio_sid = p_sid and m.direction = 'outbound';
  if v_id is null then
    return false;
  end if;
  perform private.apply_message_status(
    v_id, private.twilio_message_status(p_status), p_error_code,
    case when p_error_code is not null then 'Twilio error ' || p_error_code end, p_at
  );
  return true;
end
$$;
comment on function private.apply_twilio_status_event(text, text, integer, timestamptz) is
  'Applies one status callback to the message with that sid; false when no message has the sid yet.';

revoke all on function private.cancel_pending_messages(uuid, text, uuid, public.message_category [], text),
  private.opt_out_number(uuid, text, text, text), private.opt_in_number(uuid, text),
  private.mark_number_undeliverable(uuid, text, integer), private.classify_send_error(public.messages, integer),
  private.apply_message_status(uuid, public.message_status, integer, text, timestamptz),
  private.apply_twilio_status_event(text, text, integer, timestamptz)
  from public, anon, authenticated;
grant execute on function private.opt_out_number(uuid, text, text, text), private.opt_in_number(uuid, text)
  to service_role;

-- opt-out phrases -------------------------------------------------------------------------
-- Opt-out in every AI mode, without the AI: a maintained phrase set (data, one row per rule with
-- its reason) matched against a normalised form of the inbound text. It runs inside
-- private.ingest_inbound_sms, in the transaction that stores the message, before any AI mode is
-- looked at. The AI only ever adds opt-outs on top of it (ai.classify_opt_out, opt_out_intent).
--
-- How a message is read:
--   1. private.opt_out_normalise: accents folded to ASCII (más -> mas, usuń -> usun), lower case,
--      apostrophes dropped (don't -> dont), every other non-letter/digit (punctuation, emoji,
--      line breaks) one space, letters repeated 3+ times folded ("stoooop" -> "stop").
--   2. kind 'guard' rows blank out known harmless uses of opt-out words ("don't stop",
--      "stop by", "bus stop", "wrong number of windows", "unsubscribe from what").
--   3. kind 'phrase' rows match anywhere in what is left; kind 'keyword' rows only when the whole
--      message has at most max_words words (a keyword inside a short message: "stop please",
--      "no. stop.", but not a long message that happens to contain "stop").
-- Patterns are PostgreSQL regular expressions (ARE) over the normalised text: words separated by
-- one space, \m and \M for word starts and ends, ^ and $ for the whole message.

create table private.opt_out_phrases (
  id integer generated always as identity primary key,
  kind text not null check (kind in ('phrase', 'keyword', 'guard')),
  -- The check compiles the pattern (an invalid one is refused) and refuses one matching the empty text.
  pattern text not null unique check ('' !~ pattern),
  language text not null default 'en' check (language ~ '^[a-z]{2}$'),
  max_words integer check (max_words > 0),
  reason text not null check (length(reason) between 1 and 300),
  example text,
  created_at timestamptz not null default now(),
  check ((kind = 'keyword') = (max_words is not null))
);
comment on table private.opt_out_phrases is
  'The deterministic opt-out rules read by private.opt_out_match: regular expressions over the normalised '
  'inbound text (private.opt_out_normalise), each with the reason it exists. Maintained as data: add a row '
  'to catch a new form of "stop", or a guard to stop a harmless one being read as an opt-out.';
comment on column private.opt_out_phrases.kind is
  'phrase: an opt-out anywhere in the message. keyword: an opt-out word that counts only in a message of at '
  'most max_words words. guard: a harmless use of an opt-out word, blanked out before phrases and keywords.';
comment on column private.opt_out_phrases.pattern is
  'ARE regular expression over the normalised text (lower-case ASCII words separated by one space).';
comment on column private.opt_out_phrases.max_words is 'keyword only: the longest message (in words) it applies to.';
comment on column private.opt_out_phrases.example is 'A message the rule is for (documentation and tests).';

alter table private.opt_out_phrases enable row level security;

-- The inbound text as the opt-out rules read it: accents folded, lower case, apostrophes dropped,
-- punctuation/emoji/whitespace one space, letters repeated 3+ times folded ("STOOOP!! 😡" ->
-- "stop").
create function private.opt_out_normalise(p_text text) returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select trim(regexp_replace(
    regexp_replace(
      regexp_replace(
        lower(translate(
          coalesce(p_text, ''),
          'áàâäãåéèêëíìîïóòôöõúùûüñçłąęśżźćńŵŷÁÀÂÄÃÅÉÈÊËÍÌÎÏÓÒÔÖÕÚÙÛÜÑÇŁĄĘŚŻŹĆŃŴŶ',
          'aaaaaaeeeeiiiiooooouuuunclaeszzcnwyaaaaaaeeeeiiiiooooouuuunclaeszzcnwy'
        )),
        '[''’‘`´]', '', 'g'
      ),
      '[^a-z0-9]+', ' ', 'g'
    ),
    '([a-z])\1{2,}', '\1', 'g'
  ))
$$;
comment on function private.opt_out_normalise(text) is
  'The inbound text as the opt-out rules read it: accents folded, lower case, apostrophes dropped, '
  'punctuation/emoji/whitespace one space, letters repeated 3+ times folded ("STOOOP!! 😡" -> "stop").';

create type private.opt_out_prepare as (guarded text, rules text, rule_ids integer []);

-- The inbound text normalised with the guards blanked out, and the opt-out rules that apply at its
-- length (rule_ids) as one regular expression.
create function private.opt_out_prepare(p_body text) returns private.opt_out_prepare
language sql
stable
security definer
set search_path = ''
as $$
  -- Two regular expressions per message, not one per rule: the guards as one alternation, then
  -- every rule that applies at this length as one alternation. The combined texts repeat across messages (one per message length up to the longest  -- noqa: LT05
  -- max_words), so PostgreSQL's compiled-regex cache keeps them.
  with n as (
    select private.opt_out_normalise(p_body) as t
  ),
  w as (
    select n.t, case when n.t = '' then 0 else array_length(string_to_array(n.t, ' '), 1) end as words
    from n
  ),
  g as (
    select
      w.words,
      coalesce(
        (select regexp_replace(w.t, string_agg('(?:' || p.pattern || ')', '|' order by p.id), ' ', 'g')
         from private.opt_out_phrases p where p.kind = 'guard'),
        w.t
      ) as t
    from w
  )
  select row(g.t, string_agg('(?:' || p.pattern || ')', '|' order by p.id), array_agg(p.id order by p.id))::private.opt_out_prepare  -- noqa: LT05
  from g
  left join private.opt_out_phrases p
    on p.kind in ('phrase', 'keyword') and (p.max_words is null or g.words <= p.max_words)
  group by g.t
$$;
comment on function private.opt_out_prepare(text) is
  'The inbound text normalised with the guards blanked out, and the opt-out rules that apply at its length '
  '(rule_ids) as one regular expression.';

-- True when an inbound text is an opt-out by the phrase set (private.opt_out_phrases).
create function private.is_opt_out_text(p_body text) returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(x.guarded ~ x.rules, false) from private.opt_out_prepare(p_body) x
$$;
comment on function private.is_opt_out_text(text) is
  'True when an inbound text is an opt-out by the phrase set (private.opt_out_phrases). The fast test: '
  'private.opt_out_match also names the rule.';

-- The opt-out rule an inbound text matches (guards applied first), or no row.
create function private.opt_out_match(p_body text) returns setof private.opt_out_phrases
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v private.opt_out_prepare;
  v_rule private.opt_out_phrases;
begin
  -- One combined test first (fast). Only a text that matches is tried rule by rule, in id order,
  -- to name the rule (regexp_match's capture groups over the combined expression cost more).
  select x.* into v from private.opt_out_prepare(p_body) x;
  if v.rules is null or not v.guarded ~ v.rules then
    return;
  end if;
  for v_rule in
    select p.* from private.opt_out_phrases p where p.id = any (v.rule_ids) order by p.id
  loop
    if v.guarded ~ v_rule.pattern then
      return next v_rule;
      return;
    end if;
  end loop;
end
$$;
comment on function private.opt_out_match(text) is
  'The opt-out rule an inbound text matches (guards applied first), or no row. Used by '
  'private.ingest_inbound_sms in every AI mode.';

revoke all on table private.opt_out_phrases from public, anon, authenticated;
grant select, insert, update, delete on table private.opt_out_phrases to service_role;
comment on type private.opt_out_prepare is 'private.opt_out_prepare''s result: guarded text, combined rules, their ids.';
revoke all on function private.opt_out_normalise(text), private.opt_out_prepare(text), private.is_opt_out_text(text),
  private.opt_out_match(text)
from public, anon, authenticated;
grant execute on function private.opt_out_normalise(text), private.opt_out_prepare(text), private.is_opt_out_text(text),
  private.opt_out_match(text)
to service_role;

-- the opt-out phrase set ------------------------------------------------------------------
-- The maintained opt-out phrase set (private.opt_out_phrases, defined with its matcher in
-- the section above): one row per rule, each with the reason it exists and an
-- example it is for. Patterns are read over private.opt_out_normalise's text. Measured by
-- tests/test_opt_out_layers.py and bench/optout; supabase/tests/204_opt_out_phrases.sql checks
-- that every rule matches its own example and no guard's example is an opt-out.
insert into private.opt_out_phrases (kind, language, max_words, pattern, reason, example) values
-- guards: harmless uses of opt-out words
('guard', 'en', null, '\m(dont|do not|cant|cannot|can not|couldnt|never|didnt|wouldnt|wont) stop\M(?! (texting|txting|messaging|msging|contacting|sending|calling|spamming|bothering|harassing)\M)',  -- noqa: LT05
  '"Don''t stop", "can''t stop thinking about it": a negated stop that is not about our messages.',
  'Can''t stop thinking about the kitchen, let''s talk'),
('guard', 'en', null, '\mstop(s|ped|ping)? (by|round|over|off|in at|in on|in)\M',
  '"Stop by at 2", "stop round after 5": stop as a visit.', 'Stop by at 2 if you like'),
('guard', 'en', null, '\m(bus|non|one|full|pit|last|next|first|truck|train|door|back) stop\M',
  '"Bus stop", "non-stop", "one stop shop", "full stop": stop as a noun.', 'I''m at the bus stop, call in 10 mins'),
('guard', 'en', null, '\mstop (press|gap|watch|cock|valve|tap|start)\M',
  '"Stop press", "stop gap": compound nouns.', 'Stop gap solution is fine for now'),
('guard', 'en', null, '\mstop(s)? (the |a |an |any |all the |that |this |our |my |it from |them from )?(draughts?|drafts?|leaks?|leaking|damp|condensation|noise|rain|water|cold|heat|mould|mold|wind|rattling|dripping|squeaking|drips?)\M',  -- noqa: LT05
  'What a product does: "will it stop the rain", "stop the draught in our back door".',
  'Would the new seals stop the condensation?'),
('guard', 'en', null, '\munsub(scribe)? (from|to) (what|which|where)\M',
  '"Unsubscribe from what?": a question, not a request.', 'unsubscribe from what? I''d like a quote'),
('guard', 'en', null, '\mwrong (number|no|num) (of|for)\M',
  '"Wrong number of windows", "wrong number for my husband": a correction, not a wrong recipient.',
  'wrong number of windows on the quote, it''s 6 not 5'),
('guard', 'en', null, '\m(gave|give|sent|put) (you |u )?(the |a )?wrong (number|no|num)\M(?! (mate|sorry|pal|buddy)$)',
  '"I gave you the wrong number": the lead corrects a number they gave.',
  'I gave you the wrong number for my husband, use his mobile'),
('guard', 'es', null, '\mplanta baja\M', '"Planta baja" is the ground floor.', 'la ventana de la planta baja esta rota'),

-- keywords inside short messages
('keyword', 'en', 12, '\mstop+\M',
  'STOP with politeness or anger around it ("stop please", "no. stop.", "STOP 😡", "I said stop"). Long messages '
  'that merely contain "stop" are left to the AI; guards remove harmless uses.', 'no. stop.'),
('keyword', 'en', 4, '\ms t o p\M', 'Spelled out "S-T-O-P".', 'S-T-O-P'),
('keyword', 'en', 8, '\munsub(scribe)?( me)?\M', 'UNSUBSCRIBE and its short form "unsub" in a short message.', 'Unsub pls'),
('keyword', 'en', 10, '\mopt ?(me |us )?out\M', '"Opt out", "opt me out", "optout" in a short message.', 'opt me out'),
('keyword', 'en', 6, '\mstop ?all\M', 'STOPALL, a carrier opt-out keyword.', 'stop all please'),
('keyword', 'en', 4, '^(please |pls |plz )?(cancel|end|quit|revoke|remove|delete)( (please|pls|plz|now|thanks|thank you|thx|ta|x))*$',  -- noqa: LT05
  'The carrier keywords CANCEL/END/QUIT/REVOKE (and a bare "remove"/"delete") as the whole message, padded only '
  'with politeness: inside a sentence these words usually mean something else ("end of the month").', 'cancel please'),
('keyword', 'en', 6, '^(no more|please no more|no more please|no more thanks)$', 'A bare "no more".', 'No more'),
('keyword', 'cy', 10, '\mstopi(o|wch)\M', 'Welsh STOPIO / stopiwch.', 'Stopio os gwelwch yn dda'),
('keyword', 'cy', 8, '\mdim mwy\M', 'Welsh "dim mwy" (no more).', 'Dim mwy'),
('keyword', 'es', 5, '^((quiero )?dar(me|nos)? de )?baja( (por favor|gracias|ya))*$', 'Spanish BAJA / darme de baja.', 'Baja por favor'),  -- noqa: LT05
('keyword', 'es', 4, '^(parar|para ya|cancelar|basta|basta ya)( (por favor|gracias))*$', 'Spanish PARAR / CANCELAR / BASTA.', 'parar'),  -- noqa: LT05
('keyword', 'pl', 6, '\mrezygnuj(e|emy)\M', 'Polish "rezygnuję" (I resign / opt out).', 'rezygnuje'),

-- English phrases
('phrase', 'en', null, '\mno (more|further) (texts?|txts?|messages?|msgs?|sms|spam|contact|calls?|of (these|this|them|your (texts|messages)))\M',  -- noqa: LT05
  '"No more texts/messages", "no further contact".', 'no more texts thanks'),
('phrase', 'en', null, '\m(dont|do not|no longer) (want|wish|need)( to (get|receive|be sent|have))?( any| anymore| any more| more| further| these| your| the| such)* (texts?|txts?|messages?|msgs?|sms|contact|calls?)\M',  -- noqa: LT05
  '"I don''t want any more texts", "I no longer wish to receive messages".', 'I don''t want any more texts'),
('phrase', 'en', null, '\m(no longer|dont|do not) (wish|want) to (be )?(contacted|messaged|texted|hear from)\M',
  '"I no longer wish to be contacted".', 'I no longer wish to be contacted'),
('phrase', 'en', null, '\m(stop|quit|cease|pls stop|please stop|kindly stop) (all )?(sending|texting|txting|messaging|msging|contacting|spamming|calling|bothering|pestering|harassing|emailing)\M',  -- noqa: LT05
  '"Stop texting me", "please stop sending me messages", "quit texting me", at any length.', 'Stop texting me'),
('phrase', 'en', null, '\mcease (all )?(further )?(communication|contact|messages|texts|messaging)\M', '"Please cease all communication".',  -- noqa: LT05
  'Please cease all communication with me'),
('phrase', 'en', null, '\mrefrain from (sending|texting|messaging|contacting)\M', '"Kindly refrain from sending further texts".',
  'kindly refrain from sending further texts'),
('phrase', 'en', null, '\m(dont|do not|never|dont ever|do not ever|never ever|please dont|pls dont) (text|txt|message|msg|contact|sms|email|call|ring|bother|spam) (me|us|this number|this phone|my number|my phone)\M(?! (before|after|at|on|during|while|until|till|til|between|in the|tomorrow|today|tonight|this (morning|afternoon|evening|week)|next|yet|right now|when|if|unless|about|text|txt|call|ring|email|message|instead|just|first)\M)',  -- noqa: LT05
  '"Don''t text me", "do not contact me", "never contact me again", unless a time or channel follows ("don''t '
  'text me before 5pm", "don''t call me, text instead"): those are preferences, not revocations.', 'don''t text me again'),
('phrase', 'en', null, '\m(dont|do not|never) (text|txt|message|msg|contact|sms|bother) (me |us )?(again|anymore|any more|ever again|no more)\M',  -- noqa: LT05
  '"Not interested, don''t text again": an explicit revocation even when it comes with "not interested".',
  'Not interested, don''t text again'),
('phrase', 'en', null, '\m(rather|prefer) (you )?(not|didnt|did not)( to)?( be)? (contact|message|text|receiv|send|get)\w*\M',
  '"I''d rather not receive these", "I''d prefer not to be contacted".', 'Thanks but I''d rather not receive these messages'),
('phrase', 'en', null, '\m(didnt|did not|not) (message|text|contact|send me|send)\M.{0,20}\m(further|again|anymore|any more|these)\M',  -- noqa: LT05
  '"I''d appreciate it if you didn''t message this number any further", "could you not send me these anymore".',
  'Could you not send me these anymore?'),
('phrase', 'en', null, '\m(dont|do not) send (me )?(any )?(more|these|anymore|any more|further)\M', '"Please don''t send more".',
  'please don''t send more'),
('phrase', 'en', null, '\masked (you )?(before |already |previously )?not to be (messaged|contacted|texted)\M',
  '"I have asked before not to be messaged".', 'I have asked before not to be messaged'),
('phrase', 'en', null, '\mleave (me|us) alone\M', '"Leave me alone".', 'leave me alone'),
('phrase', 'en', null, '\m(remove|delete|erase|wipe|scrub) (me|us|this number|this no|this phone|(all )?(of )?(my|our) (number|no|details|data|info|information|personal (data|details|information|info)|contact details|mobile|mobile number|phone number|phone))\M',  -- noqa: LT05
  '"Remove my number", "delete my details", "remove me from your list", GDPR erasure.', 'Delete my details please'),
('phrase', 'en', null, '\mtake (me|us|my (number|details|name)|this number) (off|out)\M', '"Take me off your list", "take my number off".',  -- noqa: LT05
  'take me off your list'),
('phrase', 'en', null, '\m(off|from) (your|the) (mailing |contact |call |texting |sms |marketing )?(list|database|records|system)\M',  -- noqa: LT05
  '"... off your list", "... from your database".', 'please remove my number from your database'),
('phrase', 'en', null, '\m(delete|erase|remove|wipe) (everything|anything|all|all the data|all data) (you (hold|have|keep|store)|about me|on me)\M',  -- noqa: LT05
  'GDPR: "delete everything you hold on me".', 'I want you to delete everything you hold on me'),
('phrase', 'en', null, '\m(my|our) (number|details|data|info|information|personal (data|details|information)) (deleted|removed|erased)\M',  -- noqa: LT05
  'GDPR in the passive: "I want my details deleted". Added after the held-out set missed it.', 'I want my details deleted'),
('phrase', 'en', null, '\mright to (erasure|be forgotten|object)\M', 'GDPR Article 17/21 wording.', 'Right to be forgotten please'),  -- noqa: LT05
('phrase', 'en', null, '\mgdpr\M.*\m(delete|deleted|erase|erased|remove|removed|erasure|request)\M', 'A GDPR erasure request.',
  'GDPR request: erase my details'),
('phrase', 'en', null, '\m(withdraw|withdrawing|revoke|revoking) (my |our )?consent\M', 'Consent withdrawn.',
  'I withdraw my consent for you to contact me'),
('phrase', 'en', null, '\m(wrong|incorrect) (number|no|num|person|mobile)\M', '"Wrong number", "wrong person": not the lead.',
  'You have the wrong number'),
('phrase', 'en', null, '\mnever (enquired|inquired|signed up|requested|asked for (this|these|it|them|your))\M',
  '"I never enquired", "I never asked for this": no consent to begin with.', 'I never enquired. Remove my number'),
('phrase', 'en', null, '\mwho gave you my (number|details)\M.*\m(delete|remove|stop)\M', '"Who gave you my number? Delete it".',
  'Who gave you my number? Delete it'),

-- Spanish
('phrase', 'es', null, '\mno (me|nos) (escrib|mand|envi|contact|molest|llam)\w*\M( (mas|nunca|ya|mensajes|sms|por favor)|$)',
  '"No me escribas más", "no me manden más mensajes", "no me contacten más".', 'no me escribas más'),
('phrase', 'es', null, '\m(deja|dejen|dejad|deje|para|paren|parad|pare) de (enviar|escribir|mandar|contactar|molestar|llamar)\w*',
  '"Dejen de enviarme mensajes".', 'dejen de enviarme mensajes'),
('phrase', 'es', null, '\mno quiero (recibir |mas |recibir mas )+(mensajes|sms|textos|nada)\M', '"No quiero recibir más mensajes".',  -- noqa: LT05
  'no quiero recibir más mensajes'),
('phrase', 'es', null, '\mno mas (mensajes|sms|textos)\M', '"No más mensajes".', 'basta ya, no más mensajes'),
('phrase', 'es', null, '\m(borr|elimin|quit)(a|en|ad|ar|e|ame|enme)( (mi|mis|el|este))? (numero|datos|telefono)\M',
  '"Borra mi número", "elimina mis datos".', 'borra mi número'),
('phrase', 'es', null, '\mdar(me|nos)? de baja\M', '"Quiero darme de baja".', 'quiero darme de baja'),
('phrase', 'es', null, '\mnumero (equivocado|incorrecto)\M', '"Número equivocado" (wrong number).', 'número equivocado'),

-- Polish
('phrase', 'pl', null, '\mnie (pisz|piszcie|wysylaj|wysylajcie|dzwon|dzwoncie|kontaktuj|kontaktujcie|smsuj|smsujcie)\M',
  '"Nie pisz", "nie piszcie do mnie więcej", "nie kontaktujcie się ze mną".', 'nie piszcie do mnie wiecej'),
('phrase', 'pl', null, '\mnie (pisac|wysylac|dzwonic|kontaktowac)( (wiecej|do mnie|juz))+\M',
  '"Proszę nie pisać więcej" (please do not write any more). Added after the held-out set missed it.',
  'prosze nie pisac wiecej'),
('phrase', 'pl', null, '\mprzesta(n|ncie|nmy)( prosze)? (pisac|wysylac|dzwonic|smsowac)\M', '"Przestańcie pisać".', 'przestancie pisac'),  -- noqa: LT05
('phrase', 'pl', null, '\mwypis(z|zcie|ac|ze)\M', '"Wypisz mnie", "proszę mnie wypisać" (unsubscribe me).', 'wypisz mnie'),
('phrase', 'pl', null, '\mnie chce( (wiecej|zadnych|juz|dostawac|otrzymywac))+ (wiadomosci|smsow|sms|smsy)\M',
  '"Nie chcę więcej wiadomości".', 'nie chce wiecej wiadomosci'),
('phrase', 'pl', null, '\musun(cie)? (moj|moje|mnie|m?oj numer)( numer| dane)?\M', '"Usuń mój numer".', 'usun moj numer'),
('phrase', 'pl', null, '\m(zly|bledny) numer\M', '"Zły numer" (wrong number).', 'zly numer'),

-- Welsh
('phrase', 'cy', null, '\mpeidiwch (a |ag )?(chysylltu|anfon|tecstio|negeseuo)\w*', '"Peidiwch â chysylltu â fi" (do not contact me).',  -- noqa: LT05
  'peidiwch a chysylltu a fi'),
('phrase', 'cy', null, '\mdad ?(d|n)anysgrif\w*', '"Dad-danysgrifio" (unsubscribe).', 'dad-danysgrifio'),
('phrase', 'cy', null, '\mtynnwch (fy|fi)\M', '"Tynnwch fy rhif" (remove my number).', 'tynnwch fy rhif'),
('phrase', 'cy', null, '\mrhif anghywir\M', '"Rhif anghywir" (wrong number).', 'rhif anghywir');

-- the send path ---------------------------------------------------------------------------
-- The one outbound send path and the rules it enforces. Every SMS (sequence, AI, manual,
-- system) is a messages row queued by private.queue_sms (or, in bulk, by the sequencing
-- tick); the sms.send worker asks private.prepare_send right before calling Twilio, which
-- re-checks opt-out, lead state, campaign state, the schedule window, both rate limits and
-- per-number pacing at that moment; private.record_send_result stores the outcome.


-- queue_sms ------------------------------------------------------------------------------
create function private.ensure_conversation(p_lead public.leads) returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid;
begin
  insert into public.conversations (client_id, dataset_id, lead_id)
  values (p_lead.client_id, p_lead.dataset_id, p_lead.id)
  on conflict (lead_id) do nothing
  returning id into v_id;
  if v_id is null then
    select c.id into v_id from public.conversations c where c.lead_id = p_lead.id;
  end if;
  return v_id;
end
$$;
comment on function private.ensure_conversation(public.leads) is 'The lead''s conversation, created on first use.';

-- True when the number is on the client's suppression list.
create function private.number_is_suppressed(p_client_id uuid, p_phone text) returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (select from public.suppressions s where s.client_id = p_client_id and s.phone_number = p_phone)
$$;
comment on function private.number_is_suppressed(uuid, text) is
  'True when the number is on the client''s suppression list.';

-- The one definition of "opted out" every path asks (bookings, AI answers, sends).
create function private.lead_is_opted_out(p_lead_id uuid) returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce((
    select l.opted_out or l.contact_status = 'OPTED_OUT'
      or private.number_is_suppressed(l.client_id, l.phone_number)
    from public.leads l where l.id = p_lead_id
  ), false)
$$;
comment on function private.lead_is_opted_out(uuid) is
  'True when the lead texted STOP (opted_out / OPTED_OUT) or its number is on the client''s suppression list '
  '(a staff entry does not flag the lead row): no booking, AI answer or send for it.';
revoke all on function private.lead_is_opted_out(uuid) from public, anon, authenticated;
grant execute on function private.lead_is_opted_out(uuid) to service_role;

-- The one way to queue an outbound SMS: stores a pending message (conversation created if missing,
-- opt-out line on the lead's first message) and enqueues sms.send.
create function private.queue_sms(
  p_lead_id uuid,
  p_content text,
  p_category public.message_category,
  p_sent_by uuid default null,
  p_ai jsonb default null,
  p_run_at timestamptz default now()
) returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_lead public.leads;
  v_client public.clients;
  v_content text := trim(coalesce(p_content, ''));
  v_conversation uuid;
  v_id uuid;
begin
  if p_category = 'lead_reply' then
    perform private.raise_error(400, 'lead_reply is an inbound category; it cannot be sent');
  end if;
  select l.* into v_lead from public.leads l where l.id = p_lead_id;
  if not found then
    perform private.raise_error(404, format('lead %s not found', p_lead_id));
  end if;
  if v_lead.opted_out or private.number_is_suppressed(v_lead.client_id, v_lead.phone_number) then
    perform private.raise_error(
      403, format('this lead has opted out (replied STOP); no message can be sent to %s', v_lead.phone_number),
      jsonb_build_object('hint', 'Only the lead can opt back in, by texting START.'));
  end if;
  if v_content = '' then
    perform private.raise_error(400, 'message content is empty');
  end if;
  if length(v_content) > 1600 then
    perform private.raise_error(400, format('message content is %s characters; the limit is 1600', length(v_content)));
  end if;
  select c.* into v_client from public.clients c where c.id = v_lead.client_id;
  -- The first message a lead receives carries the opt-out line.
  if not exists (
    select from public.messages m
    where m.lead_id = v_lead.id and m.direction = 'outbound' and m.status not in ('canceled', 'failed', 'draft')
  ) then
    v_content := private.with_opt_out_line(v_content, private.client_opt_out_line(v_client.settings));
  end if;
  v_conversation := private.ensure_conversation(v_lead);
  insert into public.messages (
    client_id, dataset_id, conversation_id, lead_id, direction, message_category, status, content,
    from_number, to_number, ai_generated, ai_confidence, ai_reasoning, ai_quality_score, ai_metadata, sent_by
  ) values (
    v_lead.client_id, v_lead.dataset_id, v_conversation, v_lead.id, 'outbound', p_category, 'pending', v_content,
    v_client.twilio_phone_number, v_lead.phone_number,
    p_ai is not null or p_category = 'ai_response',
    (p_ai ->> 'confidence')::numeric, p_ai ->> 'reasoning', (p_ai ->> 'quality_score')::numeric,
    coalesce(p_ai - 'confidence' - 'reasoning' - 'quality_score', '{}'::jsonb), p_sent_by
  )
  returning id into v_id;
  -- Conversational messages (a person is waiting) go ahead of bulk sequence messages.
  perform private.enqueue_job(
    'sms.send', jsonb_build_object('message_id', v_id), coalesce(p_run_at, now()), 'sms.send:' || v_id,
    v_lead.client_id, 5, (case when p_category in ('m1', 'm2', 'm3') then 100 else 10 end)::smallint
  );
  return v_id;
end
$$;
comment on function private.queue_sms(uuid, text, public.message_category, uuid, jsonb, timestamptz) is
  'The one way to queue an outbound SMS: stores a pending message (conversation created if missing, opt-out '
  'line on the lead''s first message) and enqueues sms.send. 403 when the number opted out.';

-- prepare_send ---------------------------------------------------------------------------
create function private.skip_message(p_id uuid, p_reason text) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.messages set status = 'canceled', error_message = p_reason where id = p_id and status = 'pending';
  return jsonb_build_object('action', 'skip', 'reason', p_reason);
end
$$;
comment on function private.skip_message(uuid, text) is
  'Cancels a pending message with the reason it was not sent; returns the skip action for the worker.';

-- Called by the sms.send worker right before Twilio: re-checks opt-out, lead and campaign state,
-- window, client/campaign rates and number pacing now; returns send (message marked sending),
-- defer, skip or reconcile.
create function private.prepare_send(p_message_id uuid, p_worker text, p_now timestamptz default now())
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_msg public.messages;
  v_lead public.leads;
  v_client public.clients;
  v_campaign public.campaigns;
  v_dataset_status public.campaign_status;
  v_seq boolean;
  v_tz text;
  v_limit integer;
  v_count integer;
  v_until timestamptz;
  v_sender text;
  v_pace numeric;
  v_slot timestamptz;
  v_body text;
  v_mode text;
begin
  select m.* into v_msg from public.messages m where m.id = p_message_id for update;
  if not found then
    return jsonb_build_object('action', 'skip', 'reason', 'canceled');
  end if;
  if v_msg.status = 'sending' then
    -- A previous attempt was recorded but its result never was (crash between the two).
    return jsonb_build_object(
      'action', 'reconcile', 'to', v_msg.to_number, 'from', v_msg.from_number, 'body', v_msg.content,
      'attempted_at', v_msg.send_started_at, 'attempts', v_msg.send_attempts
    );
  end if;
  if v_msg.status in ('canceled', 'draft') or v_msg.direction <> 'outbound' then
    return jsonb_build_object('action', 'skip', 'reason', 'canceled');
  end if;
  if v_msg.status <> 'pending' then
    return jsonb_build_object('action', 'skip', 'reason', 'already_sent');
  end if;

  select l.* into v_lead from public.leads l where l.id = v_msg.lead_id;
  select c.* into v_client from public.clients c where c.id = v_msg.client_id;
  v_seq := v_msg.message_category in ('m1', 'm2', 'm3');

  -- Never to an opted-out number, whoever wrote the message.
  if v_lead.opted_out or private.number_is_suppressed(v_lead.client_id, v_lead.phone_number) then
    return private.skip_message(v_msg.id, 'opted_out');
  end if;
  -- Automated messages respect archive and manual mode; a person's own message goes.
  if v_seq or v_msg.message_category = 'ai_response' then
    if v_lead.archived then
      return private.skip_message(v_msg.id, 'archived');
    end if;
    if v_lead.manual_mode then
      return private.skip_message(v_msg.id, 'manual_mode');
    end if;
  end if;
  if v_msg.message_category = 'ai_response' then
    v_mode := private.effective_ai_mode(v_msg.conversation_id)::text;
    if v_mode = 'off' then
      return private.skip_message(v_msg.id, 'manual_mode');
    end if;
    -- The lead wrote again after this answer was written: the answer to the latest message wins.
    if exists (
      select from public.messages i
      where i.conversation_id = v_msg.conversation_id and i.direction = 'inbound' and i.created_at > v_msg.created_at
    ) then
      return private.skip_message(v_msg.id, 'superseded');
    end if;
  end if;

  if v_seq then
    if v_lead.call_booked or v_lead.contact_status = 'CALL_BOOKED' then
      return private.skip_message(v_msg.id, 'booked');
    end if;
    if v_lead.contact_status = 'CONVERTED' then
      return private.skip_message(v_msg.id, 'converted');
    end if;
    if v_lead.contact_status in ('NOT_INTERESTED', 'UNDELIVERABLE', 'OPTED_OUT') then
      return private.skip_message(v_msg.id, 'canceled');
    end if;
    if v_lead.reply_received_at > v_msg.created_at
       or v_lead.contact_status in ('REPLIED', 'HOT', 'WARM', 'COLD', 'NO_RESPONSE') then
      return private.skip_message(v_msg.id, 'superseded');
    end if;
    select d.campaign_status into v_dataset_status from public.datasets d where d.id = v_msg.dataset_id;
    if v_dataset_status = 'paused' then
      -- Kept pending: resume_campaign brings the job forward and it goes exactly once.
      return jsonb_build_object('action', 'defer', 'until', p_now + interval '1 hour', 'reason', 'paused');
    end if;
    if v_dataset_status <> 'active' then
      return private.skip_message(v_msg.id, 'canceled');
    end if;
    select c.* into v_campaign from public.campaigns c where c.dataset_id = v_msg.dataset_id;
    v_tz := coalesce(v_lead.timezone, v_client.timezone);
    if not private.in_send_window(p_now, v_tz, v_campaign.hours_start, v_campaign.hours_end, v_campaign.days) then
      return jsonb_build_object(
        'action', 'defer', 'reason', 'outside_window',
        'until', private.next_send_window(p_now, v_tz, v_campaign.hours_start, v_campaign.hours_end, v_campaign.days)
      );
    end if;
    -- Client limit: messages handed to Twilio in the rolling hour.
    v_limit := coalesce((v_client.settings ->> 'sms_per_hour')::integer, 60);
    select count(*) into v_count from public.messages m
    where m.client_id = v_msg.client_id and m.send_started_at > p_now - interval '1 hour' and m.send_started_at <= p_now;
    if v_count >= v_limit then
      select m.send_started_at + interval '1 hour' into v_until from public.messages m
      where m.client_id = v_msg.client_id and m.send_started_at > p_now - interval '1 hour' and m.send_started_at <= p_now
      order by m.send_started_at desc offset v_limit - 1 limit 1;
      return jsonb_build_object('action', 'defer', 'until', v_until, 'reason', 'client_rate');
    end if;
    -- Campaign limit: sequence messages of this dataset in the rolling minute.
    select count(*) into v_count from public.messages m
    where m.dataset_id = v_msg.dataset_id and m.message_category in ('m1', 'm2', 'm3')
      and m.send_started_at > p_now - interval '1 minute' and m.send_started_at <= p_now;
    if v_count >= v_campaign.rate_limit_messages_per_minute then
      select m.send_started_at + interval '1 minute' into v_until from public.messages m
      where m.dataset_id = v_msg.dataset_id and m.message_category in ('m1', 'm2', 'm3')
        and m.send_started_at > p_now - interval '1 minute' and m.send_started_at <= p_now
      order by m.send_started_at desc offset v_campaign.rate_limit_messages_per_minute - 1 limit 1;
      return jsonb_build_object('action', 'defer', 'until', v_until, 'reason', 'campaign_rate');
    end if;
  end if;

  -- Per-number pacing: one atomic claim of the sender's next free slot. A messaging service
  -- spreads load over its own pool, so it is paced only when the client sets a rate for it.
  if v_client.twilio_messaging_service_sid is not null then
    v_sender := v_client.twilio_messaging_service_sid;
    v_pace := (v_client.settings ->> 'service_pace_per_second')::numeric;
  else
    v_sender := v_client.twilio_phone_number;
    v_pace := coalesce((v_client.settings ->> 'number_pace_per_second')::numeric, 1);
  end if;
  if v_sender is not null and v_pace > 0 then
    insert into private.sending_pace as p (sender, next_free_at)
    values (v_sender, p_now + make_interval(secs => 1 / v_pace))
    on conflict (sender) do update set next_free_at = p_now + make_interval(secs => 1 / v_pace)
    where p.next_free_at <= p_now
    returning p.next_free_at into v_slot;
    if v_slot is null then
      select p.next_free_at into v_until from private.sending_pace p where p.sender = v_sender;
      return jsonb_build_object('action', 'defer', 'until', v_until, 'reason', 'number_pace');
    end if;
  end if;

  -- The first message the lead actually receives carries the opt-out line.
  v_body := v_msg.content;
  if not exists (
    select from public.messages m
    where m.lead_id = v_msg.lead_id and m.direction = 'outbound' and m.id <> v_msg.id
      and m.status in ('sending', 'queued', 'sent', 'delivered')
  ) then
    v_body := private.with_opt_out_line(v_body, private.client_opt_out_line(v_client.settings));
  end if;

  update public.messages m
  set status = 'sending', send_started_at = p_now, send_attempts = m.send_attempts + 1, content = v_body,
      from_number = case when v_client.twilio_messaging_service_sid is null then v_client.twilio_phone_number end,
      to_number = v_lead.phone_number
  where m.id = v_msg.id;

  return jsonb_build_object(
    'action', 'send',
    'to', v_lead.phone_number,
    'from', case when v_client.twilio_messaging_service_sid is null then v_client.twilio_phone_number end,
    'messaging_service_sid', v_client.twilio_messaging_service_sid,
    'body', v_body,
    'status_callback', nullif(current_setting('dbr.twilio_status_callback_url', true), ''),
    'message_id', v_msg.id,
    'worker', p_worker
  );
end
$$;
comment on function private.prepare_send(uuid, text, timestamptz) is
  'Called by the sms.send worker right before Twilio: re-checks opt-out, lead and campaign state, window, '
  'client/campaign rates and number pacing now; returns send (message marked sending), defer, skip or reconcile.';

-- record_send_result ----------------------------------------------------------------------
create function private.record_send_result(
  p_message_id uuid,
  p_twilio_sid text,
  p_status text,
  p_error_code integer default null,
  p_error_message text default null,
  p_segments integer default null
) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_msg public.messages;
  v_new public.message_status;
  v_event record;
begin
  select m.* into v_msg from public.messages m where m.id = p_message_id for update;
  if not found then
    raise exception 'message % not found', p_message_id using errcode = 'P0002';
  end if;

  -- 'pending' (or 'retry'): Twilio did not take the message (429/5xx before acceptance, or a
  -- reconcile that found nothing): back to pending so the next attempt may send.
  if lower(p_status) in ('pending', 'retry') then
    if v_msg.status = 'sending' and v_msg.twilio_sid is null then
      update public.messages m
      set status = 'pending', send_started_at = null,
          error_code = coalesce(p_error_code, m.error_code), error_message = coalesce(p_error_message, m.error_message)
      where m.id = p_message_id;
    end if;
    return;
  end if;

  v_new := private.twilio_message_status(p_status);
  if v_new is null then
    raise exception 'unknown send status %', p_status using errcode = '22023';
  end if;

  if p_twilio_sid is not null and v_msg.twilio_sid is null then
    update public.messages m
    set twilio_sid = p_twilio_sid, segments = coalesce(p_segments, m.segments)
    where m.id = p_message_id;
  elsif p_segments is not null then
    update public.messages m set segments = p_segments where m.id = p_message_id;
  end if;

  -- Accepted by Twilio for the first time: the lead has been sent this step.
  if p_twilio_sid is not null and v_msg.twilio_sid is null and v_new in ('queued', 'sent', 'delivered') then
    update public.leads l
    set m1_sent_at = case when v_msg.message_category = 'm1' then coalesce(l.m1_sent_at, now()) else l.m1_sent_at end,
        m2_sent_at = case when v_msg.message_category = 'm2' then coalesce(l.m2_sent_at, now()) else l.m2_sent_at end,
        m3_sent_at = case when v_msg.message_category = 'm3' then coalesce(l.m3_sent_at, now()) else l.m3_sent_at end,
        contact_status = case
          when v_msg.message_category = 'm1' and l.contact_status = 'READY' then 'M1_SENT'
          when v_msg.message_category = 'm2' and l.contact_status = 'M1_SENT' then 'M2_SENT'
          when v_msg.message_category = 'm3' and l.contact_status = 'M2_SENT' then 'M3_SENT'
          else l.contact_status
        end::public.lead_status
    where l.id = v_msg.lead_id;
    update public.conversations c
    set message_count = c.message_count + 1, last_message_at = greatest(c.last_message_at, now())
    where c.id = v_msg.conversation_id;
  end if;

  perform private.apply_message_status(p_message_id, v_new, p_error_code, p_error_message, now());

  -- Status callbacks that beat this result to the database are applied now, in any order.
  if p_twilio_sid is not null then
    for v_event in
      select e.status, e.error_code, e.received_at from private.twilio_status_events e
      where e.message_sid = p_twilio_sid and e.applied_at is null
      order by e.received_at
    loop
      perform private.apply_twilio_status_event(p_twilio_sid, v_event.status, v_event.error_code, v_event.received_at);
    end loop;
    update private.twilio_status_events e set applied_at = now()
    where e.message_sid = p_twilio_sid and e.applied_at is null;
  end if;
end
$$;
comment on function private.record_send_result(uuid, text, text, integer, text, integer) is
  'Stores a send outcome: sid, status (forward only), error code and segments; on first acceptance stamps the '
  'lead''s m1/m2/m3_sent_at and status. 21610 opts out, invalid/landline codes make the lead UNDELIVERABLE. '
  'Status pending/retry returns an unaccepted attempt to pending.';

revoke all on function private.ensure_conversation(public.leads), private.number_is_suppressed(uuid, text),
  private.queue_sms(uuid, text, public.message_category, uuid, jsonb, timestamptz),
  private.skip_message(uuid, text), private.prepare_send(uuid, text, timestamptz),
  private.record_send_result(uuid, text, text, integer, text, integer)
  from public, anon, authenticated;
grant execute on function private.queue_sms(uuid, text, public.message_category, uuid, jsonb, timestamptz),
  private.prepare_send(uuid, text, timestamptz),
  private.record_send_result(uuid, text, text, integer, text, integer)
  to service_role;

-- sequencing ------------------------------------------------------------------------------
-- M1/M2/M3 sequencing, run by pg_cron every minute. One tick is a handful of set-based
-- statements whatever the number of leads: per active campaign it finds the timezones its
-- waiting leads live in (an index skip scan), keeps those inside the sending window now, and
-- probes each (timezone, step) for the first due leads in due order, never more than the
-- campaign may still send this minute. Window functions then cap each campaign at its
-- per-minute rate and each client at its rolling-hour budget. Messages and sms.send jobs are
-- written in one statement; a unique index makes a second run in the same minute a no-op.

-- Built-in reactivation templates for M1..M3 (short, personal); the opt-out line is added to the
-- first message.
create function private.default_sequence_template(p_step integer) returns text
language sql
immutable
set search_path = ''
as $$
  select case p_step
    when 1 then 'Hi {first_name|there}, it''s {company_name}. You got in touch with us a while ago - '
      || 'are you still looking for help with this? Just reply to this message.'
    when 2 then 'Hi {first_name|there}, just following up on my last text. Would a quick call this week help? '
      || 'Reply YES and we''ll sort a time.'
    when 3 then 'Last one from me, {first_name|there} - if now isn''t the right time, no problem at all. '
      || 'If you''d like to pick things up, just reply here. {company_name}'
  end
$$;
comment on function private.default_sequence_template(integer) is
  'Built-in reactivation templates for M1..M3 (short, personal); the opt-out line is added to the first message.';

-- The template of a step: the campaign's, else the client's settings.templates.mN, else the
-- built-in one.
create function private.sequence_template(p_campaign public.campaigns, p_client_settings jsonb, p_step integer)
returns text
language sql
immutable
set search_path = ''
as $$
  select coalesce(
    nullif(trim(case p_step when 1 then p_campaign.m1_template when 2 then p_campaign.m2_template
      else p_campaign.m3_template end), ''),
    nullif(trim(p_client_settings -> 'templates' ->> ('m' || p_step)), ''),
    private.default_sequence_template(p_step)
  )
$$;
comment on function private.sequence_template(public.campaigns, jsonb, integer) is
  'The template of a step: the campaign''s, else the client''s settings.templates.mN, else the built-in one.';

-- Timezones present among a dataset's leads waiting for a sequence step ('' = lead has none:
-- client's).
create function private.sequence_timezones(p_dataset_id uuid) returns setof text
language sql
stable
set search_path = ''
as $$
  -- Distinct timezones ('' = the client's) among the dataset's waiting leads, by skipping
  -- through leads_sequence_waiting_idx: one index descent per timezone, not one row per lead.
  with recursive t (tz) as (
    (
      select coalesce(l.timezone, '') from public.leads l
      where l.dataset_id = p_dataset_id
        and not l.archived and not l.opted_out and not l.manual_mode
        and (
          (l.sequence_step = 0 and l.contact_status = 'READY')
          or (l.sequence_step = 1 and l.contact_status = 'M1_SENT')
          or (l.sequence_step = 2 and l.contact_status = 'M2_SENT')
        )
      order by coalesce(l.timezone, '') limit 1
    )
    union all
    select (
      select coalesce(l.timezone, '') from public.leads l
      where l.dataset_id = p_dataset_id
        and not l.archived and not l.opted_out and not l.manual_mode
        and (
          (l.sequence_step = 0 and l.contact_status = 'READY')
          or (l.sequence_step = 1 and l.contact_status = 'M1_SENT')
          or (l.sequence_step = 2 and l.contact_status = 'M2_SENT')
        )
        and coalesce(l.timezone, '') > t.tz
      order by coalesce(l.timezone, '') limit 1
    )
    from t where t.tz is not null
  )
  select t.tz from t where t.tz is not null
$$;
comment on function private.sequence_timezones(uuid) is
  'Timezones present among a dataset''s leads waiting for a sequence step ('''' = lead has none: client''s).';

create type private.sequence_pick as (
  lead_id uuid,
  dataset_id uuid,
  client_id uuid,
  step smallint,
  run_at timestamptz
);
comment on type private.sequence_pick is 'One lead chosen by a tick for its next step (0 = M1, 1 = M2, 2 = M3).';

-- The leads one tick queues: due, eligible, inside their local window, within campaign and client
-- limits.
create function private.pick_sequence_leads(p_now timestamptz, p_dataset_id uuid default null)
returns setof private.sequence_pick
language sql
stable
security definer
set search_path = ''
-- The planner's row estimates for the lateral probes are pessimistic enough to trigger JIT,
-- whose compile time (~80 ms) would dwarf the query itself (a few ms).
set jit = off
as $$
  with camp as (
    select c.dataset_id, c.client_id, c.rate_limit_messages_per_minute as rate, c.started_at,
      c.m1_delay_hours, c.m2_delay_hours, c.m3_delay_hours, c.hours_start, c.hours_end, c.days,
      cl.timezone as client_tz,
      coalesce((cl.settings ->> 'sms_per_hour')::integer, 60) as client_limit,
      (
        select count(*) from public.messages m
        where m.dataset_id = c.dataset_id and m.message_category in ('m1', 'm2', 'm3')
          and m.created_at >= date_trunc('minute', p_now) and m.created_at < date_trunc('minute', p_now) + interval '1 minute'
      ) as used_this_minute
    from public.campaigns c
    join public.datasets d on d.id = c.dataset_id
    join public.clients cl on cl.id = c.client_id
    where d.campaign_status = 'active' and c.started_at is not null
      and (p_dataset_id is null or c.dataset_id = p_dataset_id)
  ),
  -- The client's rolling hour: everything queued in the last hour that was not canceled, plus
  -- older messages handed to Twilio within the hour (sent or in flight).
  client_room as (
    select x.client_id, greatest(0, max(x.client_limit) - (
      select count(*) from public.messages m
      where m.client_id = x.client_id and m.direction = 'outbound' and m.status <> 'canceled'
        and m.created_at > p_now - interval '1 hour' and m.created_at <= p_now
    ) - (
      select count(*) from public.messages m
      where m.client_id = x.client_id and m.send_started_at > p_now - interval '1 hour'
        and m.send_started_at <= p_now and m.created_at <= p_now - interval '1 hour'
    )) as room
    from camp x
    group by x.client_id
  ),
  camp_room as (
    select camp.*, least(greatest(0, camp.rate - camp.used_this_minute), cr.room)::integer as room
    from camp join client_room cr on cr.client_id = camp.client_id
  ),
  zones as (
    select cr.dataset_id, t.tz
    from camp_room cr
    cross join lateral private.sequence_timezones(cr.dataset_id) t (tz)
    where cr.room > 0
      and private.in_send_window(p_now, coalesce(nullif(t.tz, ''), cr.client_tz), cr.hours_start, cr.hours_end, cr.days)
  ),
  cand as (
    select cr.dataset_id, cr.client_id, cr.room, s.step, l.id as lead_id, l.anchor
    from camp_room cr
    join zones z on z.dataset_id = cr.dataset_id
    cross join lateral (
      values
        (0::smallint, case when cr.started_at + cr.m1_delay_hours * interval '1 hour' <= p_now then 'infinity'::timestamptz end),
        (1::smallint, p_now - cr.m2_delay_hours * interval '1 hour'),
        (2::smallint, p_now - cr.m3_delay_hours * interval '1 hour')
    ) s (step, due_before)
    cross join lateral (
      select l.id, (case l.sequence_step when 0 then l.created_at when 1 then l.m1_sent_at else l.m2_sent_at end) as anchor
      from public.leads l
      where l.dataset_id = cr.dataset_id and coalesce(l.timezone, '') = z.tz
        and not l.archived and not l.opted_out and not l.manual_mode
        and (
          (l.sequence_step = 0 and l.contact_status = 'READY')
          or (l.sequence_step = 1 and l.contact_status = 'M1_SENT')
          or (l.sequence_step = 2 and l.contact_status = 'M2_SENT')
        )
        and l.sequence_step = s.step
        and (case l.sequence_step when 0 then l.created_at when 1 then l.m1_sent_at else l.m2_sent_at end) <= s.due_before
        -- No reply since the previous step.
        and (
          s.step = 0 or l.reply_received_at is null
          or l.reply_received_at < (case s.step when 1 then l.m1_sent_at else l.m2_sent_at end)
        )
        and not exists (
          select from public.suppressions x where x.client_id = l.client_id and x.phone_number = l.phone_number
        )
      order by (case l.sequence_step when 0 then l.created_at when 1 then l.m1_sent_at else l.m2_sent_at end)
      limit cr.room
    ) l
    where s.due_before is not null
  ),
  -- Follow-ups first (their timing matters), then the longest waiting.
  per_campaign as (
    select c.*, row_number() over (partition by c.dataset_id order by c.step desc, c.anchor, c.lead_id) as rn
    from cand c
  ),
  per_client as (
    select p.*, row_number() over (partition by p.client_id order by p.step desc, p.anchor, p.lead_id) as rn_client
    from per_campaign p
    where p.rn <= p.room
  )
  select p.lead_id, p.dataset_id, p.client_id, p.step,
    p_now + make_interval(secs => (p.rn - 1) * 60.0 / cm.rate)
  from per_client p
  join camp cm on cm.dataset_id = p.dataset_id
  join client_room cr on cr.client_id = p.client_id
  where p.rn_client <= cr.room
$$;
comment on function private.pick_sequence_leads(timestamptz, uuid) is
  'The leads one tick queues: due, eligible, inside their local window, within campaign and client limits.';

-- pg_cron, every minute: queues the M1/M2/M3 messages now due (optionally for one dataset), within
-- the schedule window in each lead's time, the campaign's per-minute rate and the client's hourly
-- budget.
create function private.run_sequencing_tick(p_now timestamptz default now(), p_dataset_id uuid default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
set jit = off
as $$
declare
  v_picks private.sequence_pick [];
  v_counts jsonb;
begin
  -- Ticks run one at a time, so two of them never both see the same spare capacity.
  perform pg_advisory_xact_lock(hashtext('dbr.sequencing_tick'));

  select coalesce(array_agg(p), '{}') into v_picks from private.pick_sequence_leads(p_now, p_dataset_id) p;
  if cardinality(v_picks) = 0 then
    return jsonb_build_object('at', p_now, 'queued', 0, 'm1', 0, 'm2', 0, 'm3', 0);
  end if;

  insert into public.conversations (client_id, dataset_id, lead_id)
  select p.client_id, p.dataset_id, p.lead_id from unnest(v_picks) p
  on conflict (lead_id) do nothing;

  -- Templates are resolved once per campaign and step, not once per message.
  with tpl as materialized (
    select x.dataset_id, x.step, t.template, private.has_opt_out_instruction(t.template) as has_line,
      private.client_opt_out_line(cl.settings) as line, cl.name as company, cl.twilio_phone_number as sender
    from (select distinct p.dataset_id, p.client_id, p.step from unnest(v_picks) p) x
    join public.campaigns c on c.dataset_id = x.dataset_id
    join public.clients cl on cl.id = x.client_id
    cross join lateral (select private.sequence_template(c, cl.settings, x.step + 1) as template) t
  ),
  ins as (
    insert into public.messages (
      client_id, dataset_id, conversation_id, lead_id, direction, message_category, status, content,
      from_number, to_number, created_at
    )
    select p.client_id, p.dataset_id, cv.id, l.id, 'outbound', ('m' || (p.step + 1))::public.message_category, 'pending',
      -- The first message a lead receives carries the opt-out line (unless the template has one).
      case
        when t.has_line or exists (
          select from public.messages m
          where m.lead_id = l.id and m.direction = 'outbound' and m.status not in ('canceled', 'failed', 'draft')
        )
          then left(private.render_template(t.template, l, t.company), 1600)
        else left(private.render_template(t.template, l, t.company), 1599 - length(t.line)) || E'\n' || t.line
      end,
      t.sender, l.phone_number, p_now
    from unnest(v_picks) p
    join public.leads l on l.id = p.lead_id
    join public.conversations cv on cv.lead_id = l.id
    join tpl t on t.dataset_id = p.dataset_id and t.step = p.step
    on conflict (lead_id, message_category) where message_category in ('m1', 'm2', 'm3') do nothing
    returning id, lead_id, client_id, message_category
  ),
  jobs as (
    insert into private.jobs (kind, payload, run_at, idempotency_key, client_id, max_attempts, priority)
    select 'sms.send', jsonb_build_object('message_id', i.id), p.run_at, 'sms.send:' || i.id, i.client_id, 5, 100
    from ins i join unnest(v_picks) p on p.lead_id = i.lead_id
    on conflict (idempotency_key) do nothing
    returning 1
  ),
  steps as (
    update public.leads l
    set sequence_step = greatest(l.sequence_step, substr(i.message_category::text, 2)::smallint)
    from ins i
    where l.id = i.lead_id
    returning 1
  )
  select jsonb_build_object(
    'queued', count(*),
    'm1', count(*) filter (where i.message_category = 'm1'),
    'm2', count(*) filter (where i.message_category = 'm2'),
    'm3', count(*) filter (where i.message_category = 'm3'),
    'jobs', (select count(*) from jobs),
    'leads', (select count(*) from steps)
  ) into v_counts
  from ins i;

  return jsonb_build_object('at', p_now) || v_counts;
end
$$;
comment on function private.run_sequencing_tick(timestamptz, uuid) is
  'pg_cron, every minute: queues the M1/M2/M3 messages now due (optionally for one dataset), within the '
  'schedule window in each lead''s time, the campaign''s per-minute rate and the client''s hourly budget.';

revoke all on function private.default_sequence_template(integer),
  private.sequence_template(public.campaigns, jsonb, integer), private.sequence_timezones(uuid),
  private.pick_sequence_leads(timestamptz, uuid), private.run_sequencing_tick(timestamptz, uuid)
  from public, anon, authenticated;
grant execute on function private.run_sequencing_tick(timestamptz, uuid) to service_role;

select private.schedule_cron('sequencing-tick', '* * * * *', 'select private.run_sequencing_tick()');

-- campaign settings validation and progress -----------------------------------------------
-- Campaign settings validation (the API contract's settings body) and the honest completion
-- estimate: the schedule window walked forward at the effective hourly pace.

-- settings --------------------------------------------------------------------------------
create function private.campaign_number_setting(
  p_settings jsonb, p_key text, p_min numeric, p_max numeric, p_integer boolean
) returns numeric
language plpgsql
immutable
set search_path = ''
as $$
declare
  v jsonb := p_settings -> p_key;
begin
  if v is null or jsonb_typeof(v) = 'null' then
    return null;
  end if;
  if jsonb_typeof(v) <> 'number' or (p_integer and (v::text)::numeric <> trunc((v::text)::numeric))
     or (v::text)::numeric < p_min or (v::text)::numeric > p_max then
    perform private.raise_error(400, format('%s must be %s between %s and %s', p_key,
      case when p_integer then 'an integer' else 'a number' end, p_min, p_max));
  end if;
  return (v::text)::numeric;
end
$$;
comment on function private.campaign_number_setting(jsonb, text, numeric, numeric, boolean) is
  'Reads a numeric campaign setting (null when absent); 400 naming the field when not a number (or integer) in range.';

-- Checks the API contract's campaign settings body (400 naming the field) and flattens it to
-- campaigns columns.
create function private.validate_campaign_settings(p_settings jsonb) returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_s jsonb := coalesce(p_settings, '{}'::jsonb);
  v_sched jsonb;
  v_tpl jsonb;
  v_out jsonb := '{}'::jsonb;
  v_unknown text;
  v_days text [];
  v_key text;
  v_start numeric;
  v_end numeric;
begin
  if jsonb_typeof(v_s) <> 'object' then
    perform private.raise_error(400, 'settings must be a JSON object');
  end if;
  select string_agg(k, ', ' order by k) into v_unknown from jsonb_object_keys(v_s) k
  where k <> all (array['m1_delay_hours', 'm2_delay_hours', 'm3_delay_hours', 'ai_response_delay_seconds',
    'rate_limit_messages_per_minute', 'schedule', 'templates', 'm1_template', 'm2_template', 'm3_template']);
  if v_unknown is not null then
    perform private.raise_error(400, format('unknown campaign setting(s): %s', v_unknown),
      jsonb_build_object('hint', 'Allowed: m1_delay_hours, m2_delay_hours, m3_delay_hours, ai_response_delay_seconds, '
        'rate_limit_messages_per_minute, schedule {hours_start, hours_end, days}, templates {m1, m2, m3}.'));
  end if;
  foreach v_key in array array['m1_delay_hours', 'm2_delay_hours', 'm3_delay_hours'] loop
    v_out := v_out || jsonb_build_object(v_key, private.campaign_number_setting(v_s, v_key, 0, 8760, false));
  end loop;
  v_out := v_out || jsonb_build_object(
    'ai_response_delay_seconds', private.campaign_number_setting(v_s, 'ai_response_delay_seconds', 0, 86400, true),
    'rate_limit_messages_per_minute', private.campaign_number_setting(v_s, 'rate_limit_messages_per_minute', 1, 6000, true)
  );

  v_sched := v_s -> 'schedule';
  if v_sched is not null and jsonb_typeof(v_sched) <> 'null' then
    if jsonb_typeof(v_sched) <> 'object' then
      perform private.raise_error(400, 'schedule must be an object {hours_start, hours_end, days}');
    end if;
    v_start := private.campaign_number_setting(v_sched, 'hours_start', 0, 23, true);
    v_end := private.campaign_number_setting(v_sched, 'hours_end', 1, 24, true);
    if coalesce(v_start, 9) >= coalesce(v_end, 21) then
      perform private.raise_error(400, format('schedule.hours_end (%s) must be after schedule.hours_start (%s)',
        coalesce(v_end, 21), coalesce(v_start, 9)));
    end if;
    if v_sched ? 'days' and jsonb_typeof(v_sched -> 'days') <> 'null' then
      if jsonb_typeof(v_sched -> 'days') <> 'array' or jsonb_array_length(v_sched -> 'days') = 0 then
        perform private.raise_error(400, 'schedule.days must be a non-empty array such as ["mon", "tue"]');
      end if;
      select array_agg(x.d order by array_position(array['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], x.d)) into v_days
      from (select distinct lower(left(trim(e), 3)) as d from jsonb_array_elements_text(v_sched -> 'days') e) x;
      if not v_days <@ array['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] then
        perform private.raise_error(
          400, format('schedule.days may contain only mon, tue, wed, thu, fri, sat, sun (got %s)', v_sched -> 'days'));
      end if;
    end if;
    v_out := v_out || jsonb_build_object('hours_start', v_start, 'hours_end', v_end, 'days', to_jsonb(v_days));
  end if;

  v_tpl := coalesce(v_s -> 'templates', '{}'::jsonb);
  if jsonb_typeof(v_tpl) <> 'object' then
    perform private.raise_error(400, 'templates must be an object {m1, m2, m3}');
  end if;
  foreach v_key in array array['m1', 'm2', 'm3'] loop
    if (v_tpl ? v_key and v_s ? (v_key || '_template')) then
      perform private.raise_error(400, format('give the %s template once (templates.%s or %s_template)', v_key, v_key, v_key));
    end if;
    if v_s ? (v_key || '_template') then
      v_tpl := v_tpl || jsonb_build_object(v_key, v_s -> (v_key || '_template'));
    end if;
    if v_tpl ? v_key and jsonb_typeof(v_tpl -> v_key) <> 'null' then
      if jsonb_typeof(v_tpl -> v_key) <> 'string' or length(trim(v_tpl ->> v_key)) not between 1 and 1400 then
        perform private.raise_error(400, format('templates.%s must be text of 1 to 1400 characters', v_key));
      end if;
      v_out := v_out || jsonb_build_object(v_key || '_template', trim(v_tpl ->> v_key));
    end if;
  end loop;
  return jsonb_strip_nulls(v_out);
end
$$;
comment on function private.validate_campaign_settings(jsonb) is
  'Checks the API contract''s campaign settings body (400 naming the field) and flattens it to campaigns columns.';

-- estimate --------------------------------------------------------------------------------
create function private.walk_send_window(
  p_from timestamptz, p_hours numeric, p_tz text, p_hours_start integer, p_hours_end integer, p_days text []
) returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  v_at timestamptz := private.next_send_window(p_from, p_tz, p_hours_start, p_hours_end, p_days);
  v_left interval := make_interval(secs => greatest(p_hours, 0) * 3600);
  v_close timestamptz;
begin
  -- Spends p_hours of sending time inside the window, day by day (a loop over days, at most
  -- a few thousand, never over leads).
  for i in 1..20000 loop
    v_close := ((v_at at time zone p_tz)::date + make_interval(hours => p_hours_end)) at time zone p_tz;
    if v_close - v_at >= v_left then
      return v_at + v_left;
    end if;
    v_left := v_left - (v_close - v_at);
    v_at := private.next_send_window(v_close, p_tz, p_hours_start, p_hours_end, p_days);
  end loop;
  return v_at;
end
$$;
comment on function private.walk_send_window(timestamptz, numeric, text, integer, integer, text []) is
  'The instant when p_hours of sending time, counted only inside the schedule window, have passed.';

-- Leads waiting for each step, pending sends, effective hourly pace and the estimated completion of
-- a campaign.
create function private.campaign_progress(p_dataset_id uuid, p_now timestamptz default now()) returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_c public.campaigns;
  v_client public.clients;
  v_waiting_m1 bigint;
  v_waiting_m2 bigint;
  v_waiting_m3 bigint;
  v_pending bigint;
  v_pending_m1 bigint;
  v_pending_m2 bigint;
  v_chains_m1 bigint;
  v_chains_m2 bigint;
  v_per_hour numeric;
  v_from timestamptz;
  v_all timestamptz;
  v_tail timestamptz;
begin
  select c.* into v_c from public.campaigns c where c.dataset_id = p_dataset_id;
  select cl.* into v_client from public.clients cl where cl.id = v_c.client_id;
  select count(*) filter (where l.sequence_step = 0), count(*) filter (where l.sequence_step = 1),
    count(*) filter (where l.sequence_step = 2)
  into v_waiting_m1, v_waiting_m2, v_waiting_m3
  from public.leads l
  where l.dataset_id = p_dataset_id
    and not l.archived and not l.opted_out and not l.manual_mode
    and (
      (l.sequence_step = 0 and l.contact_status = 'READY')
      or (l.sequence_step = 1 and l.contact_status = 'M1_SENT')
      or (l.sequence_step = 2 and l.contact_status = 'M2_SENT')
    );
  select count(*), count(*) filter (where m.message_category = 'm1'), count(*) filter (where m.message_category = 'm2')
  into v_pending, v_pending_m1, v_pending_m2
  from public.messages m
  where m.dataset_id = p_dataset_id and m.status = 'pending' and m.message_category in ('m1', 'm2', 'm3');
  -- A lead whose M1 is queued but not sent still has its whole sequence ahead, like one that
  -- waits for M1; likewise a queued M2.
  v_chains_m1 := v_waiting_m1 + v_pending_m1;
  v_chains_m2 := v_waiting_m2 + v_pending_m2;

  -- Honest pace: the campaign's per-minute rate, capped by the client's hourly budget, spent
  -- only inside the window (client timezone). If nobody replies each waiting lead still needs
  -- the rest of its sequence, and the last lead's M3 cannot go before its delays have passed.
  v_per_hour := least(60 * v_c.rate_limit_messages_per_minute, coalesce((v_client.settings ->> 'sms_per_hour')::integer, 60));
  v_from := greatest(p_now, coalesce(v_c.started_at, p_now) + v_c.m1_delay_hours * interval '1 hour');
  v_all := private.walk_send_window(v_from,
    (3 * v_chains_m1 + 2 * v_chains_m2 + (v_waiting_m3 + v_pending - v_pending_m1 - v_pending_m2)) / v_per_hour,
    v_client.timezone, v_c.hours_start, v_c.hours_end, v_c.days);
  -- The last chain: its first message goes once those before it have gone, and each later
  -- step waits out its delay, then the next open window.
  v_tail := private.walk_send_window(v_from,
    (case when v_chains_m1 > 0 then v_chains_m1 when v_chains_m2 > 0 then v_chains_m2
      else v_waiting_m3 + v_pending end) / v_per_hour,
    v_client.timezone, v_c.hours_start, v_c.hours_end, v_c.days);
  if v_chains_m1 > 0 then
    v_tail := private.next_send_window(v_tail + v_c.m2_delay_hours * interval '1 hour',
      v_client.timezone, v_c.hours_start, v_c.hours_end, v_c.days);
  end if;
  if v_chains_m1 + v_chains_m2 > 0 then
    v_tail := private.next_send_window(v_tail + v_c.m3_delay_hours * interval '1 hour',
      v_client.timezone, v_c.hours_start, v_c.hours_end, v_c.days);
  end if;
  return jsonb_build_object(
    'waiting_m1', v_waiting_m1, 'waiting_m2', v_waiting_m2, 'waiting_m3', v_waiting_m3, 'pending', v_pending,
    'per_hour', v_per_hour,
    'estimated_completion', case when v_waiting_m1 + v_waiting_m2 + v_waiting_m3 + v_pending > 0
      then greatest(v_all, v_tail) else p_now end
  );
end
$$;
comment on function private.campaign_progress(uuid, timestamptz) is
  'Leads waiting for each step, pending sends, effective hourly pace and the estimated completion of a campaign.';

revoke all on function private.campaign_number_setting(jsonb, text, numeric, numeric, boolean),
  private.validate_campaign_settings(jsonb),
  private.walk_send_window(timestamptz, numeric, text, integer, integer, text []),
  private.campaign_progress(uuid, timestamptz)
  from public, anon, authenticated;
grant execute on function private.campaign_number_setting(jsonb, text, numeric, numeric, boolean),
  private.validate_campaign_settings(jsonb) to authenticated, service_role;
grant execute on function private.campaign_progress(uuid, timestamptz),
  private.walk_send_window(timestamptz, numeric, text, integer, integer, text []) to service_role;

-- campaign RPCs ---------------------------------------------------------------------------
-- Campaign RPCs (POST /api/campaigns/start, /pause, /resume) and the trigger that keeps the
-- campaign row in step with datasets.campaign_status whichever path changes it (these RPCs
-- or a PATCH of the dataset).
--
-- Design: start does not queue a million M1s at once. The campaign's rate is per minute, so
-- start validates, stores the settings, stamps the campaign active and runs the sequencing
-- tick for this dataset straight away (the first minute's batch goes now, not a minute later);
-- the pg_cron tick then queues at most rate_limit_messages_per_minute (within the client's
-- hourly budget) every minute. messages_queued is what was queued now; estimated_completion
-- walks the schedule window forward at the effective hourly rate.

-- Trigger: activating a dataset stamps its campaign (started_at, default settings) and reschedules
-- sends held by a pause; pausing stamps paused_at.
create function private.campaign_status_changed() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_rate integer;
begin
  if new.campaign_status = 'active' and (tg_op = 'INSERT' or old.campaign_status <> 'active') then
    insert into public.campaigns (dataset_id, client_id, started_at)
    values (new.id, new.client_id, greatest(now(), coalesce(new.campaign_start_date, now())))
    on conflict (dataset_id) do update
    set started_at = coalesce(public.campaigns.started_at, excluded.started_at), paused_at = null
    returning rate_limit_messages_per_minute into v_rate;
    -- Resumed: pending sequence messages held back by the pause go again, spread at the rate.
    with pend as (
      select m.id, row_number() over (order by m.created_at, m.id) as rn
      from public.messages m
      where m.dataset_id = new.id and m.status = 'pending' and m.message_category in ('m1', 'm2', 'm3')
    )
    update private.jobs j
    set run_at = now() + make_interval(secs => (pend.rn - 1) * 60.0 / v_rate)
    from pend
    where j.idempotency_key = 'sms.send:' || pend.id and j.status = 'queued';
  elsif new.campaign_status = 'paused' and tg_op = 'UPDATE' and old.campaign_status <> 'paused' then
    update public.campaigns c set paused_at = now() where c.dataset_id = new.id;
  end if;
  return null;
end
$$;
comment on function private.campaign_status_changed() is
  'Trigger: activating a dataset stamps its campaign (started_at, default settings) and reschedules sends '
  'held by a pause; pausing stamps paused_at.';

create trigger datasets_campaign_status_changed
after insert or update of campaign_status on public.datasets
for each row execute function private.campaign_status_changed();

-- RPC bodies (security definer, caller checked explicitly) -------------------------------
create function private.campaign_dataset_for_caller(p_dataset_id uuid) returns public.datasets
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_ds public.datasets;
begin
  perform private.require_member();
  select d.* into v_ds from public.datasets d
  where d.id = p_dataset_id and d.client_id = private.current_client_id()
    and (private.sees_all_datasets() or d.id = any (private.visible_dataset_ids()))
  for update;
  if not found then
    perform private.raise_error(404, format('dataset %s not found', p_dataset_id));
  end if;
  if not private.can_manage_datasets() then
    perform private.raise_error(403, 'only admins and managers can start, pause or resume a campaign');
  end if;
  return v_ds;
end
$$;
comment on function private.campaign_dataset_for_caller(uuid) is
  'The dataset, locked, when the caller may run its campaign: 404 when not visible, 403 when not admin/manager.';

-- Body of public.start_campaign: validates, stores settings, activates, queues the first minute's
-- batch.
create function private.start_campaign(p_dataset_id uuid, p_settings jsonb default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_now timestamptz := now();
  v_ds public.datasets := private.campaign_dataset_for_caller(p_dataset_id);
  v_s jsonb := private.validate_campaign_settings(p_settings);
  v_before jsonb;
  v_tick jsonb;
  v_progress jsonb;
begin
  if v_ds.campaign_status = 'completed' then
    perform private.raise_error(400, 'this campaign is completed and cannot be started again');
  end if;
  if not exists (select from public.leads l where l.dataset_id = p_dataset_id) then
    perform private.raise_error(400, 'dataset has no leads: import a list before starting the campaign');
  end if;

  insert into public.campaigns (dataset_id, client_id) values (v_ds.id, v_ds.client_id)
  on conflict (dataset_id) do nothing;
  update public.campaigns c
  set m1_delay_hours = coalesce((v_s ->> 'm1_delay_hours')::numeric, c.m1_delay_hours),
      m2_delay_hours = coalesce((v_s ->> 'm2_delay_hours')::numeric, c.m2_delay_hours),
      m3_delay_hours = coalesce((v_s ->> 'm3_delay_hours')::numeric, c.m3_delay_hours),
      ai_response_delay_seconds = coalesce((v_s ->> 'ai_response_delay_seconds')::integer, c.ai_response_delay_seconds),
      rate_limit_messages_per_minute = coalesce((v_s ->> 'rate_limit_messages_per_minute')::integer,
        c.rate_limit_messages_per_minute),
      hours_start = coalesce((v_s ->> 'hours_start')::smallint, c.hours_start),
      hours_end = coalesce((v_s ->> 'hours_end')::smallint, c.hours_end),
      days = case when v_s ? 'days' then array(select jsonb_array_elements_text(v_s -> 'days')) else c.days end,
      m1_template = coalesce(v_s ->> 'm1_template', c.m1_template),
      m2_template = coalesce(v_s ->> 'm2_template', c.m2_template),
      m3_template = coalesce(v_s ->> 'm3_template', c.m3_template)
  where c.dataset_id = p_dataset_id;

  v_before := private.campaign_progress(p_dataset_id, v_now);
  if v_ds.campaign_status <> 'active' then
    update public.datasets d
    set campaign_status = 'active', campaign_start_date = coalesce(d.campaign_start_date, v_now)
    where d.id = p_dataset_id;
  end if;
  v_tick := private.run_sequencing_tick(v_now, p_dataset_id);
  v_progress := private.campaign_progress(p_dataset_id, v_now);
  return jsonb_build_object('campaign', jsonb_build_object(
    'dataset_id', p_dataset_id,
    'status', 'active',
    'total_leads', (v_before ->> 'waiting_m1')::bigint,
    'messages_queued', coalesce((v_tick ->> 'queued')::integer, 0),
    'estimated_completion', v_progress -> 'estimated_completion'
  ));
end
$$;
comment on function private.start_campaign(uuid, jsonb) is
  'Body of public.start_campaign: validates, stores settings, activates, queues the first minute''s batch.';

-- Body of pause_campaign/resume_campaign.
create function private.set_campaign_paused(p_dataset_id uuid, p_paused boolean)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_now timestamptz := now();
  v_ds public.datasets := private.campaign_dataset_for_caller(p_dataset_id);
  v_tick jsonb;
  v_progress jsonb;
begin
  if p_paused then
    if v_ds.campaign_status not in ('active', 'paused') then
      perform private.raise_error(400, format('only an active campaign can be paused (this one is %s)', v_ds.campaign_status));
    end if;
    update public.datasets d set campaign_status = 'paused' where d.id = p_dataset_id and d.campaign_status <> 'paused';
  else
    if v_ds.campaign_status not in ('active', 'paused') then
      perform private.raise_error(400, format('only a paused campaign can be resumed (this one is %s)', v_ds.campaign_status),
        jsonb_build_object('hint', case when v_ds.campaign_status = 'draft' then 'Start it first.' end));
    end if;
    update public.datasets d set campaign_status = 'active' where d.id = p_dataset_id and d.campaign_status <> 'active';
    v_tick := private.run_sequencing_tick(v_now, p_dataset_id);
  end if;
  v_progress := private.campaign_progress(p_dataset_id, v_now);
  return jsonb_build_object('campaign', jsonb_strip_nulls(jsonb_build_object(
    'dataset_id', p_dataset_id,
    'status', case when p_paused then 'paused' else 'active' end,
    'paused_at', (select c.paused_at from public.campaigns c where c.dataset_id = p_dataset_id),
    'messages_pending', (v_progress ->> 'pending')::bigint,
    'messages_queued', (v_tick ->> 'queued')::integer,
    'estimated_completion', case when not p_paused then v_progress -> 'estimated_completion' end
  )));
end
$$;
comment on function private.set_campaign_paused(uuid, boolean) is
  'Body of pause_campaign/resume_campaign. Pause holds every pending sequence message (prepare_send defers '
  'them); resume sends them, each once, and the tick carries on where it stopped.';

-- public RPCs -----------------------------------------------------------------------------
create function public.start_campaign(dataset_id uuid, settings jsonb default null) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.start_campaign(dataset_id, settings)
$$;
comment on function public.start_campaign(uuid, jsonb) is
  'POST /api/campaigns/start (admin or manager): {"campaign": {dataset_id, status, total_leads, messages_queued, '
  'estimated_completion}}. total_leads = leads waiting for M1; the tick sends the rest at the campaign''s rate.';

-- POST /api/campaigns/pause (admin or manager): nothing more of the sequence is sent, queued
-- messages included.
create function public.pause_campaign(dataset_id uuid) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.set_campaign_paused(dataset_id, true)
$$;
comment on function public.pause_campaign(uuid) is
  'POST /api/campaigns/pause (admin or manager): nothing more of the sequence is sent, queued messages included.';

-- POST /api/campaigns/resume (admin or manager): continues exactly where the pause stopped.
create function public.resume_campaign(dataset_id uuid) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.set_campaign_paused(dataset_id, false)
$$;
comment on function public.resume_campaign(uuid) is
  'POST /api/campaigns/resume (admin or manager): continues exactly where the pause stopped.';

revoke all on function private.campaign_status_changed(), private.campaign_dataset_for_caller(uuid),
  private.start_campaign(uuid, jsonb), private.set_campaign_paused(uuid, boolean),
  public.start_campaign(uuid, jsonb), public.pause_campaign(uuid), public.resume_campaign(uuid)
  from public, anon;
revoke all on function private.campaign_status_changed() from authenticated;
grant execute on function private.start_campaign(uuid, jsonb), private.set_campaign_paused(uuid, boolean),
  private.campaign_dataset_for_caller(uuid),
  public.start_campaign(uuid, jsonb), public.pause_campaign(uuid), public.resume_campaign(uuid)
  to authenticated, service_role;

-- Twilio webhooks -------------------------------------------------------------------------
-- Twilio webhooks, SQL side: private.ingest_twilio_webhook takes Twilio's form fields as a
-- JSON object (the twilio-webhook edge function calls it after checking the signature) and
-- handles both inbound SMS and delivery status callbacks, idempotently.

-- Opts a lead's number out exactly like the STOP keyword (used for the AI's opt-out intent).
create function private.opt_out_lead(p_lead_id uuid, p_reason text, p_source text default 'ai') returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_lead public.leads;
begin
  select l.* into v_lead from public.leads l where l.id = p_lead_id;
  if not found then
    raise exception 'lead % not found', p_lead_id using errcode = 'P0002';
  end if;
  return private.opt_out_number(v_lead.client_id, v_lead.phone_number, coalesce(p_reason, 'opted out'), p_source);
end
$$;
comment on function private.opt_out_lead(uuid, text, text) is
  'Opts a lead''s number out exactly like the STOP keyword (used for the AI''s opt-out intent).';

-- status callbacks --------------------------------------------------------------------------
create function private.ingest_twilio_status(p_sid text, p_status text, p_error_code integer, p_params jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_new boolean;
begin
  -- Serialises with record_send_result storing this sid, so an event is either applied here
  -- (message already has the sid) or seen there (stored before the sid), never lost between.
  perform pg_advisory_xact_lock(hashtext('twilio_sid:' || p_sid));
  insert into private.twilio_status_events (message_sid, status, error_code, params)
  values (p_sid, p_status, p_error_code, p_params)
  on conflict (message_sid, status) do nothing
  returning true into v_new;
  if v_new is null then
    return jsonb_build_object('status', 'duplicate', 'message_sid', p_sid);
  end if;
  if private.apply_twilio_status_event(p_sid, p_status, p_error_code, now()) then
    update private.twilio_status_events e set applied_at = now()
    where e.message_sid = p_sid and e.status = p_status;
    return jsonb_build_object('status', 'applied', 'message_sid', p_sid, 'message_status', p_status);
  end if;
  return jsonb_build_object('status', 'stored', 'message_sid', p_sid, 'message_status', p_status);
end
$$;
comment on function private.ingest_twilio_status(text, text, integer, jsonb) is
  'One status callback: deduplicated on (MessageSid, MessageStatus), applied forward-only, or kept until the '
  'send result stores the sid.';

-- inbound SMS -------------------------------------------------------------------------------
create function private.ingest_inbound_sms(p_sid text, p_params jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_from text := coalesce(private.sms_e164(p_params ->> 'From'), nullif(trim(p_params ->> 'From'), ''));
  v_to text := private.sms_e164(p_params ->> 'To');
  v_body text := left(coalesce(p_params ->> 'Body', ''), 1600);
  v_opt_type text := upper(nullif(trim(p_params ->> 'OptOutType'), ''));
  v_client public.clients;
  v_lead public.leads;
  v_conversation uuid;
  v_message uuid;
  v_keyword text;
  v_action text;
  v_name text;
  v_mode text;
  v_delay integer;
  v_suppressed boolean;
  v_rule private.opt_out_phrases;
begin
  if v_from is null then
    -- Without the sender the message belongs to no lead and cannot be answered: refused, not stored.
    perform private.raise_error(400, 'an inbound message needs its From number',
      jsonb_build_object('field', 'From', 'message_sid', p_sid));
  end if;
  if trim(v_body) = '' then
    v_body := case when coalesce(nullif(p_params ->> 'NumMedia', ''), '0')::integer > 0 then '[media message]'
      else '[empty message]' end;
  end if;

  -- The client owns the To number (or the messaging service the message came through).
  select c.* into v_client from public.clients c where c.twilio_phone_number = v_to;
  if not found and nullif(p_params ->> 'MessagingServiceSid', '') is not null then
    select c.* into v_client from public.clients c
    where c.twilio_messaging_service_sid = p_params ->> 'MessagingServiceSid'
    order by c.created_at limit 1;
  end if;
  if v_client.id is null then
    insert into private.unmatched_inbound (message_sid, from_number, to_number, body, params)
    values (p_sid, v_from, coalesce(v_to, p_params ->> 'To'), v_body, p_params)
    on conflict (message_sid) do nothing
    returning message_sid into v_action;
    return jsonb_build_object('status', case when v_action is null then 'duplicate' else 'unmatched' end,
      'message_sid', p_sid);
  end if;

  -- The lead: the most recently active one with this number in this client.
  select l.* into v_lead
  from public.leads l
  left join public.conversations cv on cv.lead_id = l.id
  where l.client_id = v_client.id and l.phone_number = v_from
  order by cv.last_message_at desc nulls last, l.created_at desc
  limit 1;
  if v_lead.id is not null then
    v_conversation := private.ensure_conversation(v_lead);
  end if;

  -- Exactly once per MessageSid: concurrent deliveries of the same webhook wait on the unique
  -- index here and only the one that inserted goes on.
  insert into public.messages (
    client_id, dataset_id, conversation_id, lead_id, direction, message_category, status, content,
    from_number, to_number, twilio_sid, received_at
  ) values (
    v_client.id, v_lead.dataset_id, v_conversation, v_lead.id, 'inbound', 'lead_reply', 'received', v_body,
    v_from, v_to, p_sid, now()
  )
  on conflict (twilio_sid) do nothing
  returning id into v_message;
  if v_message is null then
    return jsonb_build_object('status', 'duplicate', 'message_sid', p_sid);
  end if;

  v_suppressed := private.number_is_suppressed(v_client.id, v_from);
  v_keyword := case when v_opt_type in ('STOP', 'START', 'HELP') then v_opt_type else private.sms_keyword(v_body) end;
  -- START/UNSTOP/YES opt back in only a number that is opted out; otherwise "Yes" is a reply.
  if v_keyword = 'START' and not v_suppressed and not coalesce(v_lead.opted_out, false) then
    v_keyword := null;
  end if;
  -- Not a bare keyword: the maintained phrase set (private.opt_out_phrases) decides next, before
  -- and whatever the AI mode ("stop please", "no more texts", "delete my details", "baja").
  if v_keyword is null then
    select p.* into v_rule from private.opt_out_match(v_body) p;
    if v_rule.id is not null then
      v_keyword := 'STOP';
    end if;
  end if;
  v_name := coalesce(nullif(trim(concat_ws(' ', v_lead.first_name, v_lead.last_name)), ''), v_from);

  if v_lead.id is not null then
    update public.conversations c
    set message_count = c.message_count + 1, last_message_at = greatest(c.last_message_at, now()),
        status = case when c.status = 'closed' then 'active' else c.status end
    where c.id = v_conversation;
    update public.leads l
    set reply_received_at = now(), latest_lead_reply = v_body,
        contact_status = case
          when l.contact_status in ('READY', 'M1_SENT', 'M2_SENT', 'M3_SENT', 'NO_RESPONSE', 'UNDELIVERABLE')
            and v_keyword is distinct from 'STOP' then 'REPLIED'
          else l.contact_status
        end::public.lead_status
    where l.id = v_lead.id
    returning l.* into v_lead;
  end if;

  -- Opt-out first, so everything pending to the number is canceled as opted_out.
  if v_keyword = 'STOP' then
    perform private.opt_out_number(v_client.id, v_from,
      'Replied "' || left(trim(v_body), 40) || '"' || coalesce(' (opt-out rule ' || v_rule.id || ')', ''),
      case when v_opt_type = 'STOP' then 'twilio_opt_out' when v_rule.id is not null then 'inbound_phrase'
        else 'inbound_keyword' end);
  end if;
  -- The lead answered: the rest of the sequence stops, queued steps included.
  if v_lead.id is not null then
    perform private.cancel_pending_messages(v_client.id, null, v_lead.id, array['m1', 'm2', 'm3']::public.message_category [],
      'superseded: the lead replied');
  end if;

  if v_keyword = 'STOP' then
    perform private.notify_staff(v_client.id, 'Opted out: ' || v_name,
      v_name || ' replied "' || left(trim(v_body), 40) || '". Nothing more will be sent to ' || v_from || '.', 'low',
      case when v_conversation is not null then '/conversations/' || v_conversation end,
      jsonb_build_object('kind', 'opted_out', 'lead_id', v_lead.id, 'message_id', v_message, 'phone_number', v_from,
        'opt_out_rule', v_rule.id),
      v_lead.dataset_id);
    v_action := 'opted_out';
  elsif v_keyword = 'START' then
    perform private.opt_in_number(v_client.id, v_from);
    perform private.notify_staff(v_client.id, 'Opted back in: ' || v_name,
      v_name || ' texted "' || left(trim(v_body), 40) || '" and can be messaged again. The sequence does not restart '
      || 'by itself.', 'normal',
      case when v_conversation is not null then '/conversations/' || v_conversation end,
      jsonb_build_object('kind', 'opted_in', 'lead_id', v_lead.id, 'message_id', v_message, 'phone_number', v_from),
      v_lead.dataset_id);
    v_action := 'opted_in';
  elsif v_keyword = 'HELP' then
    -- With OptOutType=HELP Twilio's Advanced Opt-Out has already answered; otherwise we do.
    if v_opt_type is null and v_lead.id is not null and not v_suppressed then
      perform private.queue_sms(v_lead.id, private.render_template(coalesce(nullif(trim(v_client.settings ->> 'help_text'), ''),
        '{company_name}: reply to this message and one of our team will help you. Reply STOP to opt out.'),
        v_lead, v_client.name), 'system');
    end if;
    v_action := 'help';
  elsif v_lead.id is null then
    perform private.notify_staff(v_client.id, 'Message from an unknown number',
      v_from || ': ' || left(v_body, 300), 'normal', null,
      jsonb_build_object('kind', 'unknown_sender', 'message_id', v_message, 'phone_number', v_from), null);
    v_action := 'unknown_sender';
  elsif v_lead.opted_out or v_suppressed then
    v_action := 'stored_opted_out';
  else
    v_mode := private.effective_ai_mode(v_conversation)::text;
    if v_lead.manual_mode or coalesce(v_mode, 'auto') = 'off' then
      perform private.notify_staff(v_client.id, 'New reply from ' || v_name, left(v_body, 500), 'immediate',
        '/conversations/' || v_conversation,
        jsonb_build_object('kind', 'reply_manual', 'lead_id', v_lead.id, 'conversation_id', v_conversation,
          'message_id', v_message),
        v_lead.dataset_id);
      -- No AI reply in this mode, but the AI still reads the reply for a revocation the phrase
      -- set missed (ai.classify_opt_out: a classification, never a reply), unless switched off.
      if coalesce(v_client.settings ->> 'ai_opt_out_classification', 'true') <> 'false' then
        perform private.enqueue_job(
          'ai.classify_opt_out', jsonb_build_object('conversation_id', v_conversation, 'inbound_message_id', v_message),
          now(), 'ai.classify_opt_out:' || v_message, v_client.id, 5, 10::smallint
        );
      end if;
      v_action := 'notified';
    else
      select coalesce(c.ai_response_delay_seconds, (v_client.settings ->> 'ai_response_delay_seconds')::integer, 60)
      into v_delay from public.campaigns c where c.dataset_id = v_lead.dataset_id;
      perform private.enqueue_job(
        'ai.reply', jsonb_build_object('conversation_id', v_conversation, 'inbound_message_id', v_message),
        now() + make_interval(secs => coalesce(v_delay, (v_client.settings ->> 'ai_response_delay_seconds')::integer, 60)),
        'ai.reply:' || v_message, v_client.id, 5, 10::smallint
      );
      v_action := 'ai_reply';
    end if;
  end if;

  return jsonb_build_object(
    'status', 'received', 'action', v_action, 'message_id', v_message, 'lead_id', v_lead.id,
    'conversation_id', v_conversation, 'client_id', v_client.id, 'opt_out_rule', v_rule.id
  );
end
$$;
comment on function private.ingest_inbound_sms(text, jsonb) is
  'One inbound SMS: stored once per MessageSid; opt-out/opt-in/help keywords, OptOutType and the opt-out phrase '
  'set (private.opt_out_match) handled in every AI mode; otherwise the conversation and lead are updated, the '
  'sequence stopped and ai.reply enqueued (or staff notified and ai.classify_opt_out enqueued).';

-- The twilio-webhook edge function's one call: inbound SMS (Body / SmsStatus=received) or a status
-- callback (MessageStatus), as Twilio's form fields in a JSON object.
create function private.ingest_twilio_webhook(p_params jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_sid text := coalesce(
    nullif(p_params ->> 'MessageSid', ''), nullif(p_params ->> 'SmsMessageSid', ''), nullif(p_params ->> 'SmsSid', '')
  );
  v_status text := lower(coalesce(nullif(p_params ->> 'MessageStatus', ''), nullif(p_params ->> 'SmsStatus', '')));
begin
  if p_params is null or jsonb_typeof(p_params) <> 'object' then
    raise exception 'webhook parameters must be a JSON object' using errcode = '22023';
  end if;
  if v_sid is null then
    raise exception 'MessageSid is missing' using errcode = '22023';
  end if;
  if p_params ? 'Body' or v_status = 'received' then
    return private.ingest_inbound_sms(v_sid, p_params);
  end if;
  if v_status is null then
    raise exception 'neither Body nor MessageStatus: not a Twilio message webhook' using errcode = '22023';
  end if;
  return private.ingest_twilio_status(v_sid, v_status, nullif(p_params ->> 'ErrorCode', '')::integer, p_params);
end
$$;
comment on function private.ingest_twilio_webhook(jsonb) is
  'The twilio-webhook edge function''s one call: inbound SMS (Body / SmsStatus=received) or a status '
  'callback (MessageStatus), as Twilio''s form fields in a JSON object. Idempotent.';

-- record_send_result takes the same lock as a status callback for the same sid.
create function private.lock_twilio_sid() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform pg_advisory_xact_lock(hashtext('twilio_sid:' || new.twilio_sid));
  return new;
end
$$;
comment on function private.lock_twilio_sid() is
  'Trigger: storing an outbound message''s sid takes the per-sid lock status callbacks take (no lost callback).';

create trigger messages_lock_twilio_sid before update of twilio_sid on public.messages
  for each row when (new.twilio_sid is not null and old.twilio_sid is null)
  execute function private.lock_twilio_sid();

-- pg_cron, daily: drops status events older than 7 days.
create function private.prune_twilio_status_events() returns integer
language sql
security definer
set search_path = ''
as $$
  -- Dedup keys older than a week cannot meet a Twilio retry any more (Twilio retries for hours).
  with gone as (
    delete from private.twilio_status_events where received_at < now() - interval '7 days' returning 1
  )
  select count(*)::integer from gone
$$;
comment on function private.prune_twilio_status_events() is 'pg_cron, daily: drops status events older than 7 days.';

select private.schedule_cron('prune-twilio-status-events', '17 3 * * *', 'select private.prune_twilio_status_events()');

revoke all on function private.prune_twilio_status_events() from public, anon, authenticated;
revoke all on function private.opt_out_lead(uuid, text, text),
  private.ingest_twilio_status(text, text, integer, jsonb), private.ingest_inbound_sms(text, jsonb),
  private.ingest_twilio_webhook(jsonb), private.lock_twilio_sid()
  from public, anon, authenticated;
grant execute on function private.opt_out_lead(uuid, text, text), private.ingest_twilio_webhook(jsonb) to service_role;

-- messaging RPCs --------------------------------------------------------------------------
-- Manual messaging and the conversation view in the API contract's shapes:
-- POST /api/messages/send -> public.send_message, GET /api/conversations/[id] -> public.get_conversation.

-- Body of public.send_message: caller must see the lead and be a writer; goes through queue_sms.
create function private.send_manual_message(p_lead_id uuid, p_content text, p_message_category text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_lead public.leads;
  v_id uuid;
  v_msg public.messages;
begin
  perform private.require_member();
  select l.* into v_lead from public.leads l
  where l.id = p_lead_id and l.client_id = private.current_client_id()
    and (private.sees_all_datasets() or l.dataset_id = any (private.visible_dataset_ids()))
    and (not private.sees_only_assigned_leads() or l.assigned_to = auth.uid());
  if not found then
    perform private.raise_error(404, format('lead %s not found', p_lead_id));
  end if;
  if not private.can_write() then
    perform private.raise_error(403, 'read-only members cannot send messages');
  end if;
  if coalesce(p_message_category, 'human_manual') <> 'human_manual' then
    perform private.raise_error(400, format('message_category must be human_manual (got %s)', p_message_category));
  end if;
  -- The API contract's 60 sends per client and rolling hour (429 with Retry-After; a refusal stores nothing).
  perform private.use_send_budget(v_lead.client_id);
  -- queue_sms refuses an opted-out or suppressed number with 403: a person cannot message it either.
  v_id := private.queue_sms(v_lead.id, p_content, 'human_manual', auth.uid());
  select m.* into v_msg from public.messages m where m.id = v_id;
  return jsonb_build_object('message', jsonb_build_object(
    'id', v_msg.id, 'content', v_msg.content, 'sent_at', v_msg.sent_at, 'twilio_sid', v_msg.twilio_sid,
    'status', v_msg.status
  ));
end
$$;
comment on function private.send_manual_message(uuid, text, text) is
  'Body of public.send_message: caller must see the lead and be a writer; goes through queue_sms.';

-- POST /api/messages/send: queues a human_manual SMS (status pending until the worker sends it).
create function public.send_message(lead_id uuid, content text, message_category text default 'human_manual')
returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.send_manual_message(lead_id, content, message_category)
$$;
comment on function public.send_message(uuid, text, text) is
  'POST /api/messages/send: queues a human_manual SMS (status pending until the worker sends it). '
  '403 for read-only members and for opted-out numbers; 404 for a lead the caller cannot see.';

-- Body of public.get_conversation (security invoker).
create function private.get_conversation(p_conversation_id uuid) returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_result jsonb;
begin
  -- Runs as the caller: RLS decides what is visible.
  select jsonb_build_object(
    'conversation', jsonb_build_object(
      'id', cv.id, 'lead_id', cv.lead_id, 'started_at', cv.started_at, 'last_message_at', cv.last_message_at,
      'message_count', cv.message_count, 'status', cv.status, 'sentiment', cv.sentiment,
      'quality_score', cv.quality_score
    ),
    'messages', coalesce((
      select jsonb_agg(jsonb_build_object(
        'id', m.id, 'content', m.content, 'direction', m.direction, 'message_category', m.message_category,
        'sent_at', coalesce(m.sent_at, m.received_at), 'delivered_at', m.delivered_at, 'ai_generated', m.ai_generated,
        'ai_quality_score', m.ai_quality_score, 'sophie_feedback', m.sophie_feedback,
        'sophie_feedback_status', m.sophie_feedback_status, 'status', m.status, 'created_at', m.created_at
      ) order by m.created_at, m.id)
      from public.messages m where m.conversation_id = cv.id
    ), '[]'::jsonb),
    'lead', jsonb_build_object(
      'id', l.id, 'first_name', l.first_name, 'last_name', l.last_name, 'phone_number', l.phone_number,
      'contact_status', l.contact_status
    )
  ) into v_result
  from public.conversations cv
  join public.leads l on l.id = cv.lead_id
  where cv.id = p_conversation_id;
  if v_result is null then
    perform private.raise_error(404, format('conversation %s not found', p_conversation_id));
  end if;
  return v_result;
end
$$;
comment on function private.get_conversation(uuid) is 'Body of public.get_conversation (security invoker).';

-- GET /api/conversations/[id]: {conversation, messages, lead} in the API contract's shape (messages
-- oldest first, with status and created_at added; sent_at of an inbound message is when it was
-- received).
create function public.get_conversation(id uuid) returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.get_conversation(id)
$$;
comment on function public.get_conversation(uuid) is
  'GET /api/conversations/[id]: {conversation, messages, lead} in the API contract''s shape (messages oldest first, '
  'with status and created_at added; sent_at of an inbound message is when it was received). 404 if not visible.';

revoke all on function private.send_manual_message(uuid, text, text), public.send_message(uuid, text, text),
  private.get_conversation(uuid), public.get_conversation(uuid) from public, anon;
grant execute on function private.send_manual_message(uuid, text, text), public.send_message(uuid, text, text),
  private.get_conversation(uuid), public.get_conversation(uuid) to authenticated, service_role;

-- stranded sends --------------------------------------------------------------------------
-- Stranded sends. A message is stranded when it is `sending` with no Twilio SID (its attempt
-- was recorded, its result never was: the worker died between Twilio and the database) and
-- no live sms.send run will look at it: its job is dead (out of attempts or lease losses),
-- gone, finished, or running past its lease. Whether Twilio took it is unknown, so before
-- anything else happens to it the message is looked up at Twilio (To, From, body, since the
-- attempt), by an sms.reconcile job, which the workers run (pg_cron cannot call Twilio):
--   found      recorded as sent with its SID and status (record_send_result); a dead send
--              job is closed as done, its work was in fact done;
--   not found  the attempt is released (message back to pending): a send job with tries
--              left sends it once more; a dead one stays dead-lettered (an admin's
--              retry_dead_job then sends it, once).
-- The same reconcile step (private.reconcile_send) serves the sms.send job itself when its
-- prepare_send answers `reconcile`. Releasing is guarded by the attempt number, so a lookup
-- that found nothing can never release a newer attempt that is in flight.
-- Reconcile jobs are enqueued when a send job dies with its message stranded (trigger), and
-- every minute for anything else stranded, e.g. while no worker ran (pg_cron).

-- The minute's scan reads only messages mid-attempt (a handful, whatever the table's size).
create index messages_sending_idx on public.messages (send_started_at) where status = 'sending' and twilio_sid is null;

-- Idempotency key of a message's sms.send job (see queue_sms).
create function private.send_job_key(p_message_id uuid) returns text
language sql
immutable
set search_path = ''
as $$
  select 'sms.send:' || p_message_id::text
$$;
comment on function private.send_job_key(uuid) is 'Idempotency key of a message''s sms.send job (see queue_sms).';

-- The attempt data (to, from, body, attempted_at, attempts) of a message still sending without a
-- SID, else null.
create function private.stranded_send(p_message_id uuid) returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  -- What a Twilio lookup needs, while the message is still mid-attempt; null once resolved.
  select jsonb_build_object(
    'action', 'reconcile', 'message_id', m.id, 'to', m.to_number, 'from', m.from_number, 'body', m.content,
    'attempted_at', m.send_started_at, 'attempts', m.send_attempts
  )
  from public.messages m
  where m.id = p_message_id and m.status = 'sending' and m.twilio_sid is null
$$;
comment on function private.stranded_send(uuid) is
  'The attempt data (to, from, body, attempted_at, attempts) of a message still sending without a SID, else null.';

-- Result of a Twilio lookup for attempt p_attempt of a message: with a SID, records it as sent
-- (closing a dead send job as done); without, releases that attempt (message back to pending; a
-- dead send job stays dead).
create function private.reconcile_send(
  p_message_id uuid,
  p_attempt integer,
  p_twilio_sid text default null,
  p_status text default null,
  p_segments integer default null
) returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_msg public.messages;
  v_job private.jobs;
begin
  select m.* into v_msg from public.messages m where m.id = p_message_id for update;
  if not found then
    return 'gone';
  end if;
  select j.* into v_job from private.jobs j where j.idempotency_key = private.send_job_key(p_message_id) for update;

  if p_twilio_sid is not null then
    -- Twilio has it: the lead got the message. Recording is idempotent (first SID wins).
    perform private.record_send_result(p_message_id, p_twilio_sid, coalesce(p_status, 'queued'), null, null, p_segments);
    if v_job.status = 'dead' then
      update private.jobs j
      set status = 'done', finished_at = now(),
          result = jsonb_build_object('status', 'reconciled', 'sid', p_twilio_sid),
          last_error = left('reconciled after dead-lettering: ' || coalesce(j.last_error, ''), 4000)
      where j.id = v_job.id;
    end if;
    return 'recorded';
  end if;

  -- Not at Twilio: release exactly the attempt that was looked up, never a newer one.
  if v_msg.status <> 'sending' or v_msg.twilio_sid is not null or v_msg.send_attempts <> p_attempt then
    return 'moved_on';
  end if;
  update public.messages m
  set status = 'pending', send_started_at = null,
      error_message = case when v_job.status = 'dead' then 'not sent: its send job was dead-lettered' else m.error_message end
  where m.id = p_message_id;
  -- One more try for a job that still has tries; a finished or missing job gets one back.
  if v_job.id is null then
    perform private.enqueue_job(
      'sms.send', jsonb_build_object('message_id', p_message_id), now(), private.send_job_key(p_message_id),
      v_msg.client_id
    );
  elsif v_job.status in ('done', 'canceled') then
    update private.jobs j
    set status = 'queued', run_at = now(), finished_at = null, locked_by = null, locked_until = null
    where j.id = v_job.id;
  end if;
  return case when v_job.status = 'dead' then 'released_dead' else 'released' end;
end
$$;
comment on function private.reconcile_send(uuid, integer, text, text, integer) is
  'Result of a Twilio lookup for attempt p_attempt of a message: with a SID, records it as sent (closing a dead '
  'send job as done); without, releases that attempt (message back to pending; a dead send job stays dead). '
  'Returns recorded, released, released_dead, moved_on or gone.';

-- Enqueues the sms.reconcile job of a message's current attempt if it is sending without a SID
-- (else null).
create function private.enqueue_send_reconcile(p_message_id uuid) returns bigint
language sql
security definer
set search_path = ''
as $$
  -- One reconcile job per attempt: the key names the attempt, so re-enqueueing is a no-op.
  select private.enqueue_job(
    'sms.reconcile', jsonb_build_object('message_id', m.id, 'attempt', m.send_attempts), now(),
    'sms.reconcile:' || m.id::text || ':' || m.send_attempts::text, m.client_id, 10, 10::smallint
  )
  from public.messages m
  where m.id = p_message_id and m.status = 'sending' and m.twilio_sid is null
$$;
comment on function private.enqueue_send_reconcile(uuid) is
  'Enqueues the sms.reconcile job of a message''s current attempt if it is sending without a SID (else null).';

-- pg_cron: enqueues an sms.reconcile job for every stranded send (sending, no SID, no live send
-- run).
create function private.enqueue_stranded_reconciles() returns integer
language sql
security definer
set search_path = ''
as $$
  -- Stranded: sending, no SID, and no live send run (job dead, finished, missing, or running
  -- past its lease). A queued send job reconciles by itself when it runs (prepare_send).
  with stranded as (
    select private.enqueue_send_reconcile(m.id) as job_id
    from public.messages m
    left join private.jobs j on j.idempotency_key = private.send_job_key(m.id)
    where m.status = 'sending' and m.twilio_sid is null
      and (j.id is null or j.status in ('dead', 'done', 'canceled') or (j.status = 'running' and j.locked_until < now()))
  )
  select count(job_id)::integer from stranded
$$;
comment on function private.enqueue_stranded_reconciles() is
  'pg_cron: enqueues an sms.reconcile job for every stranded send (sending, no SID, no live send run).';

-- Trigger: an sms.send job dead-lettered while its message is sending without a SID gets an
-- sms.reconcile job.
create function private.reconcile_dead_send() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- A send job that dies mid-attempt: look the message up at Twilio now, not at the next cron.
  -- Nothing here may stop a job from being recorded as dead (a malformed payload, say): the
  -- minute's scan is the fallback.
  begin
    perform private.enqueue_send_reconcile((new.payload ->> 'message_id')::uuid);
  exception when others then
    raise warning 'reconcile for dead job % not enqueued: %', new.id, sqlerrm;
  end;
  return null;
end
$$;
comment on function private.reconcile_dead_send() is
  'Trigger: an sms.send job dead-lettered while its message is sending without a SID gets an sms.reconcile job.';

create trigger jobs_reconcile_dead_send after update of status on private.jobs
  for each row when (new.status = 'dead' and old.status is distinct from 'dead' and new.kind = 'sms.send')
  execute function private.reconcile_dead_send();

revoke all on function private.send_job_key(uuid), private.stranded_send(uuid),
  private.reconcile_send(uuid, integer, text, text, integer), private.enqueue_send_reconcile(uuid),
  private.enqueue_stranded_reconciles(), private.reconcile_dead_send()
  from public, anon, authenticated;
grant execute on function private.send_job_key(uuid), private.stranded_send(uuid),
  private.reconcile_send(uuid, integer, text, text, integer), private.enqueue_send_reconcile(uuid),
  private.enqueue_stranded_reconciles()
  to service_role;

select private.schedule_cron('reconcile-sends', '* * * * *', 'select private.enqueue_stranded_reconciles()');

-- campaign completion ---------------------------------------------------------------------
-- A lead that got M3 and did not reply within the campaign's grace period becomes NO_RESPONSE;
-- an active campaign none of whose leads can receive anything more becomes completed, and its
-- owner is told (private.notify_staff, event campaign_completed, 03 notifications).
-- Admins and managers set the grace period on the campaign row (the update policy above).
grant update (no_response_grace_hours) on public.campaigns to authenticated;

create index leads_awaiting_no_response_idx on public.leads (m3_sent_at) where contact_status = 'M3_SENT';
create index leads_campaign_open_idx on public.leads (dataset_id)
  where not archived and not opted_out and contact_status in ('READY', 'M1_SENT', 'M2_SENT', 'M3_SENT');
create index datasets_active_idx on public.datasets (id) where campaign_status = 'active';

-- pg_cron: NO_RESPONSE after the grace, then completed campaigns (set-based).
create function private.run_campaign_completion(p_now timestamptz default now(), p_batch integer default 5000)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_no_response integer;
  v_completed integer;
  v_notified integer;
  v_min_grace numeric;
begin
  perform pg_advisory_xact_lock(hashtext('dbr.campaign_completion'));
  -- 1. M3 went out and the grace period passed without a reply: NO_RESPONSE. At most p_batch
  -- leads a tick, oldest first, skipping leads another transaction holds (a reply being
  -- stored): a backlog drains over a few ticks instead of one long tick holding row locks.
  -- The shortest grace bounds the index range: only M3s older than that can be due.
  select min(c.no_response_grace_hours) into v_min_grace from public.campaigns c;
  update public.leads l set contact_status = 'NO_RESPONSE'
  where l.id in (
    select x.id from public.leads x
    join public.campaigns c on c.dataset_id = x.dataset_id
    where x.contact_status = 'M3_SENT'
      and x.m3_sent_at <= p_now - v_min_grace * interval '1 hour'
      and x.m3_sent_at <= p_now - c.no_response_grace_hours * interval '1 hour'
      and (x.reply_received_at is null or x.reply_received_at < x.m3_sent_at)
    order by x.m3_sent_at
    limit p_batch
    for update of x skip locked
  );
  get diagnostics v_no_response = row_count;

  -- 2. Active campaigns none of whose leads can receive anything more (every lead replied,
  -- finished the sequence, opted out, was archived or cannot be reached): completed, and
  -- their owner told, in one statement.
  with done as (
    update public.datasets d
    set campaign_status = 'completed', campaign_end_date = greatest(p_now, coalesce(d.campaign_start_date, p_now))
    from public.campaigns c
    where d.campaign_status = 'active' and c.dataset_id = d.id and c.started_at is not null and c.started_at <= p_now
      and exists (select from public.leads l where l.dataset_id = d.id)
      and not exists (
        select from public.leads l
        where l.dataset_id = d.id and not l.archived and not l.opted_out
          and l.contact_status in ('READY', 'M1_SENT', 'M2_SENT', 'M3_SENT')
          and not exists (
            select from public.suppressions s where s.client_id = l.client_id and s.phone_number = l.phone_number
          )
      )
    returning d.id, d.client_id, d.name
  )
  select count(*), coalesce(sum(private.notify_staff(
      done.client_id, 'campaign_completed', 'Campaign completed: ' || done.name,
      format('Every lead of %s has finished: %s of %s replied, %s booked a call, %s did not respond.',
        done.name, st.replied, st.total, st.booked, st.no_response),
      'normal', '/datasets/' || done.id,
      jsonb_build_object('kind', 'campaign_completed', 'dataset_id', done.id, 'total', st.total,
        'replied', st.replied, 'booked', st.booked, 'no_response', st.no_response),
      done.id
    )), 0)
  into v_completed, v_notified
  from done
  cross join lateral (
    select count(*) as total,
      count(*) filter (where l.contact_status in ('REPLIED', 'HOT', 'WARM', 'COLD', 'NOT_INTERESTED', 'CALL_BOOKED',
        'CONVERTED')) as replied,
      count(*) filter (where l.contact_status = 'NO_RESPONSE') as no_response,
      count(*) filter (where l.contact_status in ('CALL_BOOKED', 'CONVERTED')) as booked
    from public.leads l where l.dataset_id = done.id
  ) st;
  return jsonb_build_object('at', p_now, 'no_response', v_no_response, 'completed', v_completed, 'notified', v_notified);
end
$$;
comment on function private.run_campaign_completion(timestamptz, integer) is
  'pg_cron, every minute: leads whose M3 got no reply within the campaign''s grace period become NO_RESPONSE '
  '(at most p_batch a tick, oldest first); '
  'active campaigns with no lead left that can receive anything become completed (campaign_end_date set) '
  'and their owner is notified.';

revoke all on function private.run_campaign_completion(timestamptz, integer) from public, anon, authenticated;
grant execute on function private.run_campaign_completion(timestamptz, integer) to service_role;

select private.schedule_cron('campaign-completion', '* * * * *', 'select private.run_campaign_completion()');
