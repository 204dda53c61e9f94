-- Lead RPCs in the seed's shapes (GET/PUT /api/leads/[id], archive and manual-mode toggles).
-- Security invoker: RLS on leads decides visibility (404 when a lead is not visible) and
-- the column grants decide what may change; triggers keep stats, timestamps and assignees right.

-- GET /api/leads/[id] ------------------------------------------------------------------------
create function private.get_lead(p_id uuid) returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_lead public.leads;
  v_conversation jsonb;
  v_insights jsonb;
begin
  select l.* into v_lead from public.leads l where l.id = p_id;
  if not found then
    perform private.raise_error(404, format('lead %s not found', p_id));
  end if;
  select jsonb_build_object(
    'id', c.id, 'message_count', c.message_count, 'last_message_at', c.last_message_at,
    'status', c.status, 'sentiment', c.sentiment
  ) into v_conversation
  from public.conversations c where c.lead_id = p_id;
  select coalesce(jsonb_agg(jsonb_build_object(
    'id', i.id, 'severity', i.severity, 'title', i.title, 'status', i.status, 'created_at', i.created_at
  ) order by i.created_at desc, i.id), '[]'::jsonb) into v_insights
  from public.sophie_insights i where i.lead_id = p_id;
  return jsonb_build_object('lead', to_jsonb(v_lead) - 'search_text' || jsonb_build_object(
    'conversation', v_conversation, 'sophie_insights', v_insights
  ));
end
$$;
comment on function private.get_lead(uuid) is 'Body of public.get_lead (security invoker).';

create function public.get_lead(id uuid) returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.get_lead(id)
$$;
comment on function public.get_lead(uuid) is
  'GET /api/leads/[id]: every lead column plus "conversation" (summary or null) and "sophie_insights"; '
  '404 when not visible.';

create function private.writable_lead(p_id uuid) returns public.leads
language plpgsql
stable
set search_path = ''
as $$
declare
  v_lead public.leads;
begin
  -- Runs as the caller: RLS hides other tenants' and restricted datasets' leads (404);
  -- read-only members see the lead but may not change it (403).
  select l.* into v_lead from public.leads l where l.id = p_id;
  if not found then
    perform private.raise_error(404, format('lead %s not found', p_id));
  end if;
  if not private.can_write() then
    perform private.raise_error(403, 'read-only members cannot change leads');
  end if;
  return v_lead;
end
$$;
comment on function private.writable_lead(uuid) is
  'The lead the caller is about to change: 404 when not visible, 403 for read-only members.';

create function private.enum_field(p_patch jsonb, p_key text, p_allowed text [], p_nullable boolean)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  if jsonb_typeof(p_patch -> p_key) = 'null' and p_nullable then
    return null;
  end if;
  if jsonb_typeof(p_patch -> p_key) <> 'string' or not (p_patch ->> p_key) = any (p_allowed) then
    perform private.raise_error(
      400, format('%s must be one of %s (got %s)', p_key, array_to_string(p_allowed, ', '), p_patch -> p_key));
  end if;
  return p_patch ->> p_key;
end
$$;
comment on function private.enum_field(jsonb, text, text [], boolean) is
  'Reads an enum value (as text) from a JSON patch; 400 listing the allowed values otherwise.';

create function private.boolean_field(p_patch jsonb, p_key text) returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  if jsonb_typeof(p_patch -> p_key) <> 'boolean' then
    perform private.raise_error(400, format('%s must be true or false (got %s)', p_key, p_patch -> p_key));
  end if;
  return (p_patch -> p_key)::boolean;
end
$$;
comment on function private.boolean_field(jsonb, text) is 'Reads a boolean from a JSON patch; 400 otherwise.';

create function private.uuid_field(p_patch jsonb, p_key text) returns uuid
language plpgsql
immutable
set search_path = ''
as $$
begin
  if jsonb_typeof(p_patch -> p_key) = 'null' then
    return null;
  end if;
  if jsonb_typeof(p_patch -> p_key) <> 'string' then
    perform private.raise_error(400, format('%s must be a user id (uuid) or null', p_key));
  end if;
  return (p_patch ->> p_key)::uuid;
exception
  when invalid_text_representation then
    perform private.raise_error(400, format('%s is not a valid uuid: %s', p_key, p_patch ->> p_key));
end
$$;
comment on function private.uuid_field(jsonb, text) is 'Reads a nullable uuid from a JSON patch; 400 when malformed.';

-- PUT /api/leads/[id] ------------------------------------------------------------------------
create function private.update_lead(p_id uuid, p_patch jsonb) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_lead public.leads;
  v_email text;
begin
  perform private.reject_unknown_keys(p_patch, array[
    'first_name', 'last_name', 'email', 'postcode', 'notes', 'contact_status', 'lead_sentiment',
    'manual_mode', 'archived', 'assigned_to'
  ]);
  v_lead := private.writable_lead(p_id);
  if p_patch ? 'email' then
    v_email := lower(private.text_field(p_patch, 'email'));
    if v_email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' then
      perform private.raise_error(400, format('email is not a valid address: %s', v_email));
    end if;
  end if;

  update public.leads l set
    first_name = case when p_patch ? 'first_name' then private.text_field(p_patch, 'first_name') else l.first_name end,
    last_name = case when p_patch ? 'last_name' then private.text_field(p_patch, 'last_name') else l.last_name end,
    email = case when p_patch ? 'email' then v_email else l.email end,
    postcode = case when p_patch ? 'postcode' then private.text_field(p_patch, 'postcode') else l.postcode end,
    notes = case when p_patch ? 'notes' then private.text_field(p_patch, 'notes') else l.notes end,
    contact_status = case
      when p_patch ? 'contact_status' then private.enum_field(
          p_patch, 'contact_status', enum_range(null::public.lead_status)::text [], false
        )::public.lead_status
      else l.contact_status
    end,
    lead_sentiment = case
      when p_patch ? 'lead_sentiment' then private.enum_field(
          p_patch, 'lead_sentiment', enum_range(null::public.lead_sentiment)::text [], true
        )::public.lead_sentiment
      else l.lead_sentiment
    end,
    manual_mode = case when p_patch ? 'manual_mode' then private.boolean_field(p_patch, 'manual_mode') else l.manual_mode end,
    archived = case when p_patch ? 'archived' then private.boolean_field(p_patch, 'archived') else l.archived end,
    assigned_to = case when p_patch ? 'assigned_to' then private.uuid_field(p_patch, 'assigned_to') else l.assigned_to end
  where l.id = v_lead.id
  returning l.* into v_lead;
  return jsonb_build_object('lead', to_jsonb(v_lead) - 'search_text');
end
$$;
comment on function private.update_lead(uuid, jsonb) is 'Body of public.update_lead (security invoker).';

create function public.update_lead(id uuid, patch jsonb) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.update_lead(id, patch)
$$;
comment on function public.update_lead(uuid, jsonb) is
  'PUT /api/leads/[id]: patches only the seed''s fields (first_name, last_name, email, postcode, notes, '
  'contact_status, lead_sentiment, manual_mode, archived, assigned_to); 400 for other keys or bad values.';

-- POST /api/leads/[id]/archive ---------------------------------------------------------------
create function private.toggle_lead_archive(p_lead_id uuid) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_lead public.leads := private.writable_lead(p_lead_id);
begin
  update public.leads l set archived = not l.archived
  where l.id = v_lead.id
  returning l.* into v_lead;
  return jsonb_build_object('lead_id', v_lead.id, 'archived', v_lead.archived, 'archived_at', v_lead.archived_at);
end
$$;
comment on function private.toggle_lead_archive(uuid) is 'Body of public.toggle_lead_archive (security invoker).';

create function public.toggle_lead_archive(id uuid) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.toggle_lead_archive(id)
$$;
comment on function public.toggle_lead_archive(uuid) is
  'POST /api/leads/[id]/archive: flips archived; returns {"lead_id", "archived", "archived_at"}.';

-- POST /api/leads/[id]/manual-mode ------------------------------------------------------------
create function private.set_lead_manual_mode(p_lead_id uuid, p_enabled boolean) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_lead public.leads := private.writable_lead(p_lead_id);
begin
  if p_enabled is null then
    perform private.raise_error(400, 'enabled must be true or false');
  end if;
  update public.leads l set manual_mode = p_enabled
  where l.id = v_lead.id
  returning l.* into v_lead;
  return jsonb_build_object(
    'lead_id', v_lead.id, 'manual_mode', v_lead.manual_mode,
    'manual_mode_activated_at', v_lead.manual_mode_activated_at
  );
end
$$;
comment on function private.set_lead_manual_mode(uuid, boolean) is 'Body of public.set_lead_manual_mode (security invoker).';

create function public.set_lead_manual_mode(id uuid, enabled boolean) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.set_lead_manual_mode(id, enabled)
$$;
comment on function public.set_lead_manual_mode(uuid, boolean) is
  'POST /api/leads/[id]/manual-mode: switches manual mode (the AI stays silent while on); '
  'returns {"lead_id", "manual_mode", "manual_mode_activated_at"}.';

revoke all on function private.writable_lead(uuid),
  private.enum_field(jsonb, text, text [], boolean), private.boolean_field(jsonb, text),
  private.uuid_field(jsonb, text),
  private.get_lead(uuid), private.update_lead(uuid, jsonb), private.toggle_lead_archive(uuid),
  private.set_lead_manual_mode(uuid, boolean),
  public.get_lead(uuid), public.update_lead(uuid, jsonb), public.toggle_lead_archive(uuid),
  public.set_lead_manual_mode(uuid, boolean)
from public, anon;
grant execute on function private.writable_lead(uuid),
  private.enum_field(jsonb, text, text [], boolean), private.boolean_field(jsonb, text),
  private.uuid_field(jsonb, text),
  private.get_lead(uuid), private.update_lead(uuid, jsonb), private.toggle_lead_archive(uuid),
  private.set_lead_manual_mode(uuid, boolean),
  public.get_lead(uuid), public.update_lead(uuid, jsonb), public.toggle_lead_archive(uuid),
  public.set_lead_manual_mode(uuid, boolean)
to authenticated, service_role;
