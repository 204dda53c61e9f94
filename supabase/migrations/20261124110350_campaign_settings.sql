-- Campaign settings validation (the seed's settings body) and the honest completion
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
  'Checks the seed''s campaign settings body (400 naming the field) and flattens it to campaigns columns.';

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
