-- M1/M2/M3 sequencing, run by pg_cron every minute. One tick is a handful of set-based
-- statements whatever the number of leads: per active campaign it finds the timezones its
-- waiting leads live in (an index skip scan), keeps those inside the sending window now, and
-- probes each (timezone, step) for the first due leads in due order, never more than the
-- campaign may still send this minute. Window functions then cap each campaign at its
-- per-minute rate and each client at its rolling-hour budget. Messages and sms.send jobs are
-- written in one statement; a unique index makes a second run in the same minute a no-op.

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
