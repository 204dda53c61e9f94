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

create function public.pause_campaign(dataset_id uuid) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.set_campaign_paused(dataset_id, true)
$$;
comment on function public.pause_campaign(uuid) is
  'POST /api/campaigns/pause (admin or manager): nothing more of the sequence is sent, queued messages included.';

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
