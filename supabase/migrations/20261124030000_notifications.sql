-- Notifications: every notification staff get, in-app, by email and by SMS.
--   * public.notifications is the inbox (own rows only; Realtime carries new rows to the app)
--     and the record of every notification, with its event, channels and dedupe key;
--   * one writer, private.create_notifications: the in-app rows, one delivery per extra channel
--     (private.notification_deliveries) and its notify.email / notify.sms job, set-based;
--   * two entry points: private.notify_user (one person, the API contract's notifications/send)
--     and private.notify_staff(client, event, ...) (recipients by role and event from
--     private.notification_event_types, channels by each person's preferences); the older
--     notify_staff(client, title, ...) maps its call to an event;
--   * priority: immediate now, normal after the person's quiet hours (their time zone), low in a
--     daily digest email (pg_cron); the same event about the same subject notifies each person
--     once (unique user_id + dedupe_key: this is what stops the double "Hot lead");
--   * staff SMS go to the member's own phone and are never lead messages: not in public.messages,
--     never counted against the client's lead-sending budget.
-- The bodies read leads, datasets and suppressions (bands 11, 10, 20); they are plpgsql, which
-- resolves those names when it runs. The HOT-lead trigger lives with the leads
-- (20261124110000_leads.sql); campaign completion with the outreach (20261124200000_outreach.sql).

-- notifications ---------------------------------------------------------------------------
create table public.notifications (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null references public.clients (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  title text not null check (length(title) between 1 and 200),
  message text not null check (length(message) <= 2000),
  priority text not null default 'normal' check (priority in ('immediate', 'normal', 'low')),
  link text,
  data jsonb not null default '{}'::jsonb check (jsonb_typeof(data) = 'object'),
  event text not null default 'general' check (event ~ '^[a-z][a-z0-9_]*$'),
  channels text[] not null default array['in_app']
    check (channels <@ array['in_app', 'email', 'sms'] and 'in_app' = any (channels)),
  dedupe_key text,
  read_at timestamptz,
  created_at timestamptz not null default now()
);
comment on table public.notifications is
  'Notifications for one staff user (the in-app inbox, and the record of what went out by email and SMS).';
comment on column public.notifications.link is 'Deep link inside the app, e.g. /conversations/<id>.';
comment on column public.notifications.data is 'Context for the frontend (lead_id, conversation_id, message_id...).';
comment on column public.notifications.event is
  'What happened (new_reply, hot_lead, booking, sophie_critical, campaign_completed...; direct for notifications/send).';
comment on column public.notifications.channels is
  'Channels this notification went out on; in_app always (the inbox is the record of every notification).';
comment on column public.notifications.dedupe_key is
  'Same event, same subject: a second notification with this key for this user is not created.';
comment on column public.notifications.read_at is 'Set by the user when read; null = unread.';
create index notifications_user_idx on public.notifications (user_id, created_at desc);
create index notifications_unread_idx on public.notifications (user_id) where read_at is null;
create index notifications_client_idx on public.notifications (client_id);
create unique index notifications_dedupe_idx on public.notifications (user_id, dedupe_key)
  where dedupe_key is not null;

alter table public.notifications enable row level security;

-- A user reads only the notifications addressed to it, in its current client.
create policy "users read their own notifications" on public.notifications
  for select to authenticated
  using (user_id = (select auth.uid()) and client_id = (select private.current_client_id()));

-- A user marks its own notifications read (read_at is the only writable column).
create policy "users mark their own notifications read" on public.notifications
  for update to authenticated
  using (user_id = (select auth.uid()) and client_id = (select private.current_client_id()))
  with check (user_id = (select auth.uid()));

-- A user deletes its own notifications.
create policy "users delete their own notifications" on public.notifications
  for delete to authenticated
  using (user_id = (select auth.uid()) and client_id = (select private.current_client_id()));

revoke all on public.notifications from anon, authenticated;
grant select, delete on public.notifications to authenticated;
grant update (read_at) on public.notifications to authenticated;
grant all on public.notifications to service_role;

alter publication supabase_realtime add table public.notifications;

-- The event catalog ---------------------------------------------------------------------
create table private.notification_event_types (
  event text primary key check (event ~ '^[a-z][a-z0-9_]*$'),
  audience text not null check (audience in (
    'admins', 'managers', 'team', 'assignee_or_managers', 'owner', 'legacy', 'direct'
  )),
  default_channels text[] not null check (default_channels <@ array['in_app', 'email', 'sms']),
  description text not null
);
comment on table private.notification_event_types is
  'Every event staff can be notified about: who hears about it (audience) and on which channels by default.';
comment on column private.notification_event_types.audience is
  'admins: active admins; managers: admins and managers; team: admins, managers and the lead''s assigned '
  'rep; assignee_or_managers: the assigned rep, else the managers (admins when there is none); owner: '
  'the dataset''s creator, else the admins; legacy: admins and managers, or everyone who sees the dataset; '
  'direct: the one person named (notifications/send). read_only members only with operational_alerts on.';
insert into private.notification_event_types (event, audience, default_channels, description) values
  ('new_reply', 'assignee_or_managers', array['in_app', 'email'], 'A lead replied and no AI answers it (manual mode or AI off).'),
  ('draft_ready', 'assignee_or_managers', array['in_app'], 'An AI draft waits for approval.'),
  ('needs_human', 'assignee_or_managers', array['in_app', 'email'], 'A conversation needs a person (handover, AI failure).'),
  ('hot_lead', 'team', array['in_app', 'email', 'sms'], 'A lead became HOT.'),
  ('booking', 'team', array['in_app', 'email'], 'A call was booked, rescheduled or cancelled.'),
  ('opted_out', 'team', array['in_app'], 'A lead opted out.'),
  ('opted_in', 'team', array['in_app'], 'A lead opted back in.'),
  ('unknown_sender', 'managers', array['in_app'], 'A message from a number that is not a lead.'),
  ('sophie_critical', 'admins', array['in_app', 'email'], 'Sophie raised a CRITICAL finding.'),
  ('job_failed', 'admins', array['in_app', 'email'], 'A background job failed for good.'),
  ('campaign_completed', 'owner', array['in_app', 'email'], 'No lead of a campaign can receive anything more.'),
  ('general', 'legacy', array['in_app'], 'Anything else staff should know.'),
  ('direct', 'direct', array['in_app'], 'Sent to one person through notifications/send.');

-- Deliveries (email, SMS, digests) ------------------------------------------------------
create type private.notification_delivery_status as enum (
  'pending', 'digest', 'digested', 'sending', 'sent', 'failed', 'skipped'
);
comment on type private.notification_delivery_status is
  'pending: its job will send it (at scheduled_for); digest: waits for the daily digest; digested: folded '
  'into a digest delivery; sending: handed to the provider, result not recorded yet; sent / failed / '
  'skipped (member inactive, no address, number opted out, nothing left to tell).';

create table private.notification_deliveries (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null references public.clients (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  notification_id uuid references public.notifications (id) on delete cascade,
  channel text not null check (channel in ('email', 'sms')),
  kind text not null default 'single' check (kind in ('single', 'digest')),
  priority text not null check (priority in ('immediate', 'normal', 'low')),
  status private.notification_delivery_status not null default 'pending',
  scheduled_for timestamptz not null default now(),
  digest_id uuid references private.notification_deliveries (id) on delete set null,
  digest_date date,
  attempts integer not null default 0,
  attempted_at timestamptz,
  sent_at timestamptz,
  to_address text,
  provider_id text,
  error text,
  created_at timestamptz not null default now(),
  check ((kind = 'digest') = (notification_id is null)),
  check ((kind = 'digest') = (digest_date is not null))
);
comment on table private.notification_deliveries is
  'One email or SMS of a notification (or one digest email of a person''s low-priority notifications) and '
  'what became of it. Written with the notification; sent by the notify.email / notify.sms jobs.';
comment on column private.notification_deliveries.scheduled_for is
  'When it may go: now (immediate), the end of the person''s quiet hours (normal), the digest (low).';
comment on column private.notification_deliveries.digest_id is 'The digest delivery a low-priority item was folded into.';
comment on column private.notification_deliveries.digest_date is 'A digest''s day in the person''s time zone (one per day).';
comment on column private.notification_deliveries.to_address is 'Email address or E.164 phone it went to (read at send time).';
comment on column private.notification_deliveries.provider_id is 'Resend email id or Twilio message SID.';
create unique index notification_deliveries_digest_day_idx on private.notification_deliveries (user_id, digest_date)
  where kind = 'digest';
create index notification_deliveries_waiting_idx on private.notification_deliveries (user_id)
  where status = 'digest';
create index notification_deliveries_digest_idx on private.notification_deliveries (digest_id)
  where digest_id is not null;
create index notification_deliveries_notification_idx on private.notification_deliveries (notification_id);
create index notification_deliveries_client_idx on private.notification_deliveries (client_id);
revoke all on private.notification_deliveries, private.notification_event_types from public, anon, authenticated;
grant select on private.notification_deliveries, private.notification_event_types to service_role;

-- Preferences -----------------------------------------------------------------------------
-- Stored in client_members.notification_preferences:
--   channels            {"<event>": ["in_app", "email", "sms"], ...}  ([] mutes the event)
--   quiet_hours         {"start": "22:00", "end": "07:00"} or null (never quiet)
--   timezone            IANA name, null = the client's
--   digest              true: low priority waits for the daily digest email; false: sent like normal
--   digest_hour         local hour of the digest (0-23, default 8)
--   operational_alerts  read_only members: opt in to operational alerts (default false)
comment on column public.client_members.notification_preferences is
  'Notification preferences (see public.update_notification_preferences): channels per event, quiet_hours, '
  'timezone, digest, digest_hour, operational_alerts.';

-- A member's preferences with every default filled in.
create function private.notification_prefs(p_prefs jsonb, p_client_tz text) returns jsonb
language sql
immutable
set search_path = ''
as $$
  select jsonb_build_object(
    'channels', coalesce(p_prefs -> 'channels', '{}'::jsonb),
    'quiet_hours', coalesce(p_prefs -> 'quiet_hours', 'null'::jsonb),
    'timezone', coalesce(p_prefs ->> 'timezone', p_client_tz, 'UTC'),
    'digest', coalesce((p_prefs ->> 'digest')::boolean, true),
    'digest_hour', coalesce((p_prefs ->> 'digest_hour')::integer, 8),
    'operational_alerts', coalesce((p_prefs ->> 'operational_alerts')::boolean, false)
  )
$$;
comment on function private.notification_prefs(jsonb, text) is
  'A member''s stored notification preferences with every default filled in (time zone: the client''s).';

-- When the quiet hours around a moment end (null: not quiet then).
create function private.quiet_until(p_at timestamptz, p_tz text, p_quiet jsonb) returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  v_local timestamp;
  v_t time;
  v_start time;
  v_end time;
begin
  if p_quiet is null or jsonb_typeof(p_quiet) <> 'object' then
    return null;
  end if;
  v_start := (p_quiet ->> 'start')::time;
  v_end := (p_quiet ->> 'end')::time;
  if v_start is null or v_end is null or v_start = v_end then
    return null;
  end if;
  v_local := p_at at time zone p_tz;
  v_t := v_local::time;
  if v_start < v_end then
    if v_t >= v_start and v_t < v_end then
      return (v_local::date + v_end) at time zone p_tz;
    end if;
  elsif v_t >= v_start then
    return (v_local::date + 1 + v_end) at time zone p_tz;
  elsif v_t < v_end then
    return (v_local::date + v_end) at time zone p_tz;
  end if;
  return null;
end
$$;
comment on function private.quiet_until(timestamptz, text, jsonb) is
  'When quiet hours {start, end} (local times in p_tz, may wrap midnight) end if p_at falls inside them, else null.';

-- The channels one person gets an event on.
create function private.member_channels(
  p_prefs jsonb, p_event text, p_requested text[], p_phone text
) returns text[]
language sql
immutable
set search_path = ''
as $$
  -- The person's own list for the event wins; [] mutes it (no notification at all). in_app is
  -- always part of a notification that goes out; sms needs a phone number on the membership.
  with wanted as (
    select case
      when jsonb_typeof(p_prefs -> 'channels' -> p_event) = 'array' then
        array(select jsonb_array_elements_text(p_prefs -> 'channels' -> p_event))
      else p_requested
    end as ch
  )
  select case
    when cardinality(w.ch) = 0 then '{}'::text[]
    else array(
      select c from unnest(array['in_app', 'email', 'sms']) c
      where (c = 'in_app' or c = any (w.ch)) and (c <> 'sms' or p_phone is not null)
    )
  end
  from wanted w
$$;
comment on function private.member_channels(jsonb, text, text[], text) is
  'The channels one person gets an event on: their preference for it, else p_requested; [] = muted; '
  'in_app always otherwise; sms only with a phone number.';

-- Checks a preferences object; a 400 names the bad key.
create function private.validate_notification_preferences(p jsonb) returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_key text;
  v_val jsonb;
  v_bad text;
begin
  if p is null or jsonb_typeof(p) <> 'object' then
    perform private.raise_error(400, 'preferences must be a JSON object');
  end if;
  select string_agg(k, ', ' order by k) into v_bad from jsonb_object_keys(p) k
  where k <> all (array['channels', 'quiet_hours', 'timezone', 'digest', 'digest_hour', 'operational_alerts']);
  if v_bad is not null then
    perform private.raise_error(400, format('unknown notification preference(s): %s', v_bad),
      jsonb_build_object('key', v_bad, 'allowed',
        array['channels', 'quiet_hours', 'timezone', 'digest', 'digest_hour', 'operational_alerts']));
  end if;
  if p ? 'channels' and jsonb_typeof(p -> 'channels') <> 'null' then
    if jsonb_typeof(p -> 'channels') <> 'object' then
      perform private.raise_error(400, 'channels must be an object {event: [channels]}', jsonb_build_object('key', 'channels'));
    end if;
    for v_key, v_val in select * from jsonb_each(p -> 'channels') loop
      if not exists (select from private.notification_event_types t where t.event = v_key) then
        perform private.raise_error(400, format('channels.%s: unknown event', v_key),
          jsonb_build_object('key', 'channels.' || v_key,
            'allowed', (select array_agg(t.event order by t.event) from private.notification_event_types t)));
      end if;
      if jsonb_typeof(v_val) <> 'null' and jsonb_typeof(v_val) <> 'array' or exists (
        select from jsonb_array_elements(case when jsonb_typeof(v_val) = 'array' then v_val else '[]' end) e
        where jsonb_typeof(e) <> 'string' or e #>> '{}' <> all (array['in_app', 'email', 'sms'])
      ) then
        perform private.raise_error(400, format('channels.%s must be an array of in_app, email, sms', v_key),
          jsonb_build_object('key', 'channels.' || v_key));
      end if;
    end loop;
  end if;
  if p ? 'quiet_hours' and jsonb_typeof(p -> 'quiet_hours') <> 'null' then
    if jsonb_typeof(p -> 'quiet_hours') <> 'object'
       or (select count(*) from jsonb_object_keys(p -> 'quiet_hours') k where k not in ('start', 'end')) > 0
       or coalesce(p -> 'quiet_hours' ->> 'start', '') !~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'
       or coalesce(p -> 'quiet_hours' ->> 'end', '') !~ '^([01][0-9]|2[0-3]):[0-5][0-9]$' then
      perform private.raise_error(400, 'quiet_hours must be {"start": "HH:MM", "end": "HH:MM"} or null',
        jsonb_build_object('key', 'quiet_hours'));
    end if;
  end if;
  if p ? 'timezone' and jsonb_typeof(p -> 'timezone') <> 'null' and (
    jsonb_typeof(p -> 'timezone') <> 'string'
    or not exists (select from pg_catalog.pg_timezone_names z where z.name = p ->> 'timezone')
  ) then
    perform private.raise_error(400, format('timezone: unknown time zone %s', p -> 'timezone'),
      jsonb_build_object('key', 'timezone'));
  end if;
  foreach v_key in array array['digest', 'operational_alerts'] loop
    if p ? v_key and jsonb_typeof(p -> v_key) not in ('boolean', 'null') then
      perform private.raise_error(400, format('%s must be true or false', v_key), jsonb_build_object('key', v_key));
    end if;
  end loop;
  if p ? 'digest_hour' and jsonb_typeof(p -> 'digest_hour') <> 'null' and (
    jsonb_typeof(p -> 'digest_hour') <> 'number' or (p ->> 'digest_hour') !~ '^([0-9]|1[0-9]|2[0-3])$'
  ) then
    perform private.raise_error(400, 'digest_hour must be an integer between 0 and 23', jsonb_build_object('key', 'digest_hour'));
  end if;
  return p;
end
$$;
comment on function private.validate_notification_preferences(jsonb) is
  'Checks a preferences object (keys, event names, channels, HH:MM quiet hours, time zone, digest hour) and '
  'returns it; a 400 names the bad key. A null value means "back to the default".';

-- The caller's preferences with defaults and each event's effective channels.
create function private.my_notification_preferences() returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_member public.client_members := private.current_membership();
begin
  if v_member.user_id is null then
    perform private.raise_error(401, 'sign in to read notification preferences');
  end if;
  return private.notification_prefs(v_member.notification_preferences,
      (select c.timezone from public.clients c where c.id = v_member.client_id))
    || jsonb_build_object('events', (
      select jsonb_object_agg(t.event, jsonb_build_object(
        'channels', to_jsonb(private.member_channels(v_member.notification_preferences, t.event, t.default_channels,
          v_member.phone)),
        'default_channels', to_jsonb(t.default_channels),
        'description', t.description))
      from private.notification_event_types t where t.audience <> 'legacy'
    ));
end
$$;
comment on function private.my_notification_preferences() is
  'The caller''s preferences with defaults, plus the effective channels of every event.';

-- Merges a validated patch into the caller's preferences.
create function private.update_my_notification_preferences(p_patch jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_member public.client_members := private.current_membership();
  v_patch jsonb := private.validate_notification_preferences(p_patch);
  v_merged jsonb;
  v_key text;
  v_val jsonb;
begin
  if v_member.user_id is null then
    perform private.raise_error(401, 'sign in to change notification preferences');
  end if;
  -- channels merge per event; a key (or an event) sent as null returns to its default.
  v_merged := v_member.notification_preferences - 'in_app' - 'min_priority';
  for v_key, v_val in select * from jsonb_each(v_patch) loop
    if jsonb_typeof(v_val) = 'null' then
      v_merged := v_merged - v_key;
    elsif v_key = 'channels' then
      v_merged := v_merged || jsonb_build_object('channels',
        jsonb_strip_nulls(coalesce(v_merged -> 'channels', '{}'::jsonb) || v_val));
    else
      v_merged := v_merged || jsonb_build_object(v_key, v_val);
    end if;
  end loop;
  update public.client_members m set notification_preferences = v_merged where m.id = v_member.id;
  return private.my_notification_preferences();
end
$$;
comment on function private.update_my_notification_preferences(jsonb) is
  'Merges a validated patch into the caller''s preferences (channels merge per event; null resets a key).';

-- GET notification preferences of the signed-in user.
create function public.get_notification_preferences() returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.my_notification_preferences()
$$;
comment on function public.get_notification_preferences() is
  'GET notification preferences of the signed-in user (channels per event, quiet hours, time zone, digest).';

-- PUT notification preferences of the signed-in user (only the keys given).
create function public.update_notification_preferences(
  channels jsonb default null,
  quiet_hours jsonb default null,
  timezone text default null,
  digest boolean default null,
  digest_hour integer default null,
  operational_alerts boolean default null,
  reset text[] default null
) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  -- Only the arguments given (SQL null = not sent); reset adds JSON nulls.
  select private.update_my_notification_preferences(
    coalesce((
      select jsonb_object_agg(e.key, e.value) from jsonb_each(jsonb_build_object(
        'channels', channels, 'quiet_hours', quiet_hours, 'timezone', timezone, 'digest', digest,
        'digest_hour', digest_hour, 'operational_alerts', operational_alerts
      )) e where jsonb_typeof(e.value) <> 'null'
    ), '{}'::jsonb) || coalesce((select jsonb_object_agg(r, null) from unnest(reset) r), '{}'::jsonb)
  )
$$;
comment on function public.update_notification_preferences(jsonb, jsonb, text, boolean, integer, boolean, text[]) is
  'PUT notification preferences of the signed-in user: only the keys given change; reset lists keys to '
  'return to their default (e.g. {quiet_hours}). Returns the preferences as GET does.';

-- Creating notifications (the one path) ----------------------------------------------------
-- The one writer of notifications: in-app rows, deliveries and their jobs.
create function private.create_notifications(
  p_client_id uuid,
  p_event text,
  p_user_ids uuid[],
  p_channels text[],
  p_priority text,
  p_title text,
  p_message text,
  p_link text,
  p_data jsonb,
  p_dedupe_key text,
  p_now timestamptz default now(),
  p_max_channels text[] default null
) returns table (notification_id uuid, user_id uuid, channels text[])
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
begin
  if p_priority is null or p_priority not in ('immediate', 'normal', 'low') then
    perform private.raise_error(400, format('priority must be immediate, normal or low (got %s)', p_priority),
      jsonb_build_object('key', 'priority'));
  end if;
  return query
  with r as (
    select m.user_id, m.client_id, x.prefs,
      array(
        select ch from unnest(private.member_channels(m.notification_preferences, p_event,
          coalesce(p_channels, t.default_channels, array['in_app']), m.phone)) ch
        where p_max_channels is null or ch = any (p_max_channels)
      ) as ch
    from public.client_members m
    join public.clients c on c.id = m.client_id
    left join private.notification_event_types t on t.event = p_event
    cross join lateral (select private.notification_prefs(m.notification_preferences, c.timezone) as prefs) x
    where m.client_id = p_client_id and m.status = 'active' and m.user_id = any (p_user_ids)
  ),
  ins as (
    insert into public.notifications as n (client_id, user_id, title, message, priority, link, data, event, channels, dedupe_key,
      created_at)
    select r.client_id, r.user_id, left(coalesce(nullif(trim(p_title), ''), 'Notification'), 200),
      left(coalesce(p_message, ''), 2000), p_priority, p_link, coalesce(p_data, '{}'::jsonb), p_event, r.ch, p_dedupe_key,
      p_now
    from r
    where cardinality(r.ch) > 0
    on conflict (user_id, dedupe_key) where dedupe_key is not null do nothing
    returning n.id, n.user_id, n.client_id, n.channels
  ),
  plan as (
    -- low + digest on: one digest item per notification (email and sms alike go in the digest).
    select i.id, i.user_id, i.client_id, d.channel,
      case when p_priority = 'low' and (r.prefs ->> 'digest')::boolean then 'digest' else 'pending' end as status,
      case
        when p_priority = 'immediate' then p_now
        when p_priority = 'low' and (r.prefs ->> 'digest')::boolean then p_now
        else coalesce(private.quiet_until(p_now, r.prefs ->> 'timezone', r.prefs -> 'quiet_hours'), p_now)
      end as run_at
    from ins i
    join r on r.user_id = i.user_id
    cross join lateral (
      select c as channel from unnest(i.channels) c
      where c in ('email', 'sms')
        and not (p_priority = 'low' and (r.prefs ->> 'digest')::boolean and c = 'sms' and 'email' = any (i.channels))
    ) d
  ),
  dels as (
    insert into private.notification_deliveries (client_id, user_id, notification_id, channel, priority, status, scheduled_for,
      created_at)
    select p.client_id, p.user_id, p.id, case when p.status = 'digest' then 'email' else p.channel end, p_priority,
      p.status::private.notification_delivery_status, p.run_at, p_now
    from plan p
    returning id, channel, status, scheduled_for, client_id
  ),
  jobs as (
    insert into private.jobs (kind, payload, run_at, idempotency_key, client_id, max_attempts, priority)
    select 'notify.' || d.channel, jsonb_build_object('delivery_id', d.id), d.scheduled_for, 'notify:' || d.id, d.client_id, 5,
      case p_priority when 'immediate' then 10 else 50 end::smallint
    from dels d
    where d.status = 'pending'
    returning 1
  )
  -- (Every data-modifying CTE runs to completion whether or not this select reads it.)
  select i.id, i.user_id, i.channels from ins i;
end
$$;
comment on function private.create_notifications(
  uuid, text, uuid[], text[], text, text, text, text, jsonb, text, timestamptz, text[]
) is
  'THE path of every notification: for each active member among p_user_ids, an in-app row (unless their '
  'preferences mute the event or the dedupe key already notified them) and one delivery + notify.* job '
  'per extra channel (immediate: now; normal: after quiet hours; low: into the digest), never beyond '
  'p_max_channels when given. Returns the rows made.';

-- notifications/send: one person, on the requested channels.
create function private.notify_user(
  p_user_id uuid,
  p_channels text[],
  p_priority text,
  p_title text,
  p_message text,
  p_link text default null,
  p_data jsonb default '{}'::jsonb,
  p_dedupe_key text default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_target public.client_members;
  v_caller public.client_members := private.current_membership();
  v_row record;
  v_key text := coalesce(p_dedupe_key, p_data ->> 'dedupe_key');
begin
  if p_user_id is null then
    perform private.raise_error(400, 'user_id is required', jsonb_build_object('key', 'user_id'));
  end if;
  if p_channels is null or cardinality(p_channels) = 0 or not p_channels <@ array['in_app', 'email', 'sms'] then
    perform private.raise_error(400, 'channels must be a non-empty list of email, sms, in_app',
      jsonb_build_object('key', 'channels'));
  end if;
  if p_title is null or length(trim(p_title)) = 0 or length(p_title) > 200 then
    perform private.raise_error(400, 'title is required (at most 200 characters)', jsonb_build_object('key', 'title'));
  end if;
  if p_message is null or length(p_message) > 2000 then
    perform private.raise_error(400, 'message is required (at most 2000 characters)', jsonb_build_object('key', 'message'));
  end if;
  if p_data is not null and jsonb_typeof(p_data) <> 'object' then
    perform private.raise_error(400, 'data must be an object', jsonb_build_object('key', 'data'));
  end if;
  select m.* into v_target from public.client_members m where m.user_id = p_user_id and m.status = 'active';
  -- Internal callers (service role) may notify anyone; staff only their own client's members,
  -- and only admins, managers and user managers may notify someone else.
  -- Internal: the service role, or a direct database connection carrying no JWT at all.
  if coalesce(auth.role(), 'service_role') <> 'service_role' then
    if v_caller.user_id is null then
      perform private.raise_error(401, 'sign in to send notifications');
    end if;
    if v_target.user_id is null or v_target.client_id <> v_caller.client_id then
      perform private.raise_error(404, 'no active user with this id in your account', jsonb_build_object('user_id', p_user_id));
    end if;
    if p_user_id <> v_caller.user_id and not (v_caller.role in ('admin', 'manager') or v_caller.can_manage_users) then
      perform private.raise_error(403, 'only admins and managers may notify other users');
    end if;
  elsif v_target.user_id is null then
    perform private.raise_error(404, 'no active user with this id', jsonb_build_object('user_id', p_user_id));
  end if;

  select * into v_row from private.create_notifications(v_target.client_id, 'direct', array[p_user_id], p_channels,
    p_priority, p_title, p_message, p_link, coalesce(p_data, '{}'::jsonb), v_key) limit 1;
  if v_row.notification_id is null then
    return jsonb_build_object('user_id', p_user_id, 'notification_id', (
      select n.id from public.notifications n where n.user_id = p_user_id and n.dedupe_key = v_key
    ), 'duplicate', v_key is not null, 'channels', '[]'::jsonb, 'deliveries', '[]'::jsonb);
  end if;
  return jsonb_build_object(
    'user_id', p_user_id, 'notification_id', v_row.notification_id, 'duplicate', false,
    'channels', to_jsonb(v_row.channels),
    'deliveries', coalesce((
      select jsonb_agg(jsonb_build_object('channel', d.channel, 'status', d.status, 'scheduled_for', d.scheduled_for)
        order by d.channel)
      from private.notification_deliveries d where d.notification_id = v_row.notification_id
    ), '[]'::jsonb)
  );
end
$$;
comment on function private.notify_user(uuid, text[], text, text, text, text, jsonb, text) is
  'notifications/send: one person, on the requested channels as their preferences allow (in_app always), '
  'at the priority''s time. Service role: anyone; staff: members of their own client (others: admins/managers).';

-- POST notifications/send.
create function public.notify_user(
  user_id uuid,
  channels text[],
  priority text,
  title text,
  message text,
  link text default null,
  data jsonb default '{}'::jsonb
) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.notify_user(user_id, channels, priority, title, message, link, data, null)
$$;
comment on function public.notify_user(uuid, text[], text, text, text, text, jsonb) is
  'POST notifications/send: see private.notify_user. data.dedupe_key makes a repeat a no-op.';

-- Picking recipients for an event ---------------------------------------------------------
-- Event-level notification: recipients by role and event, once per person.
create function private.notify_staff(
  p_client_id uuid,
  p_event text,
  p_title text,
  p_message text,
  p_priority text,
  p_link text,
  p_data jsonb,
  p_dataset_id uuid,
  p_lead_id uuid default null,
  p_dedupe_key text default null
) returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_type private.notification_event_types;
  v_lead uuid := p_lead_id;
  v_assignee uuid;
  v_owner uuid;
  v_key text;
  v_users uuid[];
  v_rows integer;
begin
  select t.* into v_type from private.notification_event_types t where t.event = p_event;
  if v_type.event is null then
    raise exception 'unknown notification event %', p_event using errcode = '22023';
  end if;
  if v_lead is null and p_data ->> 'lead_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    v_lead := (p_data ->> 'lead_id')::uuid;
  end if;
  if v_lead is not null then
    select l.assigned_to into v_assignee from public.leads l where l.id = v_lead and l.client_id = p_client_id;
  end if;
  if p_dataset_id is not null then
    select d.created_by into v_owner from public.datasets d where d.id = p_dataset_id and d.client_id = p_client_id;
  end if;
  v_key := coalesce(p_dedupe_key, p_data ->> 'dedupe_key', case p_event
    when 'hot_lead' then 'hot_lead:' || v_lead
    when 'booking' then 'booking:' || coalesce(p_data ->> 'event', '') || ':' || (p_data ->> 'booking_uid')
    when 'sophie_critical' then 'sophie_critical:' || (p_data ->> 'insight_id')
    when 'job_failed' then 'job_failed:' || (p_data ->> 'job_id')
    when 'campaign_completed' then 'campaign_completed:' || p_dataset_id
    when 'needs_human' then 'needs_human:' || (p_data ->> 'conversation_id') || ':' || coalesce(p_data ->> 'reason', '')
      || ':' || to_char(now() at time zone 'UTC', 'YYYY-MM-DD')
    else p_event || ':' || (p_data ->> 'message_id')
  end);

  -- Recipients: active members of the audience who can see the subject; read_only members
  -- only when they opted in to operational alerts.
  with m as (
    select m.*, (m.user_id = v_assignee) as is_assignee,
      coalesce((m.notification_preferences ->> 'operational_alerts')::boolean, false) as opted_in
    from public.client_members m
    where m.client_id = p_client_id and m.status = 'active'
      and (
        p_dataset_id is null or m.role = 'admin' or m.can_view_all_leads
        or p_dataset_id = any (m.allowed_dataset_ids)
        or (m.allowed_dataset_ids is null and m.user_id = v_assignee)
      )
      and (m.role <> 'read_only' or coalesce((m.notification_preferences ->> 'operational_alerts')::boolean, false))
  ),
  flags as (
    select exists (select from m where m.is_assignee) as has_assignee,
      exists (select from m where m.role = 'manager') as has_manager,
      exists (select from m where m.user_id = v_owner) as has_owner
  )
  select array_agg(m.user_id) into v_users
  from m cross join flags f
  where case v_type.audience
    when 'admins' then m.role = 'admin'
    when 'managers' then m.role in ('admin', 'manager')
    when 'team' then m.role in ('admin', 'manager') or m.is_assignee or (m.role = 'read_only' and m.opted_in)
    when 'assignee_or_managers' then case
      when f.has_assignee then m.is_assignee
      when f.has_manager then m.role = 'manager'
      else m.role = 'admin' end
    when 'owner' then case when f.has_owner then m.user_id = v_owner else m.role = 'admin' end
    when 'legacy' then p_dataset_id is not null or m.role in ('admin', 'manager')
    else false
  end;

  if v_users is null then
    return 0;
  end if;
  -- A notification job that failed for good is reported in-app only: an email about a dead
  -- email job could fail the same way and report itself forever.
  select count(*) into v_rows from private.create_notifications(p_client_id, p_event, v_users, null, p_priority,
    p_title, p_message, p_link, p_data, v_key, now(),
    case when p_event = 'job_failed' and p_data ->> 'kind' like 'notify.%' then array['in_app'] end);
  return v_rows;
end
$$;
comment on function private.notify_staff(uuid, text, text, text, text, text, jsonb, uuid, uuid, text) is
  'Event-level notification: picks the recipients of p_event (private.notification_event_types.audience) '
  'among active members who can see the dataset/lead, each on the channels of their preferences, once per '
  'person for the same event and subject (dedupe key: per lead for hot_lead, per message, booking, insight, '
  'job or dataset otherwise). Returns how many people were notified now.';

-- The event an older notify_staff call is about, read off its data.
create function private.legacy_notify_event(p_data jsonb) returns text
language sql
immutable
set search_path = ''
as $$
  select case
    when p_data ? 'job_id' then 'job_failed'
    when p_data ->> 'kind' = 'reply_manual' then 'new_reply'
    when p_data ->> 'kind' in ('hot_lead', 'opted_out', 'opted_in', 'unknown_sender', 'sophie_critical',
      'campaign_completed') then p_data ->> 'kind'
    when p_data ->> 'event' like 'booking%' then 'booking'
    when p_data ? 'reason' and p_data ? 'conversation_id' then 'needs_human'
    when p_data ? 'conversation_id' and p_data ? 'message_id' then 'draft_ready'
    else 'general'
  end
$$;
comment on function private.legacy_notify_event(jsonb) is
  'The event a call of the older notify_staff(client, title, message, priority, link, data, dataset) is about, '
  'read off its data.';

-- The older signature, kept for every caller written before events existed: same recipients
-- and channels as the event it maps to.
create function private.notify_staff(
  p_client_id uuid,
  p_title text,
  p_message text,
  p_priority text default 'normal',
  p_link text default null,
  p_data jsonb default '{}'::jsonb,
  p_dataset_id uuid default null
) returns integer
language plpgsql
security definer
set search_path = ''
as $$
begin
  return private.notify_staff(p_client_id, private.legacy_notify_event(coalesce(p_data, '{}'::jsonb)), p_title,
    p_message, p_priority, p_link, coalesce(p_data, '{}'::jsonb), p_dataset_id);
end
$$;
comment on function private.notify_staff(uuid, text, text, text, text, jsonb, uuid) is
  'Older entry point: maps the call to its event (private.legacy_notify_event) and calls the event-level '
  'private.notify_staff(client, event, title, message, priority, link, data, dataset, lead, dedupe_key).';

-- Inbox RPCs ------------------------------------------------------------------------------
-- Marks the caller's notifications read.
create function private.mark_notifications_read(p_ids uuid[]) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_client uuid := private.current_client_id();
  v_marked integer;
begin
  if v_client is null then
    perform private.raise_error(401, 'sign in to read notifications');
  end if;
  update public.notifications n set read_at = now()
  where n.user_id = v_uid and n.client_id = v_client and n.read_at is null
    and (p_ids is null or n.id = any (p_ids));
  get diagnostics v_marked = row_count;
  return jsonb_build_object('marked', v_marked, 'unread', (
    select count(*) from public.notifications n where n.user_id = v_uid and n.client_id = v_client and n.read_at is null
  ));
end
$$;
comment on function private.mark_notifications_read(uuid[]) is
  'Marks the caller''s notifications read (the given ids, or all when null); returns {marked, unread}.';

-- Marks notifications read (given ids, or all).
create function public.mark_notifications_read(notification_ids uuid[] default null) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.mark_notifications_read(notification_ids)
$$;
comment on function public.mark_notifications_read(uuid[]) is
  'Marks notifications read: the given notification_ids, or every unread one when omitted. Returns {marked, unread}.';

-- The signed-in user's unread count.
create function public.unread_notification_count() returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  -- RLS on notifications keeps this to the caller's own rows.
  select jsonb_build_object('unread', count(*)) from public.notifications n
  where n.user_id = (select auth.uid()) and n.read_at is null
$$;
comment on function public.unread_notification_count() is 'The signed-in user''s unread notifications: {unread}.';

-- Delivery: what the notify.* jobs call -----------------------------------------------------
-- notify.* step 1: send, defer, reconcile or skip, decided now.
create function private.notify_delivery_begin(p_delivery_id uuid, p_now timestamptz default now()) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_d private.notification_deliveries;
  v_m public.client_members;
  v_c public.clients;
  v_n public.notifications;
  v_prefs jsonb;
  v_until timestamptz;
  v_items jsonb;
  v_to text;
begin
  select d.* into v_d from private.notification_deliveries d where d.id = p_delivery_id for update;
  if not found then
    return jsonb_build_object('action', 'skip', 'reason', 'gone');
  end if;
  if v_d.status in ('sent', 'failed', 'skipped', 'digested', 'digest') then
    return jsonb_build_object('action', 'skip', 'reason', v_d.status::text);
  end if;
  select m.* into v_m from public.client_members m where m.user_id = v_d.user_id and m.client_id = v_d.client_id;
  select c.* into v_c from public.clients c where c.id = v_d.client_id;
  v_prefs := private.notification_prefs(v_m.notification_preferences, v_c.timezone);

  if v_d.status = 'sending' and v_d.channel = 'sms' then
    -- Handed to Twilio, result never recorded: look it up before sending again.
    return jsonb_build_object('action', 'reconcile', 'channel', 'sms', 'to', v_d.to_address,
      'from', v_c.twilio_phone_number, 'messaging_service_sid', v_c.twilio_messaging_service_sid,
      'attempted_at', v_d.attempted_at, 'body', (
        select left(n.title || ': ' || n.message, 320) from public.notifications n where n.id = v_d.notification_id));
  end if;
  if v_m.user_id is null or v_m.status <> 'active' then
    update private.notification_deliveries set status = 'skipped', error = 'member not active' where id = v_d.id;
    return jsonb_build_object('action', 'skip', 'reason', 'member_inactive');
  end if;
  -- Normal priority waits out the quiet hours as they are now (the person may have changed them).
  if v_d.priority = 'normal' and v_d.status <> 'sending' then
    v_until := private.quiet_until(p_now, v_prefs ->> 'timezone', v_prefs -> 'quiet_hours');
    if v_until is not null then
      update private.notification_deliveries set scheduled_for = v_until where id = v_d.id;
      return jsonb_build_object('action', 'defer', 'until', v_until, 'reason', 'quiet_hours');
    end if;
  end if;

  if v_d.channel = 'sms' then
    v_to := v_m.phone;
    if v_to is null then
      update private.notification_deliveries set status = 'skipped', error = 'no phone number' where id = v_d.id;
      return jsonb_build_object('action', 'skip', 'reason', 'no_phone');
    end if;
    -- Someone who texted STOP to this number is never texted, staff included.
    if private.number_is_suppressed(v_d.client_id, v_to) then
      update private.notification_deliveries set status = 'skipped', error = 'number opted out' where id = v_d.id;
      return jsonb_build_object('action', 'skip', 'reason', 'opted_out');
    end if;
    select n.* into v_n from public.notifications n where n.id = v_d.notification_id;
    update private.notification_deliveries
    set status = 'sending', attempts = attempts + 1, attempted_at = p_now, to_address = v_to
    where id = v_d.id;
    return jsonb_build_object('action', 'send', 'channel', 'sms', 'delivery_id', v_d.id, 'to', v_to,
      'from', v_c.twilio_phone_number, 'messaging_service_sid', v_c.twilio_messaging_service_sid,
      'body', left(v_n.title || ': ' || v_n.message, 320), 'link', v_n.link);
  end if;

  -- email (one notification, or a digest of the unread low-priority ones)
  v_to := coalesce(v_m.email, (select u.email from auth.users u where u.id = v_m.user_id));
  if v_d.kind = 'digest' then
    select jsonb_agg(jsonb_build_object('title', n.title, 'message', n.message, 'link', n.link, 'created_at', n.created_at)
      order by n.created_at) into v_items
    from private.notification_deliveries i
    join public.notifications n on n.id = i.notification_id
    where i.digest_id = v_d.id and n.read_at is null;
    if v_items is null then
      update private.notification_deliveries set status = 'skipped', error = 'nothing unread' where id = v_d.id;
      return jsonb_build_object('action', 'skip', 'reason', 'nothing_unread');
    end if;
  else
    select n.* into v_n from public.notifications n where n.id = v_d.notification_id;
  end if;
  update private.notification_deliveries
  set status = 'sending', attempts = attempts + 1, attempted_at = coalesce(attempted_at, p_now), to_address = v_to
  where id = v_d.id;
  return jsonb_build_object('action', 'send', 'channel', 'email', 'delivery_id', v_d.id, 'kind', v_d.kind,
    'to', v_to, 'first_name', v_m.first_name, 'company_name', v_c.name,
    'subject', case when v_d.kind = 'digest'
      then format('%s: %s update(s) for you', v_c.name, jsonb_array_length(v_items)) else v_n.title end,
    'message', v_n.message, 'link', v_n.link, 'items', coalesce(v_items, '[]'::jsonb),
    -- Resend keeps an idempotency key 24 h: a retry after a crash cannot send twice.
    'idempotency_key', 'notify-' || v_d.id);
end
$$;
comment on function private.notify_delivery_begin(uuid, timestamptz) is
  'notify.email / notify.sms step 1: send (address read now, attempt recorded), defer (quiet hours), '
  'reconcile (an SMS attempt whose result was lost) or skip (inactive member, no phone, opted out, done).';

-- notify.* step 2: records the provider's answer.
create function private.notify_delivery_result(
  p_delivery_id uuid, p_status text, p_provider_id text default null, p_error text default null
) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_status not in ('sent', 'failed', 'pending') then
    raise exception 'status must be sent, failed or pending (got %)', p_status using errcode = '22023';
  end if;
  update private.notification_deliveries d
  set status = p_status::private.notification_delivery_status,
      provider_id = coalesce(p_provider_id, d.provider_id),
      error = left(p_error, 500),
      sent_at = case when p_status = 'sent' then now() else d.sent_at end
  where d.id = p_delivery_id and d.status = 'sending';
end
$$;
comment on function private.notify_delivery_result(uuid, text, text, text) is
  'notify.* step 2: records what the provider said (sent with its id, failed with the error, or pending: '
  'not taken, retry).';

-- The daily digest ----------------------------------------------------------------------
-- pg_cron: one digest email per person and day, at their digest hour.
create function private.queue_notification_digests(p_now timestamptz default now()) returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_made integer;
begin
  perform pg_advisory_xact_lock(hashtext('dbr.notification_digests'));
  -- People with waiting items whose local time has reached their digest hour, and no digest
  -- yet for their local day: one digest delivery each, the waiting items folded into it.
  with waiting as (
    select distinct d.user_id, d.client_id from private.notification_deliveries d
    where d.status = 'digest' and d.created_at <= p_now
  ),
  due as (
    select w.user_id, w.client_id, (p_now at time zone (x.prefs ->> 'timezone'))::date as local_day
    from waiting w
    join public.client_members m on m.user_id = w.user_id and m.client_id = w.client_id and m.status = 'active'
    join public.clients c on c.id = w.client_id
    cross join lateral (select private.notification_prefs(m.notification_preferences, c.timezone) as prefs) x
    where extract(hour from p_now at time zone (x.prefs ->> 'timezone')) >= (x.prefs ->> 'digest_hour')::integer
  ),
  made as (
    insert into private.notification_deliveries (client_id, user_id, channel, kind, priority, status, scheduled_for,
      digest_date, created_at)
    select due.client_id, due.user_id, 'email', 'digest', 'low', 'pending', p_now, due.local_day, p_now from due
    on conflict (user_id, digest_date) where kind = 'digest' do nothing
    returning id, user_id, client_id
  ),
  folded as (
    update private.notification_deliveries d set status = 'digested', digest_id = made.id
    from made
    where d.user_id = made.user_id and d.status = 'digest' and d.created_at <= p_now
    returning 1
  ),
  jobs as (
    insert into private.jobs (kind, payload, run_at, idempotency_key, client_id, max_attempts, priority)
    select 'notify.email', jsonb_build_object('delivery_id', made.id), p_now, 'notify:' || made.id, made.client_id, 5,
      90::smallint
    from made
    on conflict (idempotency_key) do nothing
    returning 1
  )
  select count(*) into v_made from made;
  return v_made;
end
$$;
comment on function private.queue_notification_digests(timestamptz) is
  'pg_cron, every 15 minutes: one digest email per person whose local digest hour has come and who has '
  'low-priority notifications waiting (at most one digest per local day; later items wait for the next).';

-- grants ----------------------------------------------------------------------------------
revoke all on function private.notification_prefs(jsonb, text), private.quiet_until(timestamptz, text, jsonb),
  private.member_channels(jsonb, text, text[], text), private.validate_notification_preferences(jsonb),
  private.my_notification_preferences(), private.update_my_notification_preferences(jsonb),
  private.create_notifications(uuid, text, uuid[], text[], text, text, text, text, jsonb, text, timestamptz, text[]),
  private.notify_user(uuid, text[], text, text, text, text, jsonb, text),
  private.notify_staff(uuid, text, text, text, text, text, jsonb, uuid, uuid, text),
  private.notify_staff(uuid, text, text, text, text, jsonb, uuid), private.legacy_notify_event(jsonb),
  private.mark_notifications_read(uuid[]),
  private.notify_delivery_begin(uuid, timestamptz), private.notify_delivery_result(uuid, text, text, text),
  private.queue_notification_digests(timestamptz),
  public.get_notification_preferences(),
  public.update_notification_preferences(jsonb, jsonb, text, boolean, integer, boolean, text[]),
  public.notify_user(uuid, text[], text, text, text, text, jsonb),
  public.mark_notifications_read(uuid[]), public.unread_notification_count()
from public, anon;
revoke all on function
  private.create_notifications(uuid, text, uuid[], text[], text, text, text, text, jsonb, text, timestamptz, text[]),
  private.notify_staff(uuid, text, text, text, text, text, jsonb, uuid, uuid, text),
  private.notify_staff(uuid, text, text, text, text, jsonb, uuid), private.legacy_notify_event(jsonb),
  private.notify_delivery_begin(uuid, timestamptz), private.notify_delivery_result(uuid, text, text, text),
  private.queue_notification_digests(timestamptz)
from authenticated;
-- Staff reach the bodies through the public wrappers (security invoker), so they need execute.
grant execute on function private.my_notification_preferences(), private.update_my_notification_preferences(jsonb),
  private.validate_notification_preferences(jsonb), private.notification_prefs(jsonb, text),
  private.member_channels(jsonb, text, text[], text),
  private.notify_user(uuid, text[], text, text, text, text, jsonb, text), private.mark_notifications_read(uuid[]),
  public.get_notification_preferences(),
  public.update_notification_preferences(jsonb, jsonb, text, boolean, integer, boolean, text[]),
  public.notify_user(uuid, text[], text, text, text, text, jsonb),
  public.mark_notifications_read(uuid[]), public.unread_notification_count()
to authenticated;
grant execute on function
  private.notify_user(uuid, text[], text, text, text, text, jsonb, text),
  private.notify_staff(uuid, text, text, text, text, text, jsonb, uuid, uuid, text),
  private.notify_staff(uuid, text, text, text, text, jsonb, uuid),
  private.notify_delivery_begin(uuid, timestamptz), private.notify_delivery_result(uuid, text, text, text),
  private.queue_notification_digests(timestamptz),
  public.notify_user(uuid, text[], text, text, text, text, jsonb)
to service_role;

select private.schedule_cron('notification-digests', '*/15 * * * *', 'select private.queue_notification_digests()');
