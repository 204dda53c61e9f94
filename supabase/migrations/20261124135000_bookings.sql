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

-- Per-client Cal.com settings --------------------------------------------------------------
alter table public.clients add constraint clients_calcom_settings_shape check (
  settings -> 'calcom' is null
  or (
    jsonb_typeof(settings -> 'calcom') = 'object'
    and coalesce(jsonb_typeof(settings -> 'calcom' -> 'event_type_id'), 'number') in ('number', 'null')
    and coalesce(jsonb_typeof(settings -> 'calcom' -> 'calendar_name'), 'string') in ('string', 'null')
    and coalesce(jsonb_typeof(settings -> 'calcom' -> 'booking_page_url'), 'string') in ('string', 'null')
  )
);
comment on constraint clients_calcom_settings_shape on public.clients is
  'settings.calcom = {event_type_id: number, calendar_name: text, booking_page_url: text}, all optional.';

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
