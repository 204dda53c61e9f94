-- Dataset RPCs in the seed's shapes (GET/POST/PUT/DELETE /api/datasets...). They are thin,
-- security-invoker wrappers over public.datasets: RLS and the column grants decide who may
-- do what, the triggers decide what is valid. The same table is usable through PostgREST
-- directly (GET/PATCH/DELETE /rest/v1/datasets) with the same rules.

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
comment on function private.dataset_json(public.datasets) is 'The seed''s dataset detail shape (GET /api/datasets/[id]).';

create function private.require_member() returns uuid
language plpgsql
stable
set search_path = ''
as $$
declare
  v_client uuid := private.current_client_id();
begin
  if v_client is null then
    perform private.raise_error(403, 'you are not an active member of any client');
  end if;
  return v_client;
end
$$;
comment on function private.require_member() is
  'The caller''s client id; raises 403 for anonymous, invited, suspended or unknown users.';

create function private.parse_timestamptz_field(p_patch jsonb, p_key text) returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
begin
  if jsonb_typeof(p_patch -> p_key) = 'null' then
    return null;
  end if;
  if jsonb_typeof(p_patch -> p_key) <> 'string' then
    perform private.raise_error(400, format('%s must be an ISO 8601 date-time string or null', p_key));
  end if;
  return (p_patch ->> p_key)::timestamptz;
exception
  when invalid_datetime_format or datetime_field_overflow then
    perform private.raise_error(400, format('%s is not a valid ISO 8601 date-time: %s', p_key, p_patch ->> p_key));
end
$$;
comment on function private.parse_timestamptz_field(jsonb, text) is
  'Reads a nullable timestamptz from a JSON patch, raising 400 with the field name when malformed.';

create function private.reject_unknown_keys(p_patch jsonb, p_allowed text []) returns void
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_unknown text;
begin
  if p_patch is null or jsonb_typeof(p_patch) <> 'object' then
    perform private.raise_error(400, 'the patch must be a JSON object');
  end if;
  select string_agg(k, ', ' order by k) into v_unknown
  from jsonb_object_keys(p_patch) k
  where k <> all (p_allowed);
  if v_unknown is not null then
    perform private.raise_error(400, format('unknown or read-only field(s): %s', v_unknown),
      jsonb_build_object('hint', 'Allowed fields: ' || array_to_string(p_allowed, ', ')));
  end if;
end
$$;
comment on function private.reject_unknown_keys(jsonb, text []) is
  'Raises 400 naming every key of a JSON patch that is not in the allowed list.';

create function private.text_field(p_patch jsonb, p_key text) returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  if jsonb_typeof(p_patch -> p_key) not in ('string', 'null') then
    perform private.raise_error(400, format('%s must be a string or null', p_key));
  end if;
  return nullif(btrim(p_patch ->> p_key), '');
end
$$;
comment on function private.text_field(jsonb, text) is
  'Reads a trimmed text field from a JSON patch (blank becomes null); 400 when not a string.';

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

create function public.delete_dataset(id uuid) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.delete_dataset(id)
$$;
comment on function public.delete_dataset(uuid) is
  'DELETE /api/datasets/[id]: admins only; cascades to leads, conversations and messages.';

revoke all on function private.dataset_json(public.datasets), private.require_member(),
  private.parse_timestamptz_field(jsonb, text), private.reject_unknown_keys(jsonb, text []),
  private.text_field(jsonb, text), private.valid_dataset_name(text),
  private.list_datasets(public.campaign_status, text, text), private.get_dataset(uuid),
  private.create_dataset(text, text, timestamptz), private.update_dataset(uuid, jsonb),
  private.delete_dataset(uuid)
from public, anon;
grant execute on function private.dataset_json(public.datasets), private.require_member(),
  private.parse_timestamptz_field(jsonb, text), private.reject_unknown_keys(jsonb, text []),
  private.text_field(jsonb, text), private.valid_dataset_name(text),
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
