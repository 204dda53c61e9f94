-- Bookings: every Cal.com booking made for a lead (by staff through the API, by the AI agent
-- or arriving by webhook).
--   * public.bookings and the Cal.com webhook deliveries already processed; per-client Cal.com
--     settings in clients.settings -> 'calcom' (shape checked by a constraint of clients);
--   * record_booking / record_booking_cancellation: idempotent on the Cal.com booking uid, so
--     the API, the AI worker and the webhook may all report a booking and the lead changes
--     once, staff notified once (private.notify_staff, 03 notifications);
--   * private.ingest_calcom_webhook: each (booking uid, trigger event) handled once.

-- bookings --------------------------------------------------------------------------------
-- Bookings: every Cal.com booking made for a lead (by staff through the API, by the AI agent,
-- or arriving by webhook), the Cal.com webhook deliveries already processed, and the
-- per-client Cal.com settings kept in clients.settings -> 'calcom'.

create type public.booking_status as enum ('accepted', 'cancelled', 'rescheduled');
comment on type public.booking_status is
  'accepted: the call stands; cancelled: called off; rescheduled: replaced by a newer booking.';

create table public.bookings (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null,
  dataset_id uuid not null,
  lead_id uuid not null,
  cal_booking_uid text not null unique check (length(cal_booking_uid) between 1 and 200),
  cal_booking_id bigint,
  event_type_id bigint,
  status public.booking_status not null default 'accepted',
  start_time timestamptz not null,
  end_time timestamptz not null,
  booking_url text,
  notes text,
  source text not null check (source in ('api', 'ai', 'webhook')),
  booked_by uuid references auth.users (id) on delete set null,
  previous_lead_status public.lead_status,
  rescheduled_from_uid text,
  rescheduled_to_uid text,
  cancelled_at timestamptz,
  cancellation_reason text,
  details jsonb not null default '{}'::jsonb check (jsonb_typeof(details) = 'object'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (end_time >= start_time),
  foreign key (lead_id, client_id) references public.leads (id, client_id) on delete cascade,
  foreign key (dataset_id, client_id) references public.datasets (id, client_id) on delete cascade
);
comment on table public.bookings is
  'Cal.com bookings of leads. Written only by private.record_booking / private.record_booking_cancellation.';
comment on column public.bookings.cal_booking_uid is
  'Cal.com''s booking uid (the string id its API and webhooks use); one row per uid, which makes recording idempotent.';
comment on column public.bookings.cal_booking_id is 'Cal.com''s numeric booking id, when known.';
comment on column public.bookings.source is
  'Who made it: api (staff through calcom/create-booking), ai (the AI agent), webhook (booked on Cal.com directly).';
comment on column public.bookings.previous_lead_status is
  'The lead''s status before the booking; restored when the booking is cancelled.';
comment on column public.bookings.rescheduled_from_uid is 'The booking this one replaced (Cal.com reschedule).';
comment on column public.bookings.rescheduled_to_uid is 'The booking that replaced this one.';
comment on column public.bookings.details is 'Cal.com booking data: attendee, event type, location, metadata.';
create index bookings_client_idx on public.bookings (client_id, start_time desc);
create index bookings_lead_idx on public.bookings (lead_id, created_at desc);
create index bookings_dataset_idx on public.bookings (dataset_id);
create index bookings_booked_by_idx on public.bookings (booked_by) where booked_by is not null;

create trigger bookings_touch before update on public.bookings
  for each row execute function private.touch_updated_at();
create trigger bookings_client_fixed before update of client_id on public.bookings
  for each row execute function private.forbid_client_change();

alter table public.bookings enable row level security;

-- Members read the bookings of the datasets they may see (only their assigned leads' when they fail
-- closed).
create policy "members read bookings of visible datasets" on public.bookings
  for select to authenticated
  using (
    client_id = (select private.current_client_id())
    and ((select private.sees_all_datasets()) or dataset_id = any ((select private.visible_dataset_ids())::uuid[]))
    and (not (select private.sees_only_assigned_leads()) or lead_id = any ((select private.assigned_lead_ids())::uuid[]))
  );

-- Read-only for users: a booking is made through Cal.com and recorded by the functions below.
revoke all on public.bookings from anon, authenticated;
grant select on public.bookings to authenticated;
grant all on public.bookings to service_role;

alter publication supabase_realtime add table public.bookings;

-- Webhook deliveries already processed: Cal.com retries and may deliver twice ----------------
create table private.calcom_webhook_events (
  id bigint generated always as identity primary key,
  booking_uid text not null,
  trigger_event text not null,
  client_id uuid references public.clients (id) on delete cascade,
  lead_id uuid,
  payload jsonb not null,
  result jsonb,
  received_at timestamptz not null default now(),
  unique (booking_uid, trigger_event)
);
comment on table private.calcom_webhook_events is
  'Cal.com webhook events already handled, one per (booking uid, trigger event): a repeat delivery has no effect.';
comment on column private.calcom_webhook_events.result is 'What ingesting the event did (returned to Cal.com).';
create index calcom_webhook_events_client_idx on private.calcom_webhook_events (client_id)
where client_id is not null;
create index calcom_webhook_events_received_idx on private.calcom_webhook_events (received_at);

revoke all on private.calcom_webhook_events from public, anon, authenticated;

-- Per-client Cal.com settings (their shape is a check constraint of public.clients) ----------

-- A client's Cal.com settings: event_type_id (the event type leads are booked into), calendar_name,
-- booking_page_url.
create function private.calcom_settings(p_client_id uuid) returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(c.settings -> 'calcom', '{}'::jsonb) from public.clients c where c.id = p_client_id
$$;
comment on function private.calcom_settings(uuid) is
  'A client''s Cal.com settings: event_type_id (the event type leads are booked into), calendar_name, booking_page_url.';

revoke all on function private.calcom_settings(uuid) from public, anon, authenticated;
grant execute on function private.calcom_settings(uuid) to service_role;

-- recording bookings ----------------------------------------------------------------------
-- Recording bookings on the lead: one function for a made (or moved) booking and one for a
-- cancelled one. Both are idempotent on the Cal.com booking uid, so the API, the AI worker and
-- the webhook may all report the same booking and the lead changes once, staff notified once.

-- Tells the client's staff about a booking change through private.notify_staff; returns rows
-- created.
create function private.notify_booking_staff(
  p_lead public.leads, p_title text, p_message text, p_priority text, p_data jsonb
) returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_rows integer := 0;
begin
  v_rows := private.notify_staff(
    p_lead.client_id, p_title, p_message, p_priority,
    coalesce(
      (select '/conversations/' || c.id from public.conversations c where c.lead_id = p_lead.id),
      '/leads/' || p_lead.id
    ),
    p_data, p_lead.dataset_id
  );
  return coalesce(v_rows, 0);
end
$$;
comment on function private.notify_booking_staff(public.leads, text, text, text, jsonb) is
  'Tells the client''s staff about a booking change through private.notify_staff; returns rows created.';

-- A booking time as staff read it, in the client's time zone.
create function private.booking_when(p_client_id uuid, p_time timestamptz) returns text
language sql
stable
security definer
set search_path = ''
as $$
  select to_char(p_time at time zone c.timezone, 'Dy DD Mon YYYY, HH24:MI') || ' (' || c.timezone || ')'
  from public.clients c where c.id = p_client_id
$$;
comment on function private.booking_when(uuid, timestamptz) is 'A booking time as staff read it, in the client''s time zone.';

-- A lead's name for staff messages: first and last name, or the phone number.
create function private.lead_display_name(p_lead public.leads) returns text
language sql
immutable
set search_path = ''
as $$
  select coalesce(nullif(trim(concat_ws(' ', p_lead.first_name, p_lead.last_name)), ''), p_lead.phone_number)
$$;
comment on function private.lead_display_name(public.leads) is
  'A lead''s name for staff messages: first and last name, or the phone number.';

-- Marks a lead's booking as replaced by p_new (an accepted one becomes rescheduled).
create function private.supersede_booking(
  p_lead public.leads, p_old_uid text, p_new public.bookings, p_details jsonb
) returns public.bookings
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_old public.bookings;
begin
  update public.bookings b
  set status = case when b.status = 'accepted' then 'rescheduled'::public.booking_status else b.status end,
      rescheduled_to_uid = p_new.cal_booking_uid
  where b.cal_booking_uid = p_old_uid and b.lead_id = p_lead.id
  returning * into v_old;
  if found then
    return v_old;
  end if;
  -- Not seen yet: a placeholder with the times the reschedule reported (or the new ones).
  insert into public.bookings (
    client_id, dataset_id, lead_id, cal_booking_uid, status, start_time, end_time, source,
    previous_lead_status, rescheduled_to_uid, details
  ) values (
    p_lead.client_id, p_lead.dataset_id, p_lead.id, p_old_uid, 'rescheduled',
    coalesce((p_details ->> 'reschedule_start_time')::timestamptz, p_new.start_time),
    coalesce((p_details ->> 'reschedule_end_time')::timestamptz, p_new.end_time),
    'webhook', p_new.previous_lead_status, p_new.cal_booking_uid, jsonb_build_object('placeholder', true)
  )
  on conflict (cal_booking_uid) do nothing;
  return null;
end
$$;
comment on function private.supersede_booking(public.leads, text, public.bookings, jsonb) is
  'Marks a lead''s booking as replaced by p_new (an accepted one becomes rescheduled). A booking not seen yet '
  '(the reschedule overtook its creation) is stored as a rescheduled placeholder (details.placeholder) whose '
  'late BOOKING_CREATED only fills in its times. Returns the old booking, or null when it was a placeholder.';

-- Records a Cal.com booking for a lead: call_booked, call_booked_time, cal_booking_id, status
-- CALL_BOOKED, manual mode on, staff notified.
create function private.record_booking(
  p_lead_id uuid,
  p_booking_uid text,
  p_start_time timestamptz,
  p_end_time timestamptz,
  p_source text default 'api',
  p_booked_by uuid default null,
  p_booking_url text default null,
  p_notes text default null,
  p_details jsonb default '{}'::jsonb,
  p_rescheduled_from_uid text default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_lead public.leads;
  v_booking public.bookings;
  v_old public.bookings;
  v_target public.bookings;
  v_next public.bookings;
  v_prev_status public.lead_status;
  v_rescheduled boolean := false;
  v_notified integer;
begin
  if coalesce(trim(p_booking_uid), '') = '' then
    perform private.raise_error(400, 'a booking needs its Cal.com uid');
  end if;
  if p_start_time is null or p_end_time is null or p_end_time < p_start_time then
    perform private.raise_error(400, 'a booking needs a start time and an end time after it');
  end if;
  if p_source not in ('api', 'ai', 'webhook') then
    perform private.raise_error(400, format('unknown booking source %s', p_source));
  end if;

  -- The lead row lock serialises the API, the worker and the webhook for this lead, so the
  -- "already recorded?" check below sees whatever a concurrent caller committed.
  select * into v_lead from public.leads l where l.id = p_lead_id for update;
  if not found then
    perform private.raise_error(404, format('lead %s not found', p_lead_id));
  end if;
  -- Nobody books a call for a lead who opted out (staff or the AI). A booking the lead made on
  -- Cal.com themselves (webhook) is a fact and is recorded; the lead stays OPTED_OUT.
  if p_source <> 'webhook' and private.lead_is_opted_out(p_lead_id) then
    perform private.raise_error(409, 'This lead has opted out; no call can be booked for them.',
      jsonb_build_object('lead_id', p_lead_id, 'reason', 'opted_out'));
  end if;

  select * into v_booking from public.bookings b where b.cal_booking_uid = p_booking_uid;
  if found then
    if v_booking.lead_id <> p_lead_id then
      perform private.raise_error(409, format('Cal.com booking %s belongs to another lead', p_booking_uid));
    end if;
    if p_source <> 'webhook' and v_booking.source = 'webhook' then
      -- The webhook overtook the API/AI call that made the booking: keep who made it and the link.
      update public.bookings
      set source = p_source, booked_by = coalesce(booked_by, p_booked_by),
          booking_url = coalesce(booking_url, p_booking_url), notes = coalesce(notes, p_notes)
      where id = v_booking.id
      returning * into v_booking;
    end if;
    if v_booking.details ? 'placeholder' then
      -- Known so far only as the old half of a reschedule that overtook it: now its times are known.
      update public.bookings
      set start_time = p_start_time, end_time = p_end_time,
          details = (details - 'placeholder') || coalesce(p_details, '{}'::jsonb)
      where id = v_booking.id
      returning * into v_booking;
    end if;
    if p_rescheduled_from_uid is not null then
      -- A reschedule whose new booking we already know (its cancellation overtook it): the old
      -- booking is replaced all the same, and the lead follows the new one (booked or not).
      v_old := private.supersede_booking(v_lead, p_rescheduled_from_uid, v_booking, p_details);
      if v_old.cal_booking_uid = v_lead.cal_booking_id and v_lead.call_booked then
        -- The call now stands where the chain of reschedules from the new booking ends.
        v_target := v_booking;
        for v_hops in 1..100 loop
          exit when v_target.status <> 'rescheduled' or v_target.rescheduled_to_uid is null;
          select * into v_next from public.bookings b where b.cal_booking_uid = v_target.rescheduled_to_uid;
          exit when not found;
          v_target := v_next;
        end loop;
        if v_target.status = 'accepted' then
          update public.leads
          set call_booked_time = v_target.start_time, cal_booking_id = v_target.cal_booking_uid
          where id = p_lead_id;
        else
          update public.leads
          set call_booked = false, call_booked_time = null, cal_booking_id = null,
              contact_status = case
                when contact_status = 'CALL_BOOKED' then coalesce(v_old.previous_lead_status, 'REPLIED')
                else contact_status
              end
          where id = p_lead_id;
          perform private.notify_booking_staff(
            v_lead, 'Call cancelled',
            private.lead_display_name(v_lead) || ' moved their call and then cancelled it.',
            'immediate',
            jsonb_build_object('event', 'booking_cancelled', 'lead_id', v_lead.id, 'booking_uid', p_booking_uid,
              'rescheduled_from_uid', p_rescheduled_from_uid)
          );
        end if;
        return jsonb_build_object(
          'booking_id', v_booking.id, 'uid', v_booking.cal_booking_uid, 'created', false,
          'status', v_booking.status, 'start_time', v_booking.start_time, 'end_time', v_booking.end_time,
          'booking_url', v_booking.booking_url, 'lead_updated', true
        );
      end if;
    end if;
    return jsonb_build_object(
      'booking_id', v_booking.id, 'uid', v_booking.cal_booking_uid, 'created', false,
      'status', v_booking.status, 'start_time', v_booking.start_time, 'end_time', v_booking.end_time,
      'booking_url', v_booking.booking_url, 'lead_updated', false
    );
  end if;

  if p_rescheduled_from_uid is not null then
    select * into v_old from public.bookings b
    where b.cal_booking_uid = p_rescheduled_from_uid and b.lead_id = p_lead_id
    for update;
    if found then
      v_rescheduled := true;
      v_prev_status := v_old.previous_lead_status;
      update public.bookings
      set status = 'rescheduled', rescheduled_to_uid = p_booking_uid
      where id = v_old.id;
    end if;
  end if;
  if not v_rescheduled then
    v_prev_status := nullif(v_lead.contact_status, 'CALL_BOOKED');
    if v_prev_status is null then
      -- A further booking of an already booked lead: remember the status from before the first.
      select b.previous_lead_status into v_prev_status
      from public.bookings b where b.cal_booking_uid = v_lead.cal_booking_id;
    end if;
  end if;

  insert into public.bookings (
    client_id, dataset_id, lead_id, cal_booking_uid, cal_booking_id, event_type_id, start_time, end_time,
    booking_url, notes, source, booked_by, previous_lead_status, rescheduled_from_uid, details
  ) values (
    v_lead.client_id, v_lead.dataset_id, v_lead.id, p_booking_uid,
    (p_details ->> 'cal_booking_id')::bigint, (p_details ->> 'event_type_id')::bigint,
    p_start_time, p_end_time, p_booking_url, p_notes, p_source, p_booked_by, v_prev_status,
    p_rescheduled_from_uid, coalesce(p_details, '{}'::jsonb)
  )
  returning * into v_booking;

  if p_rescheduled_from_uid is not null and not v_rescheduled then
    -- The reschedule overtook the creation of the booking it replaces: remember that booking as
    -- replaced, so its late BOOKING_CREATED changes nothing (no phantom second call).
    perform private.supersede_booking(v_lead, p_rescheduled_from_uid, v_booking, p_details);
  end if;

  update public.leads
  set call_booked = true,
      call_booked_time = p_start_time,
      cal_booking_id = p_booking_uid,
      contact_status = case
        when contact_status in ('CONVERTED', 'OPTED_OUT') then contact_status
        else 'CALL_BOOKED'::public.lead_status
      end,
      manual_mode = true,
      manual_mode_activated_at = case when manual_mode then coalesce(manual_mode_activated_at, now()) else now() end
  where id = p_lead_id;

  v_notified := private.notify_booking_staff(
    v_lead,
    case when v_rescheduled then 'Call rescheduled' else 'Call booked' end,
    private.lead_display_name(v_lead)
    || case when v_rescheduled then ' moved their call to ' else ' booked a call for ' end
    || private.booking_when(v_lead.client_id, p_start_time)
    || '. The conversation is now in manual mode.',
    'immediate',
    jsonb_build_object(
      'event', case when v_rescheduled then 'booking_rescheduled' else 'booking_created' end,
      'lead_id', v_lead.id, 'booking_uid', p_booking_uid, 'start_time', p_start_time,
      'rescheduled_from_uid', p_rescheduled_from_uid, 'source', p_source
    )
  );

  return jsonb_build_object(
    'booking_id', v_booking.id, 'uid', v_booking.cal_booking_uid, 'created', true,
    'status', v_booking.status, 'start_time', v_booking.start_time, 'end_time', v_booking.end_time,
    'booking_url', v_booking.booking_url, 'lead_updated', true, 'rescheduled', v_rescheduled,
    'notifications', v_notified
  );
end
$$;
comment on function private.record_booking(uuid, text, timestamptz, timestamptz, text, uuid, text, text, jsonb, text) is
  'Records a Cal.com booking for a lead: call_booked, call_booked_time, cal_booking_id, status CALL_BOOKED, '
  'manual mode on, staff notified. With p_rescheduled_from_uid it replaces that booking. Idempotent on the '
  'booking uid: a repeat returns the stored booking with created=false and changes nothing. '
  'Deliveries in any order converge (private.supersede_booking). Sources api/ai: 409 CONFLICT for an '
  'opted-out lead (private.lead_is_opted_out). '
  'p_details: {cal_booking_id, event_type_id, attendee, reschedule_start_time, reschedule_end_time, ...}.';

-- Records that a Cal.com booking was cancelled.
create function private.record_booking_cancellation(
  p_booking_uid text,
  p_reason text default null,
  p_cancelled_by text default null,
  p_lead_id uuid default null,
  p_start_time timestamptz default null,
  p_end_time timestamptz default null,
  p_details jsonb default '{}'::jsonb
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_booking public.bookings;
  v_lead public.leads;
  v_restored public.lead_status;
  v_notified integer;
begin
  select * into v_booking from public.bookings b where b.cal_booking_uid = p_booking_uid;
  if not found then
    if p_lead_id is null or p_start_time is null then
      return jsonb_build_object('status', 'ignored', 'reason', 'unknown_booking', 'uid', p_booking_uid);
    end if;
    -- A cancellation that overtook its creation: keep a tombstone so the late "created"
    -- delivery is recognised as already handled and does not book the lead.
    select * into v_lead from public.leads l where l.id = p_lead_id for update;
    if not found then
      return jsonb_build_object('status', 'ignored', 'reason', 'unknown_lead', 'uid', p_booking_uid);
    end if;
    insert into public.bookings (
      client_id, dataset_id, lead_id, cal_booking_uid, status, start_time, end_time, source,
      cancelled_at, cancellation_reason, details
    ) values (
      v_lead.client_id, v_lead.dataset_id, v_lead.id, p_booking_uid, 'cancelled', p_start_time,
      coalesce(p_end_time, p_start_time), 'webhook', now(), p_reason, coalesce(p_details, '{}'::jsonb)
    )
    on conflict (cal_booking_uid) do nothing;
    return jsonb_build_object('status', 'recorded', 'uid', p_booking_uid, 'lead_updated', false);
  end if;

  -- Lock order as in record_booking: lead first, then the booking.
  select * into v_lead from public.leads l where l.id = v_booking.lead_id for update;
  select * into v_booking from public.bookings b where b.id = v_booking.id for update;
  if v_booking.status = 'cancelled' then
    return jsonb_build_object('status', 'duplicate', 'uid', p_booking_uid, 'lead_updated', false);
  end if;
  if v_booking.status = 'rescheduled' then
    -- The old half of a reschedule: the lead's call stands at its new time.
    return jsonb_build_object('status', 'superseded', 'uid', p_booking_uid, 'lead_updated', false);
  end if;

  update public.bookings
  set status = 'cancelled', cancelled_at = now(), cancellation_reason = p_reason,
      details = details || jsonb_build_object('cancelled_by', p_cancelled_by)
  where id = v_booking.id;

  if v_lead.cal_booking_id is distinct from p_booking_uid then
    -- Not the lead's current booking (an older one): the lead keeps its current call.
    return jsonb_build_object('status', 'cancelled', 'uid', p_booking_uid, 'lead_updated', false);
  end if;

  v_restored := case
    when v_lead.contact_status = 'CALL_BOOKED' then coalesce(v_booking.previous_lead_status, 'REPLIED')
    else v_lead.contact_status
  end;
  update public.leads
  set call_booked = false, call_booked_time = null, cal_booking_id = null, contact_status = v_restored
  where id = v_lead.id;

  v_notified := private.notify_booking_staff(
    v_lead,
    'Call cancelled',
    private.lead_display_name(v_lead) || ' cancelled their call for '
    || private.booking_when(v_lead.client_id, v_booking.start_time)
    || coalesce(' (reason: ' || nullif(trim(p_reason), '') || ')', '')
    || '. The conversation stays in manual mode: follow up by hand or turn the AI back on.',
    'immediate',
    jsonb_build_object(
      'event', 'booking_cancelled', 'lead_id', v_lead.id, 'booking_uid', p_booking_uid,
      'start_time', v_booking.start_time, 'reason', p_reason, 'cancelled_by', p_cancelled_by
    )
  );

  return jsonb_build_object(
    'status', 'cancelled', 'uid', p_booking_uid, 'lead_updated', true, 'lead_status', v_restored,
    'notifications', v_notified
  );
end
$$;
comment on function private.record_booking_cancellation(text, text, text, uuid, timestamptz, timestamptz, jsonb) is
  'Records that a Cal.com booking was cancelled. When it was the lead''s current call: call_booked off, '
  'status back to what it was before the booking (REPLIED if unknown), staff notified. Idempotent. '
  'An unknown uid with p_lead_id and p_start_time leaves a cancelled tombstone so a late "created" is ignored.';

revoke all on function private.notify_booking_staff(public.leads, text, text, text, jsonb),
  private.supersede_booking(public.leads, text, public.bookings, jsonb),
  private.booking_when(uuid, timestamptz), private.lead_display_name(public.leads),
  private.record_booking(uuid, text, timestamptz, timestamptz, text, uuid, text, text, jsonb, text),
  private.record_booking_cancellation(text, text, text, uuid, timestamptz, timestamptz, jsonb)
  from public, anon, authenticated;
grant execute on function
  private.record_booking(uuid, text, timestamptz, timestamptz, text, uuid, text, text, jsonb, text),
  private.record_booking_cancellation(text, text, text, uuid, timestamptz, timestamptz, jsonb)
  to service_role;

-- Cal.com webhooks ------------------------------------------------------------------------
-- Cal.com webhooks: the calcom-webhook edge function checks X-Cal-Signature-256 and hands the
-- parsed body to this one function. Each (booking uid, trigger event) is handled once.

-- Handles one verified Cal.com webhook body ({triggerEvent, payload}): BOOKING_CREATED and
-- BOOKING_RESCHEDULED record the booking on the lead (metadata.lead_id, or the booking it
-- replaces), BOOKING_CANCELLED undoes it.
create function private.ingest_calcom_webhook(p_event jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_trigger text := p_event ->> 'triggerEvent';
  v_payload jsonb := p_event -> 'payload';
  v_uid text;
  v_from_uid text;
  v_start timestamptz;
  v_end timestamptz;
  v_old_start timestamptz;
  v_old_end timestamptz;
  v_lead_text text;
  v_lead_id uuid;
  v_known_lead uuid;
  v_client_id uuid;
  v_event_type text;
  v_setting_type text;
  v_event_id bigint;
  v_details jsonb;
  v_result jsonb;
begin
  if jsonb_typeof(p_event) is distinct from 'object' or v_trigger is null then
    raise exception 'not a Cal.com webhook event (no triggerEvent)' using errcode = '22023';
  end if;
  if v_trigger = 'PING' then
    -- Cal.com's "ping test" from the webhook settings page.
    return jsonb_build_object('status', 'ok', 'event', v_trigger);
  end if;
  if v_trigger not in ('BOOKING_CREATED', 'BOOKING_CANCELLED', 'BOOKING_RESCHEDULED') then
    return jsonb_build_object('status', 'ignored', 'reason', 'unsupported_event', 'event', v_trigger);
  end if;
  if jsonb_typeof(v_payload) is distinct from 'object' or coalesce(v_payload ->> 'uid', '') = '' then
    raise exception 'a % event needs payload.uid', v_trigger using errcode = '22023';
  end if;
  v_uid := v_payload ->> 'uid';
  begin
    v_start := (v_payload ->> 'startTime')::timestamptz;
    v_end := (v_payload ->> 'endTime')::timestamptz;
  exception when others then
    raise exception 'payload.startTime / endTime are not timestamps' using errcode = '22023';
  end;
  if v_trigger = 'BOOKING_RESCHEDULED' then
    -- The replaced booking's times, kept for it in case its own BOOKING_CREATED comes later.
    begin
      v_old_start := (v_payload ->> 'rescheduleStartTime')::timestamptz;
      v_old_end := greatest((v_payload ->> 'rescheduleEndTime')::timestamptz, v_old_start);
    exception when others then
      v_old_start := null;
      v_old_end := null;
    end;
  end if;
  if v_trigger <> 'BOOKING_CANCELLED' and v_start is null then
    raise exception 'a % event needs payload.startTime', v_trigger using errcode = '22023';
  end if;

  -- One effect per (uid, event): a repeated delivery returns what the first one did.
  insert into private.calcom_webhook_events (booking_uid, trigger_event, payload)
  values (v_uid, v_trigger, p_event)
  on conflict (booking_uid, trigger_event) do nothing
  returning id into v_event_id;
  if v_event_id is null then
    select e.result into v_result
    from private.calcom_webhook_events e
    where e.booking_uid = v_uid and e.trigger_event = v_trigger;
    return jsonb_build_object('status', 'duplicate', 'event', v_trigger, 'uid', v_uid, 'first_result', v_result);
  end if;

  v_from_uid := coalesce(
    nullif(v_payload ->> 'rescheduleUid', ''),
    nullif(v_payload ->> 'rescheduledFromUid', ''),
    nullif(v_payload ->> 'fromReschedule', '')
  );

  -- Which lead: a booking we already know decides; otherwise the lead_id we put in metadata.
  select b.lead_id into v_known_lead from public.bookings b where b.cal_booking_uid = v_uid;
  if v_known_lead is null and v_from_uid is not null then
    select b.lead_id into v_known_lead from public.bookings b where b.cal_booking_uid = v_from_uid;
  end if;
  v_lead_text := v_payload -> 'metadata' ->> 'lead_id';
  if v_known_lead is not null then
    v_lead_id := v_known_lead;
  elsif v_lead_text ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    v_lead_id := v_lead_text::uuid;
  end if;
  select l.client_id into v_client_id from public.leads l where l.id = v_lead_id;

  if v_client_id is null then
    v_result := jsonb_build_object('status', 'ignored', 'reason', 'unknown_lead');
  elsif v_known_lead is null and v_trigger <> 'BOOKING_CANCELLED' then
    -- A booking we did not make: it must be for the event type this client books leads into.
    v_event_type := v_payload ->> 'eventTypeId';
    v_setting_type := private.calcom_settings(v_client_id) ->> 'event_type_id';
    if v_setting_type is not null and v_event_type is not null and v_event_type <> v_setting_type then
      v_result := jsonb_build_object('status', 'ignored', 'reason', 'event_type_mismatch');
    end if;
  end if;

  if v_result is null then
    v_details := jsonb_strip_nulls(jsonb_build_object(
      'cal_booking_id', case when v_payload ->> 'bookingId' ~ '^[0-9]+$' then v_payload -> 'bookingId' end,
      'event_type_id', case when v_payload ->> 'eventTypeId' ~ '^[0-9]+$' then v_payload -> 'eventTypeId' end,
      'title', v_payload -> 'title',
      'attendees', v_payload -> 'attendees',
      'location', v_payload -> 'location',
      'metadata', v_payload -> 'metadata',
      'reschedule_start_time', v_old_start,
      'reschedule_end_time', v_old_end
    ));
    if v_trigger = 'BOOKING_CANCELLED' then
      v_result := private.record_booking_cancellation(
        v_uid,
        v_payload ->> 'cancellationReason',
        v_payload ->> 'cancelledBy',
        v_lead_id,
        v_start,
        v_end,
        v_details
      );
    else
      v_result := private.record_booking(
        v_lead_id, v_uid, v_start, coalesce(v_end, v_start), 'webhook', null, null,
        nullif(v_payload ->> 'additionalNotes', ''), v_details,
        case when v_trigger = 'BOOKING_RESCHEDULED' then v_from_uid end
      );
      v_result := v_result || jsonb_build_object('status', case when (v_result ->> 'created')::boolean then 'recorded' else 'already_recorded' end);
    end if;
  end if;

  v_result := v_result || jsonb_build_object('event', v_trigger, 'uid', v_uid);
  update private.calcom_webhook_events
  set result = v_result, lead_id = v_lead_id, client_id = v_client_id
  where id = v_event_id;
  return v_result;
end
$$;
comment on function private.ingest_calcom_webhook(jsonb) is
  'Handles one verified Cal.com webhook body ({triggerEvent, payload}): BOOKING_CREATED and BOOKING_RESCHEDULED '
  'record the booking on the lead (metadata.lead_id, or the booking it replaces), BOOKING_CANCELLED undoes it. '
  'Idempotent on (payload.uid, triggerEvent). Returns what it did.';

revoke all on function private.ingest_calcom_webhook(jsonb) from public, anon, authenticated;
grant execute on function private.ingest_calcom_webhook(jsonb) to service_role;
