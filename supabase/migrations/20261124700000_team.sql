-- Team: the people of a client, its settings and its connections to outside services.
--   * members: GET users (list_users), PUT users/[id] (update_user), DELETE users/[id]
--     (suspend_user, never a delete); POST users is the API's (an invitation through Supabase
--     Auth), checked first by private.invite_check. Nobody raises anyone above its own rights,
--     the last active admin stays, and Supabase Auth drives status (invited -> active once the
--     user accepted and set a password) and last_login_at through a trigger on auth.users;
--   * settings/client: get_client_settings / update_client_settings in the contract's shape,
--     clients.settings validated against the documented private.client_settings_schema();
--   * per-client credentials (Twilio, Cal.com, Anthropic): secrets in Supabase Vault, metadata
--     in private.client_integrations, readable only by the workers and the webhook
--     (private.integration_credentials, private.twilio_webhook_token); settings/integrations
--     (get_integrations) and test_integrations (a team.test_integrations job).

-- members ------------------------------------------------------------------------------------

-- Rank of a role: nobody grants a role above their own.
create function private.role_rank(p_role public.member_role) returns integer
language sql
immutable
set search_path = ''
as $$
  select case p_role when 'admin' then 4 when 'manager' then 3 when 'sales_rep' then 2 else 1 end
$$;
comment on function private.role_rank(public.member_role) is 'admin 4 > manager 3 > sales_rep 2 > read_only 1.';

-- The rights check for a member row an actor writes: the part the older guard
-- (private.guard_member_change) does not cover. Only what changes is checked, so a user manager
-- can still suspend someone who holds a permission it lacks.
create function private.assert_can_grant(p_old public.client_members, p_new public.client_members)
returns void
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_actor public.client_members := private.current_membership();
  v_visible uuid[];
begin
  -- Admins may grant anything; who may write members at all is RLS's business (42501).
  if v_actor.user_id is null or v_actor.role = 'admin' or not v_actor.can_manage_users then
    return;
  end if;
  if (p_old.role is distinct from p_new.role)
     and private.role_rank(p_new.role) > private.role_rank(v_actor.role) then
    perform private.raise_error(403, format('you cannot grant the role %s, above your own', p_new.role),
      jsonb_build_object('field', 'role'));
  end if;
  if p_new.can_view_all_leads and not coalesce(p_old.can_view_all_leads, false)
     and not v_actor.can_view_all_leads then
    perform private.raise_error(403, 'you cannot grant can_view_all_leads, which you do not have',
      jsonb_build_object('field', 'permissions.can_view_all_leads'));
  end if;
  if p_new.can_edit_lessons and not coalesce(p_old.can_edit_lessons, false)
     and not v_actor.can_edit_lessons then
    perform private.raise_error(403, 'you cannot grant can_edit_lessons, which you do not have',
      jsonb_build_object('field', 'permissions.can_edit_lessons'));
  end if;
  v_visible := private.visible_dataset_ids();
  if v_visible is not null
     and (p_new.can_view_all_leads, p_new.allowed_dataset_ids)
         is distinct from (p_old.can_view_all_leads, p_old.allowed_dataset_ids)
     and (p_new.can_view_all_leads or p_new.allowed_dataset_ids is null
          or not (p_new.allowed_dataset_ids <@ v_visible)) then
    perform private.raise_error(403, 'you can only give access to datasets you can see yourself',
      jsonb_build_object('field', 'allowed_dataset_ids'));
  end if;
end
$$;
comment on function private.assert_can_grant(public.client_members, public.client_members) is
  'Refuses (403) a member row that gives more than the acting non-admin has: a higher role, a '
  'permission it lacks, or datasets it cannot see. Admins and trusted roles pass.';

-- Trigger: a signed-in actor cannot raise anyone above its own rights.
create function private.guard_member_rights() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if auth.role() = 'authenticated' then
    perform private.assert_can_grant(case when tg_op = 'UPDATE' then old end, new);
  end if;
  return new;
end
$$;
comment on function private.guard_member_rights() is
  'Trigger: a signed-in actor cannot raise anyone above its own rights.';

create trigger client_members_rights before insert or update on public.client_members
  for each row execute function private.guard_member_rights();

-- Security definer: it must see (and lock) every member of the client whoever acts.
create function private.keep_last_admin() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if old.role = 'admin' and old.status = 'active'
     and (new.role <> 'admin' or new.status <> 'active') then
    -- Serialise concurrent demotions within one client: both cannot see the other still active.
    perform 1 from public.clients c where c.id = old.client_id for update;
    if not exists (
      select 1 from public.client_members m
      where m.client_id = old.client_id and m.id <> old.id and m.role = 'admin' and m.status = 'active'
    ) then
      perform private.raise_error(409, 'a client needs at least one active admin',
        jsonb_build_object('user_id', old.user_id), 'LAST_ADMIN');
    end if;
  end if;
  return new;
end
$$;
comment on function private.keep_last_admin() is
  'Trigger: refuses (409 LAST_ADMIN) demoting or suspending the last active admin of a client.';
revoke all on function private.keep_last_admin() from public, anon, authenticated;

create trigger client_members_keep_last_admin before update of role, status on public.client_members
  for each row execute function private.keep_last_admin();

-- Supabase Auth drives two membership columns: an invited member becomes active once the user has
-- confirmed the invitation and set a password, and last_login_at follows last_sign_in_at.
-- A trigger on auth.users is allowed on a hosted project too.
create function private.sync_member_from_auth() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.client_members m set
    status = case
      when m.status = 'invited' and new.email_confirmed_at is not null
           and coalesce(new.encrypted_password, '') <> '' then 'active'::public.member_status
      else m.status end,
    last_login_at = coalesce(new.last_sign_in_at, m.last_login_at)
  where m.user_id = new.id
    and ((m.status = 'invited' and new.email_confirmed_at is not null
          and coalesce(new.encrypted_password, '') <> '')
         or new.last_sign_in_at is distinct from m.last_login_at);
  return new;
end
$$;
comment on function private.sync_member_from_auth() is
  'Trigger on auth.users: activates an invited membership when the user accepted and set a password; '
  'copies last_sign_in_at to client_members.last_login_at.';
revoke all on function private.sync_member_from_auth() from public, anon, authenticated;

create trigger team_sync_member_from_auth
  after update of email_confirmed_at, encrypted_password, last_sign_in_at on auth.users
  for each row execute function private.sync_member_from_auth();

-- One member in the API contract's shape (GET users).
create function private.member_json(m public.client_members) returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'id', m.user_id,
    'first_name', m.first_name,
    'last_name', m.last_name,
    'email', m.email,
    'role', m.role,
    'status', m.status,
    'last_login_at', m.last_login_at,
    'created_at', m.created_at,
    'permissions', jsonb_build_object(
      'can_view_all_leads', m.can_view_all_leads,
      'can_edit_lessons', m.can_edit_lessons,
      'can_push_to_live', m.can_push_to_live,
      'can_manage_users', m.can_manage_users),
    'allowed_dataset_ids', to_jsonb(m.allowed_dataset_ids))
$$;
comment on function private.member_json(public.client_members) is
  'A member as GET users returns it: id is the auth user id (the [id] of PUT/DELETE users/[id]).';

-- The caller's active membership when it may manage users; 403 otherwise.
create function private.require_user_manager() returns public.client_members
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_actor public.client_members := private.current_membership();
begin
  if v_actor.user_id is null then
    perform private.raise_error(403, 'you are not an active member of any client');
  end if;
  if not (v_actor.role = 'admin' or v_actor.can_manage_users) then
    perform private.raise_error(403, 'only admins and members with can_manage_users manage users');
  end if;
  return v_actor;
end
$$;
comment on function private.require_user_manager() is
  'The caller''s active membership when it may manage users; 403 otherwise.';

-- Body of public.list_users (runs as the caller, under RLS).
create function private.list_users() returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  perform private.require_user_manager();
  return jsonb_build_object('users', coalesce((
    select jsonb_agg(private.member_json(m) order by m.created_at, m.email)
    from public.client_members m
    where m.client_id = private.current_client_id()
  ), '[]'::jsonb));
end
$$;
comment on function private.list_users() is 'Body of public.list_users (runs as the caller, under RLS).';

-- GET users: every member of the caller's client (admins and user managers only).
create function public.list_users() returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.list_users()
$$;
comment on function public.list_users() is
  'GET users: {users: [{id, first_name, last_name, email, role, status, last_login_at, created_at, '
  'permissions, allowed_dataset_ids}]}. Admins and members with can_manage_users; 403 otherwise.';

-- Body of public.update_user (runs as the caller: RLS and the member triggers decide).
create function private.update_user(
  p_id uuid, p_role text, p_permissions jsonb, p_allowed_dataset_ids uuid[],
  p_first_name text, p_last_name text, p_status text
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_member public.client_members;
  v_key text;
begin
  perform private.require_user_manager();
  if p_role is not null and p_role not in ('admin', 'manager', 'sales_rep', 'read_only') then
    perform private.raise_error(400, format('unknown role %s', p_role), jsonb_build_object('field', 'role'));
  end if;
  if p_status is not null and p_status <> 'active' then
    perform private.raise_error(400, 'status can only be set to active here (DELETE suspends)',
      jsonb_build_object('field', 'status'));
  end if;
  if p_permissions is not null then
    if jsonb_typeof(p_permissions) <> 'object' then
      perform private.raise_error(400, 'permissions must be an object', jsonb_build_object('field', 'permissions'));
    end if;
    for v_key in select jsonb_object_keys(p_permissions) loop
      if v_key not in ('can_view_all_leads', 'can_edit_lessons', 'can_push_to_live', 'can_manage_users') then
        perform private.raise_error(400, format('unknown permission %s', v_key),
          jsonb_build_object('field', 'permissions.' || v_key));
      end if;
      if jsonb_typeof(p_permissions -> v_key) <> 'boolean' then
        perform private.raise_error(400, format('permission %s must be true or false', v_key),
          jsonb_build_object('field', 'permissions.' || v_key));
      end if;
    end loop;
  end if;
  select * into v_member from public.client_members m
  where m.user_id = p_id and m.client_id = private.current_client_id();
  if v_member.id is null then
    perform private.raise_error(404, 'no such user in your client', jsonb_build_object('id', p_id));
  end if;
  if p_status = 'active' and v_member.status = 'invited' then
    perform private.raise_error(409, 'an invited user becomes active by accepting the invitation');
  end if;
  update public.client_members m set
    role = coalesce(p_role::public.member_role, m.role),
    can_view_all_leads = coalesce((p_permissions ->> 'can_view_all_leads')::boolean, m.can_view_all_leads),
    can_edit_lessons = coalesce((p_permissions ->> 'can_edit_lessons')::boolean, m.can_edit_lessons),
    can_push_to_live = coalesce((p_permissions ->> 'can_push_to_live')::boolean, m.can_push_to_live),
    can_manage_users = coalesce((p_permissions ->> 'can_manage_users')::boolean, m.can_manage_users),
    -- An empty list lifts the restriction (null = no list); omitted = unchanged.
    allowed_dataset_ids = case
      when p_allowed_dataset_ids is null then m.allowed_dataset_ids
      when cardinality(p_allowed_dataset_ids) = 0 then null
      else p_allowed_dataset_ids end,
    first_name = coalesce(p_first_name, m.first_name),
    last_name = coalesce(p_last_name, m.last_name),
    status = coalesce(p_status::public.member_status, m.status)
  where m.id = v_member.id
  returning * into v_member;
  if v_member.id is null then
    perform private.raise_error(403, 'you cannot change this user');
  end if;
  return jsonb_build_object('user', private.member_json(v_member));
end
$$;
comment on function private.update_user(uuid, text, jsonb, uuid[], text, text, text) is
  'Body of public.update_user (runs as the caller: RLS and the member triggers decide).';

-- PUT users/[id]: role, permissions, allowed datasets, names; status 'active' reactivates a
-- suspended member.
create function public.update_user(
  id uuid,
  role text default null,
  permissions jsonb default null,
  allowed_dataset_ids uuid[] default null,
  first_name text default null,
  last_name text default null,
  status text default null
) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.update_user(id, role, permissions, allowed_dataset_ids, first_name, last_name, status)
$$;
comment on function public.update_user(uuid, text, jsonb, uuid[], text, text, text) is
  'PUT users/[id]: {user}. Omitted keys stay; allowed_dataset_ids [] lifts the restriction. 403 for '
  'non-managers or a grant above the caller''s rights, 404 unknown user, 409 LAST_ADMIN.';

-- Body of public.suspend_user.
create function private.suspend_user(p_id uuid) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_member public.client_members;
begin
  perform private.require_user_manager();
  if p_id = auth.uid() then
    perform private.raise_error(403, 'you cannot suspend yourself');
  end if;
  update public.client_members m set status = 'suspended'
  where m.user_id = p_id and m.client_id = private.current_client_id()
  returning * into v_member;
  if v_member.id is null then
    perform private.raise_error(404, 'no such user in your client', jsonb_build_object('id', p_id));
  end if;
  return jsonb_build_object('user', private.member_json(v_member));
end
$$;
comment on function private.suspend_user(uuid) is 'Body of public.suspend_user.';

-- DELETE users/[id]: suspends (never deletes). Every later request of that user is refused at
-- once: private.current_membership() only returns active memberships.
create function public.suspend_user(id uuid) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.suspend_user(id)
$$;
comment on function public.suspend_user(uuid) is
  'DELETE users/[id]: sets status suspended; {user}. 403 self or non-manager, 404 unknown, 409 LAST_ADMIN.';

-- Before the API sends an invitation through Supabase Auth: may the caller invite this person
-- with these rights, and is it a new invitation or a resend? Security definer: it must see
-- whether the email belongs to a member of another client (answered 409, without detail).
create function private.invite_check(
  p_email text, p_role text, p_permissions jsonb, p_allowed_dataset_ids uuid[]
) returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_actor public.client_members := private.require_user_manager();
  v_existing public.client_members;
  v_new public.client_members;
begin
  if p_email is null or p_email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' then
    perform private.raise_error(400, 'email is not a valid address', jsonb_build_object('field', 'email'));
  end if;
  if p_role not in ('admin', 'manager', 'sales_rep', 'read_only') then
    perform private.raise_error(400, format('unknown role %s', p_role), jsonb_build_object('field', 'role'));
  end if;
  select m.* into v_existing from public.client_members m
  join auth.users u on u.id = m.user_id
  where lower(u.email) = lower(p_email) or lower(m.email) = lower(p_email)
  limit 1;
  if v_existing.id is not null and v_existing.client_id <> v_actor.client_id then
    perform private.raise_error(409, 'this person already belongs to another client',
      jsonb_build_object('email', p_email), 'CONFLICT');
  end if;
  if v_existing.id is not null and v_existing.status <> 'invited' then
    perform private.raise_error(409, format('this person is already a member (%s)', v_existing.status),
      jsonb_build_object('email', p_email, 'id', v_existing.user_id, 'status', v_existing.status), 'CONFLICT');
  end if;
  if v_existing.id is not null then
    return 'resend';
  end if;
  if v_actor.role <> 'admin' and (p_role = 'admin'
     or coalesce((p_permissions ->> 'can_manage_users')::boolean, false)
     or coalesce((p_permissions ->> 'can_push_to_live')::boolean, false)) then
    perform private.raise_error(403, 'only an admin can grant the admin role, can_manage_users or can_push_to_live');
  end if;
  v_new.role := p_role::public.member_role;
  v_new.can_view_all_leads := coalesce((p_permissions ->> 'can_view_all_leads')::boolean, false);
  v_new.can_edit_lessons := coalesce((p_permissions ->> 'can_edit_lessons')::boolean, false);
  v_new.allowed_dataset_ids := nullif(p_allowed_dataset_ids, '{}');
  perform private.assert_can_grant(null, v_new);
  return 'new';
end
$$;
comment on function private.invite_check(text, text, jsonb, uuid[]) is
  'POST users, before Supabase Auth is called: 403 no right, 400 bad body, 409 member of another '
  'client or already a member; ''resend'' for a pending invitation of this client, else ''new''.';
revoke all on function private.invite_check(text, text, jsonb, uuid[]) from public, anon;
grant execute on function private.invite_check(text, text, jsonb, uuid[]) to authenticated, service_role;

revoke all on function private.role_rank(public.member_role),
  private.assert_can_grant(public.client_members, public.client_members),
  private.member_json(public.client_members), private.require_user_manager(), private.list_users(),
  private.update_user(uuid, text, jsonb, uuid[], text, text, text), private.suspend_user(uuid)
  from public, anon;
grant execute on function private.role_rank(public.member_role),
  private.assert_can_grant(public.client_members, public.client_members),
  private.member_json(public.client_members), private.require_user_manager(), private.list_users(),
  private.update_user(uuid, text, jsonb, uuid[], text, text, text), private.suspend_user(uuid)
  to authenticated, service_role;
revoke all on function public.list_users(), public.update_user(uuid, text, jsonb, uuid[], text, text, text),
  public.suspend_user(uuid) from public, anon;
grant execute on function public.list_users(), public.update_user(uuid, text, jsonb, uuid[], text, text, text),
  public.suspend_user(uuid) to authenticated, service_role;

-- client settings ------------------------------------------------------------------------------

-- The documented schema of clients.settings: every key a client may set, its type and bounds.
-- Types: string (max_length, enum, pattern), integer/number (min, max), boolean, object
-- (properties, same rules, unknown keys refused).
create function private.client_settings_schema() returns jsonb
language sql
immutable
set search_path = ''
as $$
  select '{
    "opt_out_line": {"type": "string", "max_length": 160, "doc": "line appended to the first message"},
    "help_text": {"type": "string", "max_length": 480, "doc": "answer to HELP"},
    "company_description": {"type": "string", "max_length": 2000, "doc": "what the AI says the business does"},
    "templates": {"type": "object", "doc": "default M1/M2/M3 texts", "properties": {
      "m1": {"type": "string", "max_length": 1600},
      "m2": {"type": "string", "max_length": 1600},
      "m3": {"type": "string", "max_length": 1600}}},
    "sms_per_hour": {"type": "integer", "min": 1, "max": 100000, "doc": "sending limit per client"},
    "number_pace_per_second": {"type": "number", "min": 0.01, "max": 100, "doc": "pace of one sender number"},
    "service_pace_per_second": {"type": "number", "min": 0.01, "max": 1000, "doc": "pace of a Messaging Service"},
    "ai_mode": {"type": "string", "enum": ["auto", "suggest", "off"], "doc": "AI default for new conversations"},
    "anthropic_model": {"type": "string", "max_length": 100, "doc": "Claude model for this client"},
    "ai_response_delay_seconds": {"type": "integer", "min": 0, "max": 86400, "doc": "wait before the AI answers"},
    "ai_max_consecutive_messages": {"type": "integer", "min": 1, "max": 100, "doc": "AI turns before a person takes over"},
    "ai_opt_out_classification": {"type": "boolean", "doc": "let the AI recognise opt-outs in free text"},
    "ai_booking_enabled": {"type": "boolean", "doc": "let the AI offer and book calls"},
    "calcom": {"type": "object", "doc": "booking defaults", "properties": {
      "event_type_id": {"type": "integer", "min": 1},
      "calendar_name": {"type": "string", "max_length": 200},
      "booking_page_url": {"type": "string", "max_length": 500}}},
    "attribution_window_days": {"type": "integer", "min": 1, "max": 365, "doc": "days a booking counts towards a campaign"},
    "quiet_hours": {"type": "object", "doc": "no messages between start and end, client time zone", "properties": {
      "start": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"},
      "end": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}}}
  }'::jsonb
$$;
comment on function private.client_settings_schema() is
  'The documented schema of clients.settings (keys, types, bounds); private.validate_settings checks against it.';

-- Checks a settings object against a schema of client_settings_schema()'s form; 400 names the key.
create function private.validate_settings(p_value jsonb, p_schema jsonb, p_path text default '')
returns void
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_key text;
  v_val jsonb;
  v_rule jsonb;
  v_name text;
  v_type text;
begin
  if jsonb_typeof(p_value) <> 'object' then
    perform private.raise_error(400, format('%s must be an object', coalesce(nullif(p_path, ''), 'settings')),
      jsonb_build_object('key', nullif(p_path, '')));
  end if;
  for v_key, v_val in select * from jsonb_each(p_value) loop
    v_name := case when p_path = '' then v_key else p_path || '.' || v_key end;
    v_rule := p_schema -> v_key;
    if v_rule is null then
      perform private.raise_error(400, format('unknown setting %s', v_name),
        jsonb_build_object('key', v_name, 'allowed', (select jsonb_agg(k order by k) from jsonb_object_keys(p_schema) k)));
    end if;
    if jsonb_typeof(v_val) = 'null' then
      continue;  -- null removes the key
    end if;
    v_type := v_rule ->> 'type';
    if not (jsonb_typeof(v_val) = v_type
            or (v_type = 'integer' and jsonb_typeof(v_val) = 'number' and v_val::text ~ '^-?[0-9]+$')) then
      perform private.raise_error(400, format('setting %s must be %s', v_name,
        case v_type when 'integer' then 'a whole number' when 'object' then 'an object' else 'a ' || v_type end),
        jsonb_build_object('key', v_name, 'expected', v_type));
    end if;
    if v_type in ('integer', 'number') and (
         (v_rule ? 'min' and (v_val #>> '{}')::numeric < (v_rule ->> 'min')::numeric)
         or (v_rule ? 'max' and (v_val #>> '{}')::numeric > (v_rule ->> 'max')::numeric)) then
      perform private.raise_error(400, format('setting %s must be between %s and %s', v_name,
        v_rule ->> 'min', v_rule ->> 'max'),
        jsonb_build_object('key', v_name, 'min', v_rule -> 'min', 'max', v_rule -> 'max'));
    end if;
    if v_type = 'string' and (
         (v_rule ? 'max_length' and length(v_val #>> '{}') > (v_rule ->> 'max_length')::integer)
         or (v_rule ? 'enum' and not (v_rule -> 'enum') @> jsonb_build_array(v_val))
         or (v_rule ? 'pattern' and (v_val #>> '{}') !~ (v_rule ->> 'pattern'))) then
      perform private.raise_error(400, format('setting %s is not valid', v_name),
        jsonb_build_object('key', v_name, 'rule', v_rule - 'doc' - 'type'));
    end if;
    if v_type = 'object' then
      perform private.validate_settings(v_val, v_rule -> 'properties', v_name);
    end if;
  end loop;
end
$$;
comment on function private.validate_settings(jsonb, jsonb, text) is
  'Checks a settings object against a schema of private.client_settings_schema()''s form; 400 naming '
  'the first bad or unknown key (details.key).';

-- Trigger: settings written by a signed-in user must follow the documented schema.
create function private.validate_client_settings() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if auth.role() = 'authenticated' then
    perform private.validate_settings(new.settings, private.client_settings_schema());
  end if;
  return new;
end
$$;
comment on function private.validate_client_settings() is
  'Trigger: settings written by a signed-in user must follow private.client_settings_schema().';

create trigger clients_validate_settings before update of settings on public.clients
  for each row execute function private.validate_client_settings();

-- A client in GET settings/client's shape.
create function private.client_settings_json(c public.clients) returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object('settings', jsonb_build_object(
    'company_name', c.name,
    'company_email', c.email,
    'company_phone', c.phone,
    'logo_url', c.logo_url,
    'primary_color', c.primary_color,
    'timezone', c.timezone,
    'twilio_phone_number', c.twilio_phone_number,
    'n8n_workflow_id', c.n8n_workflow_id,
    'settings', c.settings))
$$;
comment on function private.client_settings_json(public.clients) is 'A client in GET settings/client''s shape.';

-- GET settings/client: any active member.
create function public.get_client_settings() returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_client public.clients;
begin
  select * into v_client from public.clients c where c.id = private.current_client_id();
  if v_client.id is null then
    perform private.raise_error(403, 'you are not an active member of any client');
  end if;
  return private.client_settings_json(v_client);
end
$$;
comment on function public.get_client_settings() is
  'GET settings/client: {settings: {company_name, company_email, company_phone, logo_url, primary_color, '
  'timezone, twilio_phone_number, n8n_workflow_id, settings}}.';

-- Body of public.update_client_settings (runs as the caller under RLS).
create function private.update_client_settings(
  p_company_name text, p_company_email text, p_company_phone text, p_logo_url text,
  p_primary_color text, p_timezone text, p_twilio_phone_number text, p_n8n_workflow_id text,
  p_settings jsonb
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_client public.clients;
begin
  if private.current_client_id() is null then
    perform private.raise_error(403, 'you are not an active member of any client');
  end if;
  if not private.is_admin() then
    perform private.raise_error(403, 'only an admin can change the client settings');
  end if;
  select * into v_client from public.clients c where c.id = private.current_client_id();
  if p_twilio_phone_number is not null and p_twilio_phone_number is distinct from v_client.twilio_phone_number then
    perform private.raise_error(403, 'twilio_phone_number is set by connecting Twilio (connect_twilio)',
      jsonb_build_object('key', 'twilio_phone_number'));
  end if;
  if p_company_email is not null and p_company_email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' then
    perform private.raise_error(400, 'company_email is not a valid address', jsonb_build_object('key', 'company_email'));
  end if;
  if p_company_phone is not null and p_company_phone !~ '^\+[1-9][0-9]{6,14}$' then
    perform private.raise_error(400, 'company_phone must be E.164 (+ and digits)', jsonb_build_object('key', 'company_phone'));
  end if;
  if p_primary_color is not null and p_primary_color !~ '^#[0-9a-fA-F]{6}$' then
    perform private.raise_error(400, 'primary_color must look like #1a2b3c', jsonb_build_object('key', 'primary_color'));
  end if;
  if p_company_name is not null and length(trim(p_company_name)) not between 1 and 200 then
    perform private.raise_error(400, 'company_name must be 1 to 200 characters', jsonb_build_object('key', 'company_name'));
  end if;
  if p_settings is not null then
    perform private.validate_settings(p_settings, private.client_settings_schema());
  end if;
  update public.clients c set
    name = coalesce(p_company_name, c.name),
    email = coalesce(p_company_email, c.email),
    phone = coalesce(p_company_phone, c.phone),
    logo_url = coalesce(p_logo_url, c.logo_url),
    primary_color = coalesce(p_primary_color, c.primary_color),
    timezone = coalesce(p_timezone, c.timezone),
    n8n_workflow_id = coalesce(p_n8n_workflow_id, c.n8n_workflow_id),
    -- Keys given replace those stored, a null removes one, the others stay.
    settings = case when p_settings is null then c.settings else jsonb_strip_nulls(c.settings || p_settings) end
  where c.id = v_client.id
  returning * into v_client;
  return private.client_settings_json(v_client);
end
$$;
comment on function private.update_client_settings(text, text, text, text, text, text, text, text, jsonb) is
  'Body of public.update_client_settings (runs as the caller under RLS).';

-- PUT settings/client: admins only.
create function public.update_client_settings(
  company_name text default null,
  company_email text default null,
  company_phone text default null,
  logo_url text default null,
  primary_color text default null,
  timezone text default null,
  twilio_phone_number text default null,
  n8n_workflow_id text default null,
  settings jsonb default null
) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.update_client_settings(company_name, company_email, company_phone, logo_url,
    primary_color, timezone, twilio_phone_number, n8n_workflow_id, settings)
$$;
comment on function public.update_client_settings(text, text, text, text, text, text, text, text, jsonb) is
  'PUT settings/client (admins): omitted keys stay; settings keys merge (null removes one) and are '
  'validated against the documented schema (400 names the key). twilio_phone_number comes from connect_twilio.';

revoke all on function private.client_settings_schema(), private.validate_settings(jsonb, jsonb, text),
  private.client_settings_json(public.clients),
  private.update_client_settings(text, text, text, text, text, text, text, text, jsonb),
  public.get_client_settings(),
  public.update_client_settings(text, text, text, text, text, text, text, text, jsonb)
  from public, anon;
grant execute on function private.client_settings_schema(), private.validate_settings(jsonb, jsonb, text),
  private.client_settings_json(public.clients),
  private.update_client_settings(text, text, text, text, text, text, text, text, jsonb),
  public.get_client_settings(),
  public.update_client_settings(text, text, text, text, text, text, text, text, jsonb)
  to authenticated, service_role;

-- per-client credentials and integration health ---------------------------------------------------

-- One row per client and outside service. Secrets live in Supabase Vault (secret_id); this
-- table holds only what may be shown (account SID, sender, event type, model) and test results.
-- No grant to any API role: only the workers (service login) and security definer functions.
create table private.client_integrations (
  client_id uuid not null references public.clients (id) on delete cascade,
  service text not null check (service in ('twilio', 'calcom', 'anthropic')),
  secret_id uuid,
  config jsonb not null default '{}'::jsonb check (jsonb_typeof(config) = 'object'),
  last_tested_at timestamptz,
  last_test_ok boolean,
  last_error text,
  last_used_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (client_id, service)
);
comment on table private.client_integrations is
  'A client''s own connection to Twilio, Cal.com or Anthropic (secret in Vault) and its last test. '
  'No row, or a row without secret_id: the platform''s credentials apply.';
comment on column private.client_integrations.secret_id is
  'vault.secrets id of a JSON object: {"auth_token"} (Twilio) or {"api_key"} (Cal.com, Anthropic). Null: platform credentials.';
comment on column private.client_integrations.config is
  'Non-secret settings: twilio {account_sid}, calcom {event_type_id, calendar_name}, anthropic {model}.';
comment on column private.client_integrations.last_error is 'Error text of the last failed test (null after a success).';
alter table private.client_integrations enable row level security;
revoke all on private.client_integrations from public, anon, authenticated;

create trigger client_integrations_touch before update on private.client_integrations
  for each row execute function private.touch_updated_at();

-- Stores (or replaces) a client's secret for a service in Vault and the row's public config.
create function private.store_integration(p_client_id uuid, p_service text, p_secret jsonb, p_config jsonb)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_secret_id uuid;
begin
  select i.secret_id into v_secret_id from private.client_integrations i
  where i.client_id = p_client_id and i.service = p_service
  for update;
  if p_secret is null then
    if v_secret_id is not null then
      delete from vault.secrets s where s.id = v_secret_id;
    end if;
    v_secret_id := null;
  elsif v_secret_id is null then
    v_secret_id := vault.create_secret(p_secret::text, format('dbr/%s/%s', p_client_id, p_service),
      format('%s credentials of client %s', p_service, p_client_id));
  else
    perform vault.update_secret(v_secret_id, p_secret::text);
  end if;
  insert into private.client_integrations as i (client_id, service, secret_id, config)
  values (p_client_id, p_service, v_secret_id, p_config)
  on conflict (client_id, service) do update set
    secret_id = excluded.secret_id, config = excluded.config,
    last_tested_at = null, last_test_ok = null, last_error = null;
end
$$;
comment on function private.store_integration(uuid, text, jsonb, jsonb) is
  'Keeps a client''s secret for one service in Vault (create or update) and resets its test result.';
revoke all on function private.store_integration(uuid, text, jsonb, jsonb) from public, anon, authenticated;

-- The caller's client id when the caller is an active admin; 403 otherwise.
create function private.require_admin() returns uuid
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if private.current_client_id() is null then
    perform private.raise_error(403, 'you are not an active member of any client');
  end if;
  if not private.is_admin() then
    perform private.raise_error(403, 'only an admin can connect or test integrations');
  end if;
  return private.current_client_id();
end
$$;
comment on function private.require_admin() is 'The caller''s client id when the caller is an active admin; 403 otherwise.';
revoke all on function private.require_admin() from public, anon;
grant execute on function private.require_admin() to authenticated, service_role;

-- Body of public.connect_twilio.
create function private.connect_twilio(
  p_account_sid text, p_auth_token text, p_phone_number text, p_messaging_service_sid text
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_client_id uuid := private.require_admin();
begin
  if p_account_sid is null or p_account_sid !~ '^AC[0-9a-f]{32}$' then
    perform private.raise_error(400, 'account_sid must be a Twilio Account SID (AC + 32 hex)',
      jsonb_build_object('key', 'account_sid'));
  end if;
  if p_auth_token is null or p_auth_token !~ '^[0-9a-zA-Z]{32}$' then
    perform private.raise_error(400, 'auth_token must be the 32-character Twilio auth token',
      jsonb_build_object('key', 'auth_token'));
  end if;
  if p_phone_number is null and p_messaging_service_sid is null then
    perform private.raise_error(400, 'give phone_number or messaging_service_sid (the sender)',
      jsonb_build_object('key', 'phone_number'));
  end if;
  if p_phone_number is not null and p_phone_number !~ '^\+[1-9][0-9]{6,14}$' then
    perform private.raise_error(400, 'phone_number must be E.164', jsonb_build_object('key', 'phone_number'));
  end if;
  if p_messaging_service_sid is not null and p_messaging_service_sid !~ '^MG[0-9a-f]{32}$' then
    perform private.raise_error(400, 'messaging_service_sid must be MG + 32 hex',
      jsonb_build_object('key', 'messaging_service_sid'));
  end if;
  if p_phone_number is not null and exists (
    select 1 from public.clients c where c.twilio_phone_number = p_phone_number and c.id <> v_client_id
  ) then
    perform private.raise_error(409, 'this number is already connected to another client',
      jsonb_build_object('key', 'phone_number'));
  end if;
  update public.clients c set
    twilio_phone_number = coalesce(p_phone_number, c.twilio_phone_number),
    twilio_messaging_service_sid = p_messaging_service_sid
  where c.id = v_client_id;
  perform private.store_integration(v_client_id, 'twilio', jsonb_build_object('auth_token', p_auth_token),
    jsonb_build_object('account_sid', p_account_sid));
  return public.get_integrations();
end
$$;
comment on function private.connect_twilio(text, text, text, text) is 'Body of public.connect_twilio.';

-- Admins connect the client's own Twilio account (or a subaccount: its own SID and token); the
-- sender is a number or a Messaging Service of that account.
create function public.connect_twilio(
  account_sid text,
  auth_token text,
  phone_number text default null,
  messaging_service_sid text default null
) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.connect_twilio(account_sid, auth_token, phone_number, messaging_service_sid)
$$;
comment on function public.connect_twilio(text, text, text, text) is
  'Admins: connect the client''s Twilio account (token kept in Vault, never returned). Returns GET '
  'settings/integrations. 400 bad SID/token/number, 409 number of another client.';

-- Body of public.connect_calcom.
create function private.connect_calcom(p_api_key text, p_event_type_id integer, p_calendar_name text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_client_id uuid := private.require_admin();
begin
  if p_api_key is null or length(p_api_key) not between 8 and 200 or p_api_key ~ '\s' then
    perform private.raise_error(400, 'api_key must be a Cal.com API key', jsonb_build_object('key', 'api_key'));
  end if;
  if p_event_type_id is null or p_event_type_id < 1 then
    perform private.raise_error(400, 'event_type_id must be a Cal.com event type id',
      jsonb_build_object('key', 'event_type_id'));
  end if;
  -- Bookings read the event type from settings.calcom, as before.
  update public.clients c set settings = jsonb_set(c.settings, '{calcom}',
    coalesce(c.settings -> 'calcom', '{}'::jsonb)
      || jsonb_strip_nulls(jsonb_build_object('event_type_id', p_event_type_id, 'calendar_name', p_calendar_name)))
  where c.id = v_client_id;
  perform private.store_integration(v_client_id, 'calcom', jsonb_build_object('api_key', p_api_key),
    jsonb_strip_nulls(jsonb_build_object('event_type_id', p_event_type_id, 'calendar_name', p_calendar_name)));
  return public.get_integrations();
end
$$;
comment on function private.connect_calcom(text, integer, text) is 'Body of public.connect_calcom.';

-- Admins connect the client's own Cal.com account.
create function public.connect_calcom(api_key text, event_type_id integer, calendar_name text default null)
returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.connect_calcom(api_key, event_type_id, calendar_name)
$$;
comment on function public.connect_calcom(text, integer, text) is
  'Admins: connect the client''s Cal.com (API key in Vault, never returned). Returns GET settings/integrations.';

-- Body of public.connect_anthropic.
create function private.connect_anthropic(p_api_key text, p_model text) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_client_id uuid := private.require_admin();
begin
  if p_api_key is null or length(p_api_key) not between 8 and 300 or p_api_key ~ '\s' then
    perform private.raise_error(400, 'api_key must be an Anthropic API key', jsonb_build_object('key', 'api_key'));
  end if;
  if p_model is not null then
    update public.clients c set settings = c.settings || jsonb_build_object('anthropic_model', p_model)
    where c.id = v_client_id;
  end if;
  perform private.store_integration(v_client_id, 'anthropic', jsonb_build_object('api_key', p_api_key),
    jsonb_strip_nulls(jsonb_build_object('model', p_model)));
  return public.get_integrations();
end
$$;
comment on function private.connect_anthropic(text, text) is 'Body of public.connect_anthropic.';

-- Admins give the client its own Anthropic key (optional: the platform's key applies otherwise).
create function public.connect_anthropic(api_key text, model text default null) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.connect_anthropic(api_key, model)
$$;
comment on function public.connect_anthropic(text, text) is
  'Admins: the client''s own Anthropic key (Vault, never returned) and model. Returns GET settings/integrations.';

-- Body of public.disconnect_integration.
create function private.disconnect_integration(p_service text) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_client_id uuid := private.require_admin();
  v_secret_id uuid;
begin
  if p_service not in ('twilio', 'calcom', 'anthropic') then
    perform private.raise_error(400, format('unknown service %s', p_service), jsonb_build_object('key', 'service'));
  end if;
  delete from private.client_integrations i where i.client_id = v_client_id and i.service = p_service
  returning i.secret_id into v_secret_id;
  if v_secret_id is not null then
    delete from vault.secrets s where s.id = v_secret_id;
  end if;
  return public.get_integrations();
end
$$;
comment on function private.disconnect_integration(text) is 'Body of public.disconnect_integration.';

-- Admins go back to the platform's credentials for one service (the secret is deleted from Vault).
create function public.disconnect_integration(service text) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.disconnect_integration(service)
$$;
comment on function public.disconnect_integration(text) is
  'Admins: forget the client''s own credentials of twilio, calcom or anthropic; the platform''s apply again.';

-- Body of public.get_integrations: the status of each service, never a secret.
create function private.get_integrations() returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_client public.clients;
  v_twilio private.client_integrations;
  v_calcom private.client_integrations;
  v_claude private.client_integrations;
begin
  select * into v_client from public.clients c where c.id = private.current_client_id();
  if v_client.id is null then
    perform private.raise_error(403, 'you are not an active member of any client');
  end if;
  select * into v_twilio from private.client_integrations i where i.client_id = v_client.id and i.service = 'twilio';
  select * into v_calcom from private.client_integrations i where i.client_id = v_client.id and i.service = 'calcom';
  select * into v_claude from private.client_integrations i where i.client_id = v_client.id and i.service = 'anthropic';
  return jsonb_build_object('integrations', jsonb_build_object(
    'twilio', jsonb_build_object(
      -- A sender is what makes Twilio usable (own account or the platform's).
      'connected', (v_client.twilio_phone_number is not null or v_client.twilio_messaging_service_sid is not null)
                   and coalesce(v_twilio.last_test_ok, true),
      'phone_number', v_client.twilio_phone_number,
      'last_tested', v_twilio.last_tested_at,
      'own_account', v_twilio.client_id is not null,
      'last_error', v_twilio.last_error),
    'calcom', jsonb_build_object(
      'connected', coalesce(v_client.settings -> 'calcom' ->> 'event_type_id', v_calcom.config ->> 'event_type_id') is not null
                   and coalesce(v_calcom.last_test_ok, true),
      'event_type_id', coalesce(v_calcom.config ->> 'event_type_id', v_client.settings -> 'calcom' ->> 'event_type_id'),
      'calendar_name', coalesce(v_calcom.config ->> 'calendar_name', v_client.settings -> 'calcom' ->> 'calendar_name'),
      'last_tested', v_calcom.last_tested_at,
      'own_account', v_calcom.client_id is not null,
      'last_error', v_calcom.last_error),
    'claude', jsonb_build_object(
      'connected', coalesce(v_claude.last_test_ok, true),
      'model', coalesce(v_claude.config ->> 'model', v_client.settings ->> 'anthropic_model'),
      'last_used', v_claude.last_used_at,
      'last_tested', v_claude.last_tested_at,
      'own_account', v_claude.secret_id is not null,
      'last_error', v_claude.last_error)));
end
$$;
comment on function private.get_integrations() is
  'Body of public.get_integrations: reads private.client_integrations (never its secrets) for the caller''s client.';
revoke all on function private.get_integrations() from public, anon;
grant execute on function private.get_integrations() to authenticated, service_role;

-- GET settings/integrations: any active member.
create function public.get_integrations() returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.get_integrations()
$$;
comment on function public.get_integrations() is
  'GET settings/integrations: {integrations: {twilio {connected, phone_number, last_tested}, calcom '
  '{connected, event_type_id, calendar_name}, claude {connected, model, last_used}}} plus own_account, '
  'last_tested and last_error per service. No secret is ever part of it.';

-- Body of public.test_integrations.
create function private.test_integrations() returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_client_id uuid := private.require_admin();
  v_job_id bigint;
begin
  v_job_id := private.enqueue_job('team.test_integrations', jsonb_build_object('client_id', v_client_id),
    now(), null, v_client_id, 3);
  return jsonb_build_object('job_id', v_job_id, 'status', 'queued');
end
$$;
comment on function private.test_integrations() is 'Body of public.test_integrations.';

-- Admins: check each service for real (a worker job); results appear in GET settings/integrations.
create function public.test_integrations() returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.test_integrations()
$$;
comment on function public.test_integrations() is
  'Admins: enqueues team.test_integrations (Twilio: fetch the sender; Cal.com: the event type; '
  'Anthropic: a token count). {job_id, status: queued}; results land in GET settings/integrations.';

-- Workers only: a client's credentials for one service, secret included. Null: none of its own.
create function private.integration_credentials(p_client_id uuid, p_service text) returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select i.config || coalesce((
    select d.decrypted_secret::jsonb from vault.decrypted_secrets d where d.id = i.secret_id), '{}'::jsonb)
  from private.client_integrations i
  where i.client_id = p_client_id and i.service = p_service
$$;
comment on function private.integration_credentials(uuid, text) is
  'Workers and webhooks only (never granted to user roles): config merged with the Vault secret.';
revoke all on function private.integration_credentials(uuid, text) from public, anon, authenticated;
grant execute on function private.integration_credentials(uuid, text) to service_role;

-- Webhooks only: the auth token Twilio signed this webhook with. The client is the one the
-- message belongs to (inbound: the To number or Messaging Service; status callback: the message's
-- SID, else the From number), never one the sender names: a client's own token verifies only
-- its own traffic. Null: the client has no account of its own, the platform's token applies.
create function private.twilio_webhook_token(p_params jsonb) returns text
language sql
stable
security definer
set search_path = ''
as $$
  select private.integration_credentials(c.id, 'twilio') ->> 'auth_token'
  from public.clients c
  where c.id = coalesce(
    (select m.client_id from public.messages m
     where m.twilio_sid = p_params ->> 'MessageSid' and m.direction = 'outbound'),
    (select c2.id from public.clients c2 where c2.twilio_phone_number = private.sms_e164(p_params ->> 'To')),
    (select c2.id from public.clients c2
     where c2.twilio_messaging_service_sid = nullif(p_params ->> 'MessagingServiceSid', '')
     order by c2.id limit 1),
    (select c2.id from public.clients c2 where c2.twilio_phone_number = private.sms_e164(p_params ->> 'From')))
$$;
comment on function private.twilio_webhook_token(jsonb) is
  'The auth token of the client a Twilio webhook concerns when it has its own Twilio account; null: the platform''s.';
revoke all on function private.twilio_webhook_token(jsonb) from public, anon, authenticated;
grant execute on function private.twilio_webhook_token(jsonb) to service_role;

-- Workers record the result of one service check (time, ok, error text).
create function private.record_integration_test(p_client_id uuid, p_service text, p_ok boolean, p_error text)
returns void
language sql
security definer
set search_path = ''
as $$
  insert into private.client_integrations as i (client_id, service, last_tested_at, last_test_ok, last_error)
  values (p_client_id, p_service, now(), p_ok, case when p_ok then null else left(p_error, 1000) end)
  on conflict (client_id, service) do update set
    last_tested_at = excluded.last_tested_at, last_test_ok = excluded.last_test_ok, last_error = excluded.last_error
$$;
comment on function private.record_integration_test(uuid, text, boolean, text) is
  'Workers: the result of one service check (time, ok, error text).';
revoke all on function private.record_integration_test(uuid, text, boolean, text) from public, anon, authenticated;
grant execute on function private.record_integration_test(uuid, text, boolean, text) to service_role;

-- Workers note that a service was just used for the client (at most once a minute).
create function private.note_integration_used(p_client_id uuid, p_service text) returns void
language sql
security definer
set search_path = ''
as $$
  insert into private.client_integrations as i (client_id, service, last_used_at)
  values (p_client_id, p_service, now())
  on conflict (client_id, service) do update set last_used_at = excluded.last_used_at
  where i.last_used_at is null or i.last_used_at < now() - interval '1 minute'
$$;
comment on function private.note_integration_used(uuid, text) is
  'Workers: the service was just used for the client (written at most once a minute).';
revoke all on function private.note_integration_used(uuid, text) from public, anon, authenticated;
grant execute on function private.note_integration_used(uuid, text) to service_role;

revoke all on function private.connect_twilio(text, text, text, text), private.connect_calcom(text, integer, text),
  private.connect_anthropic(text, text), private.disconnect_integration(text), private.test_integrations(),
  public.connect_twilio(text, text, text, text), public.connect_calcom(text, integer, text),
  public.connect_anthropic(text, text), public.disconnect_integration(text), public.get_integrations(),
  public.test_integrations()
  from public, anon;
grant execute on function private.connect_twilio(text, text, text, text), private.connect_calcom(text, integer, text),
  private.connect_anthropic(text, text), private.disconnect_integration(text), private.test_integrations(),
  public.connect_twilio(text, text, text, text), public.connect_calcom(text, integer, text),
  public.connect_anthropic(text, text), public.disconnect_integration(text), public.get_integrations(),
  public.test_integrations()
  to authenticated, service_role;
