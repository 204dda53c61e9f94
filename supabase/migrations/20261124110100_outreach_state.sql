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

create policy "members read their client's suppressions" on public.suppressions
  for select to authenticated
  using (client_id = (select private.current_client_id()));
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

-- leads: sequence position -------------------------------------------------------------
alter table public.leads add column sequence_step smallint not null default 0 check (sequence_step between 0 and 3);
comment on column public.leads.sequence_step is
  'Sequence messages queued so far (0 = none, 1..3 = M1..M3). Set when the tick queues a step, so a '
  'lead whose message is queued but not yet sent is never queued again.';

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

-- messages: send attempt and indexes the send rules use ----------------------------------
alter table public.messages
  add column send_started_at timestamptz,
  add column send_attempts smallint not null default 0;
comment on column public.messages.send_started_at is
  'When prepare_send handed the message to a worker (recorded before calling Twilio). With status '
  '"sending" and no result it marks an ambiguous attempt to reconcile. Rate limits count it.';
comment on column public.messages.send_attempts is 'How many times prepare_send released the message for sending.';

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
