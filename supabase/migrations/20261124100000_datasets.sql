-- Datasets: an uploaded lead list and the campaign run on it.
--   * public.datasets with composite keys (id, client_id), so rows of other domains cannot
--     point into another tenant; RLS by visible dataset; column grants decide what a user may
--     write, triggers what is valid (campaign status transitions, ordered dates);
--   * the dataset RPCs in the API contract's shapes, thin security-invoker wrappers whose
--     bodies live in private;
--   * the lead counters (total/active/hot/converted) are kept by triggers on leads, so they
--     are defined with the leads (20261124110000_leads.sql).
-- The ai_mode enum (30 ai) is created here: datasets.ai_mode is its first use.

-- types -----------------------------------------------------------------------------------
create type public.campaign_status as enum ('draft', 'active', 'paused', 'completed');
comment on type public.campaign_status is
  'A dataset''s campaign: draft, active, paused or completed (transitions checked by a trigger).';
create type public.ai_mode as enum ('auto', 'suggest', 'off');
comment on type public.ai_mode is 'How the AI answers a conversation: auto (sends), suggest (drafts for staff), off.';

-- datasets --------------------------------------------------------------------------------
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

-- row level security and privileges -------------------------------------------------------
alter table public.datasets enable row level security;

-- A row of a dataset is visible to active members of its client who may see that dataset;
-- a member that sees only its assigned leads (see private.sees_only_assigned_leads) sees
-- only those leads and their threads and messages.
create policy "members read visible datasets" on public.datasets
  for select to authenticated
  using (
    client_id = (select private.current_client_id())
    and ((select private.sees_all_datasets()) or id = any ((select private.visible_dataset_ids())::uuid[]))
  );
-- Admins and managers create datasets in their own client.
create policy "admins and managers create datasets" on public.datasets
  for insert to authenticated
  with check (client_id = (select private.current_client_id()) and (select private.can_manage_datasets()));
-- Admins and managers change the datasets they may see; the row stays in the client.
create policy "admins and managers update visible datasets" on public.datasets
  for update to authenticated
  using (
    client_id = (select private.current_client_id()) and (select private.can_manage_datasets())
    and ((select private.sees_all_datasets()) or id = any ((select private.visible_dataset_ids())::uuid[]))
  )
  with check (client_id = (select private.current_client_id()));
-- Only admins delete a dataset (it cascades to its leads, threads and messages).
create policy "admins delete datasets" on public.datasets
  for delete to authenticated
  using (client_id = (select private.current_client_id()) and (select private.is_admin()));


-- Table privileges: what a user may touch at all; RLS then decides which rows.
revoke all on public.datasets from anon;
revoke all on public.datasets from authenticated;
grant select, delete on public.datasets to authenticated;
grant insert (name, description, source, campaign_start_date, campaign_end_date, ai_mode)
  on public.datasets to authenticated;
grant update (name, description, source, campaign_status, campaign_start_date, campaign_end_date, ai_mode)
  on public.datasets to authenticated;

-- dataset rules ---------------------------------------------------------------------------
-- Dataset rules enforced whatever path writes a dataset (PostgREST PATCH, RPC, service):
-- campaign status moves only along the allowed transitions, and the campaign dates are ordered.

-- Campaign state machine: draft -> active; active -> paused | completed; paused -> active |
-- completed; completed is final.
create function private.campaign_transition_allowed(
  p_from public.campaign_status, p_to public.campaign_status
) returns boolean
language sql
immutable
set search_path = ''
as $$
  select p_from = p_to
    or (p_from, p_to) in (
      ('draft'::public.campaign_status, 'active'::public.campaign_status),
      ('active', 'paused'), ('active', 'completed'),
      ('paused', 'active'), ('paused', 'completed')
    )
$$;
comment on function private.campaign_transition_allowed(public.campaign_status, public.campaign_status) is
  'Campaign state machine: draft -> active; active -> paused | completed; paused -> active | completed; '
  'completed is final. Staying in the same status is always allowed.';

-- Trigger: refuses invalid campaign status transitions and an end date before the start date (400).
create function private.validate_dataset_change() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'UPDATE' and not private.campaign_transition_allowed(old.campaign_status, new.campaign_status) then
    perform private.raise_error(400, format('a campaign cannot go from %s to %s', old.campaign_status, new.campaign_status),
      jsonb_build_object('hint', 'Allowed: draft -> active, active -> paused or completed, paused -> active or completed; '
        'completed is final.'));
  end if;
  if new.campaign_end_date < new.campaign_start_date then
    perform private.raise_error(400, format('campaign_end_date (%s) is before campaign_start_date (%s)',
      new.campaign_end_date, new.campaign_start_date));
  end if;
  return new;
end
$$;
comment on function private.validate_dataset_change() is
  'Trigger: refuses invalid campaign status transitions and an end date before the start date (400).';

create trigger datasets_validate
before insert or update of campaign_status, campaign_start_date, campaign_end_date on public.datasets
for each row execute function private.validate_dataset_change();

revoke all on function private.campaign_transition_allowed(public.campaign_status, public.campaign_status)
from public, anon;
grant execute on function private.campaign_transition_allowed(public.campaign_status, public.campaign_status)
to authenticated, service_role;

-- dataset RPCs ----------------------------------------------------------------------------
-- Dataset RPCs in the API contract's shapes (GET/POST/PUT/DELETE /api/datasets...). They are thin,
-- security-invoker wrappers over public.datasets: RLS and the column grants decide who may
-- do what, the triggers decide what is valid. The same table is usable through PostgREST
-- directly (GET/PATCH/DELETE /rest/v1/datasets) with the same rules.

-- The API contract's dataset detail shape (GET /api/datasets/[id]).
create function private.dataset_json(d public.datasets) returns jsonb
language sql
immutable
set search_path = ''
as $$
  select jsonb_build_object(
    'id', d.id, 'name', d.name, 'description', d.description, 'source', d.source,
    'uploaded_file_url', d.uploaded_file_url, 'total_leads', d.total_leads,
    'active_leads', d.active_leads, 'hot_leads', d.hot_leads, 'converted_leads', d.converted_leads,
    'campaign_status', d.campaign_status, 'campaign_start_date', d.campaign_start_date,
    'campaign_end_date', d.campaign_end_date, 'created_at', d.created_at, 'updated_at', d.updated_at
  )
$$;
comment on function private.dataset_json(public.datasets) is 'The API contract''s dataset detail shape (GET /api/datasets/[id]).';

-- The trimmed dataset name; 400 when blank or over 200 characters.
create function private.valid_dataset_name(p_name text) returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  if p_name is null or btrim(p_name) = '' then
    perform private.raise_error(400, 'name is required');
  end if;
  if length(btrim(p_name)) > 200 then
    perform private.raise_error(400, 'name is longer than 200 characters');
  end if;
  return btrim(p_name);
end
$$;
comment on function private.valid_dataset_name(text) is 'The trimmed dataset name; 400 when blank or over 200 characters.';

-- GET /api/datasets ------------------------------------------------------------------------
create function private.list_datasets(
  p_status public.campaign_status default null,
  p_sort text default 'created',
  p_order text default 'desc'
) returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_sort text := case coalesce(p_sort, 'created')
    when 'created' then 'd.created_at'
    when 'name' then 'lower(d.name)'
    when 'leads_count' then 'd.total_leads'
  end;
  v_order text := lower(coalesce(p_order, 'desc'));
  v_rows jsonb;
begin
  perform private.require_member();
  if v_sort is null then
    perform private.raise_error(400, format('sort must be one of created, name, leads_count (got %s)', p_sort));
  end if;
  if v_order not in ('asc', 'desc') then
    perform private.raise_error(400, format('order must be asc or desc (got %s)', p_order));
  end if;
  execute format(
    $q$
    select coalesce(jsonb_agg(jsonb_build_object(
        'id', d.id, 'name', d.name, 'description', d.description, 'total_leads', d.total_leads,
        'hot_leads', d.hot_leads, 'converted_leads', d.converted_leads,
        'campaign_status', d.campaign_status, 'created_at', d.created_at, 'updated_at', d.updated_at
      ) order by %1$s %2$s, d.id %2$s), '[]'::jsonb)
    from public.datasets d
    where $1 is null or d.campaign_status = $1
    $q$,
    v_sort, v_order
  ) into v_rows using p_status;
  return jsonb_build_object('datasets', v_rows);
end
$$;
comment on function private.list_datasets(public.campaign_status, text, text) is
  'Body of public.list_datasets (security invoker).';

-- GET /api/datasets: the caller's visible datasets, optionally by campaign status, sorted by
-- created | name | leads_count, asc | desc.
create function public.list_datasets(
  status public.campaign_status default null,
  sort text default 'created',
  "order" text default 'desc'
) returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.list_datasets(status, sort, "order")
$$;
comment on function public.list_datasets(public.campaign_status, text, text) is
  'GET /api/datasets: the caller''s visible datasets, optionally by campaign status, '
  'sorted by created | name | leads_count, asc | desc. Returns {"datasets": [...]}.';

-- GET /api/datasets/[id] -------------------------------------------------------------------
create function private.get_dataset(p_id uuid) returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_dataset public.datasets;
begin
  select d.* into v_dataset from public.datasets d where d.id = p_id;
  if not found then
    perform private.raise_error(404, format('dataset %s not found', p_id));
  end if;
  return jsonb_build_object('dataset', private.dataset_json(v_dataset));
end
$$;
comment on function private.get_dataset(uuid) is 'Body of public.get_dataset (security invoker).';

-- GET /api/datasets/[id]: {"dataset": {...}}; 404 when the dataset does not exist or is not
-- visible.
create function public.get_dataset(id uuid) returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.get_dataset(id)
$$;
comment on function public.get_dataset(uuid) is
  'GET /api/datasets/[id]: {"dataset": {...}}; 404 when the dataset does not exist or is not visible.';

-- POST /api/datasets -----------------------------------------------------------------------
create function private.create_dataset(
  p_name text,
  p_description text default null,
  p_campaign_start_date timestamptz default null
) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_dataset public.datasets;
begin
  perform private.require_member();
  if not private.can_manage_datasets() then
    perform private.raise_error(403, 'only admins and managers can create datasets');
  end if;
  if not private.sees_all_datasets() then
    -- The new dataset would be invisible to its creator (the restriction lists existing ids).
    perform private.raise_error(403, 'members restricted to specific datasets cannot create datasets');
  end if;
  -- client_id, created_by and campaign_status come from column defaults (the caller, draft).
  insert into public.datasets (name, description, campaign_start_date)
  values (private.valid_dataset_name(p_name), nullif(btrim(p_description), ''), p_campaign_start_date)
  returning * into v_dataset;
  return jsonb_build_object('dataset', jsonb_build_object(
    'id', v_dataset.id, 'name', v_dataset.name, 'campaign_status', v_dataset.campaign_status,
    'created_at', v_dataset.created_at
  ));
end
$$;
comment on function private.create_dataset(text, text, timestamptz) is 'Body of public.create_dataset (security invoker).';

-- POST /api/datasets: creates a draft dataset for the caller's client (admins and managers).
create function public.create_dataset(
  name text,
  description text default null,
  campaign_start_date timestamptz default null
) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.create_dataset(name, description, campaign_start_date)
$$;
comment on function public.create_dataset(text, text, timestamptz) is
  'POST /api/datasets: creates a draft dataset for the caller''s client (admins and managers).';

-- PUT /api/datasets/[id] -------------------------------------------------------------------
create function private.update_dataset(p_id uuid, p_patch jsonb) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_dataset public.datasets;
  v_status public.campaign_status;
begin
  perform private.reject_unknown_keys(
    p_patch, array['name', 'description', 'campaign_status', 'campaign_start_date', 'campaign_end_date']
  );
  select d.* into v_dataset from public.datasets d where d.id = p_id;
  if not found then
    perform private.raise_error(404, format('dataset %s not found', p_id));
  end if;
  if not private.can_manage_datasets() then
    perform private.raise_error(403, 'only admins and managers can update datasets');
  end if;
  if p_patch ? 'campaign_status' then
    if jsonb_typeof(p_patch -> 'campaign_status') <> 'string'
       or not (p_patch ->> 'campaign_status') = any (enum_range(null::public.campaign_status)::text []) then
      perform private.raise_error(
        400, format('campaign_status must be one of draft, active, paused, completed (got %s)', p_patch -> 'campaign_status'));
    end if;
    v_status := (p_patch ->> 'campaign_status')::public.campaign_status;
  end if;

  update public.datasets d set
    name = case when p_patch ? 'name' then private.valid_dataset_name(private.text_field(p_patch, 'name')) else d.name end,
    description = case when p_patch ? 'description' then private.text_field(p_patch, 'description') else d.description end,
    campaign_status = coalesce(v_status, d.campaign_status),
    campaign_start_date = case
      when p_patch ? 'campaign_start_date' then private.parse_timestamptz_field(p_patch, 'campaign_start_date')
      else d.campaign_start_date
    end,
    campaign_end_date = case
      when p_patch ? 'campaign_end_date' then private.parse_timestamptz_field(p_patch, 'campaign_end_date')
      else d.campaign_end_date
    end
  where d.id = p_id
  returning d.* into v_dataset;
  return jsonb_build_object('dataset', private.dataset_json(v_dataset));
end
$$;
comment on function private.update_dataset(uuid, jsonb) is 'Body of public.update_dataset (security invoker).';

-- PUT /api/datasets/[id]: patches name, description, campaign_status, campaign_start_date,
-- campaign_end_date (other keys: 400).
create function public.update_dataset(id uuid, patch jsonb) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.update_dataset(id, patch)
$$;
comment on function public.update_dataset(uuid, jsonb) is
  'PUT /api/datasets/[id]: patches name, description, campaign_status, campaign_start_date, '
  'campaign_end_date (other keys: 400). Status transitions and date order are checked by trigger.';

-- DELETE /api/datasets/[id] ----------------------------------------------------------------
create function private.delete_dataset(p_id uuid) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
begin
  perform 1 from public.datasets d where d.id = p_id;
  if not found then
    perform private.raise_error(404, format('dataset %s not found', p_id));
  end if;
  if not private.is_admin() then
    perform private.raise_error(403, 'only admins can delete datasets');
  end if;
  -- Leads, conversations, messages and campaign settings go with it (foreign keys cascade).
  delete from public.datasets d where d.id = p_id;
  return jsonb_build_object('success', true, 'dataset_id', p_id);
end
$$;
comment on function private.delete_dataset(uuid) is 'Body of public.delete_dataset (security invoker).';

-- DELETE /api/datasets/[id]: admins only; cascades to leads, conversations and messages.
create function public.delete_dataset(id uuid) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.delete_dataset(id)
$$;
comment on function public.delete_dataset(uuid) is
  'DELETE /api/datasets/[id]: admins only; cascades to leads, conversations and messages.';

revoke all on function private.dataset_json(public.datasets), private.valid_dataset_name(text),
  private.list_datasets(public.campaign_status, text, text), private.get_dataset(uuid),
  private.create_dataset(text, text, timestamptz), private.update_dataset(uuid, jsonb),
  private.delete_dataset(uuid)
from public, anon;
grant execute on function private.dataset_json(public.datasets), private.valid_dataset_name(text),
  private.list_datasets(public.campaign_status, text, text), private.get_dataset(uuid),
  private.create_dataset(text, text, timestamptz), private.update_dataset(uuid, jsonb),
  private.delete_dataset(uuid)
to authenticated, service_role;

revoke all on function public.list_datasets(public.campaign_status, text, text), public.get_dataset(uuid),
  public.create_dataset(text, text, timestamptz), public.update_dataset(uuid, jsonb),
  public.delete_dataset(uuid)
from public, anon;
grant execute on function public.list_datasets(public.campaign_status, text, text), public.get_dataset(uuid),
  public.create_dataset(text, text, timestamptz), public.update_dataset(uuid, jsonb),
  public.delete_dataset(uuid)
to authenticated, service_role;
