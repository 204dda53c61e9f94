-- pgTAP helpers, created by the test run (never by migrations) in the `tests` schema.
create extension if not exists pgtap with schema extensions;
create schema if not exists tests;
grant usage on schema tests to anon, authenticated, service_role;

create or replace function tests.create_client(p_name text default 'Test client', p_region text default 'GB')
returns uuid
language sql
as $$
  insert into public.clients (name, default_region) values (p_name, p_region) returning id
$$;

create or replace function tests.create_user(
  p_email text,
  p_client_id uuid,
  p_role public.member_role default 'admin',
  p_status public.member_status default 'active',
  p_can_view_all_leads boolean default true,
  p_allowed_dataset_ids uuid[] default null,
  p_can_edit_lessons boolean default false,
  p_can_push_to_live boolean default false,
  p_can_manage_users boolean default false
) returns uuid
language plpgsql
as $$
declare
  v_id uuid := gen_random_uuid();
begin
  insert into auth.users (id, aud, role, email, created_at, updated_at)
  values (v_id, 'authenticated', 'authenticated', p_email, now(), now());
  if p_client_id is not null then
    insert into public.client_members (client_id, user_id, role, status, email, can_view_all_leads,
      allowed_dataset_ids, can_edit_lessons, can_push_to_live, can_manage_users)
    values (p_client_id, v_id, p_role, p_status, p_email, p_can_view_all_leads,
      p_allowed_dataset_ids, p_can_edit_lessons, p_can_push_to_live, p_can_manage_users);
  end if;
  return v_id;
end
$$;

create or replace function tests.authenticate_as(p_user_id uuid) returns void
language plpgsql
as $$
begin
  perform set_config('request.jwt.claims', json_build_object(
    'sub', p_user_id, 'role', 'authenticated', 'aud', 'authenticated',
    'email', (select email from auth.users where id = p_user_id))::text, true);
  perform set_config('role', 'authenticated', true);
end
$$;

create or replace function tests.authenticate_as_service_role() returns void
language plpgsql
as $$
begin
  perform set_config('request.jwt.claims', json_build_object('role', 'service_role')::text, true);
  perform set_config('role', 'service_role', true);
end
$$;

create or replace function tests.clear_authentication() returns void
language plpgsql
as $$
begin
  perform set_config('role', 'postgres', true);
  perform set_config('request.jwt.claims', null, true);
end
$$;

create or replace function tests.authenticate_as_anon() returns void
language plpgsql
as $$
begin
  perform set_config('request.jwt.claims', json_build_object('role', 'anon')::text, true);
  perform set_config('role', 'anon', true);
end
$$;

-- Fixture builders. They run as the caller, so call them as postgres (after
-- tests.clear_authentication()), never while acting as a test user.
create sequence if not exists tests.phone_seq;

create or replace function tests.create_dataset(p_client_id uuid, p_name text default 'Test dataset')
returns uuid
language sql
as $$
  insert into public.datasets (client_id, name) values (p_client_id, p_name) returning id
$$;

create or replace function tests.create_campaign(p_dataset_id uuid, p_m1_template text default 'Hi {first_name}')
returns uuid
language sql
as $$
  insert into public.campaigns (dataset_id, client_id, m1_template)
  select d.id, d.client_id, p_m1_template from public.datasets d where d.id = p_dataset_id
  returning dataset_id
$$;

create or replace function tests.create_lead(
  p_dataset_id uuid,
  p_first_name text default 'Lead',
  p_phone text default null
) returns uuid
language sql
as $$
  -- Unique, valid E.164 numbers by default (+447700000001, +447700000002, ...).
  insert into public.leads (client_id, dataset_id, first_name, phone_number)
  select d.client_id, d.id, p_first_name,
    coalesce(p_phone, '+447700' || lpad(nextval('tests.phone_seq')::text, 6, '0'))
  from public.datasets d where d.id = p_dataset_id
  returning id
$$;

create or replace function tests.create_conversation(p_lead_id uuid) returns uuid
language sql
as $$
  insert into public.conversations (client_id, dataset_id, lead_id)
  select l.client_id, l.dataset_id, l.id from public.leads l where l.id = p_lead_id
  on conflict (lead_id) do update set lead_id = excluded.lead_id
  returning id
$$;

create or replace function tests.create_message(
  p_lead_id uuid,
  p_content text default 'Hello',
  p_direction public.message_direction default 'outbound'
) returns uuid
language sql
as $$
  insert into public.messages (client_id, dataset_id, conversation_id, lead_id, direction,
    message_category, status, content)
  select l.client_id, l.dataset_id, tests.create_conversation(l.id), l.id, p_direction,
    case when p_direction = 'outbound' then 'm1' else 'lead_reply' end::public.message_category,
    case when p_direction = 'outbound' then 'sent' else 'received' end::public.message_status,
    p_content
  from public.leads l where l.id = p_lead_id
  returning id
$$;

-- Two tenants with one member of every kind, for isolation and role tests. Load the ids
-- into psql variables with `select * from tests.create_world() \gset`.
--   A: datasets ds_a1 (with campaign settings) and ds_a2 (without), one lead each, each lead
--      with a conversation and a message, plus an inbound message from an unknown number.
--   B: dataset ds_b1 with campaign settings, a lead, its conversation and a message.
create or replace function tests.create_world() returns table (
  client_a uuid, client_b uuid, ds_a1 uuid, ds_a2 uuid, ds_b1 uuid,
  lead_a1 uuid, lead_a2 uuid, lead_b1 uuid, conv_a1 uuid, conv_a2 uuid, conv_b1 uuid,
  msg_a1 uuid, msg_a2 uuid, msg_b1 uuid, msg_a_orphan uuid,
  a_admin uuid, a_manager uuid, a_rep uuid, a_ro uuid, a_usermgr uuid, a_restricted uuid,
  a_restricted_mgr uuid, a_suspended uuid, a_invited uuid, b_admin uuid, b_rep uuid, loner uuid
)
language plpgsql
as $$
begin
  client_a := tests.create_client('Client A');
  client_b := tests.create_client('Client B');
  ds_a1 := tests.create_dataset(client_a, 'A one');
  ds_a2 := tests.create_dataset(client_a, 'A two');
  ds_b1 := tests.create_dataset(client_b, 'B one');
  perform tests.create_campaign(ds_a1);
  perform tests.create_campaign(ds_b1);
  lead_a1 := tests.create_lead(ds_a1, 'Ann');
  lead_a2 := tests.create_lead(ds_a2, 'Alf');
  lead_b1 := tests.create_lead(ds_b1, 'Bea');
  msg_a1 := tests.create_message(lead_a1, 'Hello Ann');
  msg_a2 := tests.create_message(lead_a2, 'Hello Alf');
  msg_b1 := tests.create_message(lead_b1, 'Hello Bea');
  conv_a1 := (select c.id from public.conversations c where c.lead_id = lead_a1);
  conv_a2 := (select c.id from public.conversations c where c.lead_id = lead_a2);
  conv_b1 := (select c.id from public.conversations c where c.lead_id = lead_b1);
  insert into public.messages (client_id, direction, message_category, status, content, from_number)
  values (client_a, 'inbound', 'lead_reply', 'received', 'Who is this?', '+447700999999')
  returning id into msg_a_orphan;

  a_admin := tests.create_user('a.admin@example.test', client_a, 'admin');
  a_manager := tests.create_user('a.manager@example.test', client_a, 'manager');
  a_rep := tests.create_user('a.rep@example.test', client_a, 'sales_rep');
  a_ro := tests.create_user('a.ro@example.test', client_a, 'read_only');
  a_usermgr := tests.create_user('a.usermgr@example.test', client_a, 'manager',
    p_can_manage_users => true);
  a_restricted := tests.create_user('a.restricted@example.test', client_a, 'sales_rep',
    p_can_view_all_leads => false, p_allowed_dataset_ids => array[ds_a1]);
  a_restricted_mgr := tests.create_user('a.restricted.mgr@example.test', client_a, 'manager',
    p_can_view_all_leads => false, p_allowed_dataset_ids => array[ds_a1]);
  a_suspended := tests.create_user('a.suspended@example.test', client_a, 'admin', 'suspended');
  a_invited := tests.create_user('a.invited@example.test', client_a, 'admin', 'invited');
  b_admin := tests.create_user('b.admin@example.test', client_b, 'admin');
  b_rep := tests.create_user('b.rep@example.test', client_b, 'sales_rep');
  loner := tests.create_user('loner@example.test', null);
  return next;
end
$$;

-- Tables (and views) of schema public in which the current role sees at least one row;
-- with p_client_id, only rows of that client count (client_id, or id for public.clients).
-- "permission denied" counts as seeing nothing. Covers tables added by later migrations too.
create or replace function tests.tables_with_visible_rows(p_client_id uuid default null)
returns setof text
language plpgsql
as $$
declare
  r record;
  v_found boolean;
begin
  for r in
    select c.relname::text as name,
      exists (
        select from pg_catalog.pg_attribute a
        where a.attrelid = c.oid and a.attname = 'client_id' and not a.attisdropped
      ) as has_client_id
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'f')
    order by 1
  loop
    begin
      if p_client_id is null then
        execute format('select exists (select from public.%I)', r.name) into v_found;
      elsif r.name = 'clients' then
        execute 'select exists (select from public.clients where id = $1)' into v_found using p_client_id;
      elsif r.has_client_id then
        execute format('select exists (select from public.%I where client_id = $1)', r.name)
          into v_found using p_client_id;
      else
        v_found := false;
      end if;
    exception when insufficient_privilege then
      v_found := false;
    end;
    if v_found then
      return next r.name;
    end if;
  end loop;
end
$$;

-- Supabase puts `extensions` on the database search_path; do the same so pgTAP's functions
-- resolve unqualified in every test file (pg_prove opens a new session per file).
do $$
begin
  execute format('alter database %I set search_path = "$user", public, extensions', current_database());
end
$$;

grant usage on sequence tests.phone_seq to anon, authenticated, service_role;
grant execute on all functions in schema tests to anon, authenticated, service_role;

-- The HTTP status PostgREST answers for an error (its documented SQLSTATE table, for the codes
-- the schema raises): PGRST carries its own status in the detail JSON.
create or replace function tests.postgrest_status(p_sqlstate text, p_detail text, p_authed boolean)
returns integer
language sql
immutable
as $$
  select case
    when p_sqlstate = 'PGRST' then (p_detail::jsonb ->> 'status')::integer
    when p_sqlstate = '42501' then case when p_authed then 403 else 401 end
    when p_sqlstate in ('23503', '23505') then 409
    when p_sqlstate = 'P0001' then 400
    when p_sqlstate in ('42883', '42P01') then 404
    when p_sqlstate = '25006' then 405
    when left(p_sqlstate, 2) in ('08', '53') and p_sqlstate <> '53400' then 503
    when left(p_sqlstate, 2) in ('0L', '0P', '28') then 403
    when left(p_sqlstate, 2) in ('09', '25', '2D', '38', '39', '3B', '40', '53', '54', '55', '57', '58', 'F0', 'HV', 'P0', 'XX')
      or p_sqlstate = '42P17' then 500
    else 400
  end
$$;

-- Like pgTAP's throws_ok, but asserts what a PostgREST client sees: the HTTP status (and the
-- message of the body) of the error p_sql raises, as the current role and JWT claims.
create or replace function tests.throws_status(
  p_sql text, p_status integer, p_message text default null, p_description text default null
) returns text
language plpgsql
as $$
declare
  v_state text;
  v_msg text;
  v_detail text;
  v_status integer;
  v_authed boolean := coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role', 'anon') <> 'anon';
begin
  begin
    execute p_sql;
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate, v_msg = message_text, v_detail = pg_exception_detail;
  end;
  if v_state is null then
    return ok(false, p_description) || E'\n' || diag(format('    no error raised; wanted HTTP %s', p_status));
  end if;
  v_status := tests.postgrest_status(v_state, v_detail, v_authed);
  if v_state = 'PGRST' then
    v_msg := v_msg::jsonb ->> 'message';
  end if;
  if v_status = p_status and (p_message is null or v_msg = p_message) then
    return ok(true, p_description);
  end if;
  return ok(false, p_description) || E'\n' || diag(format(
    E'    caught: HTTP %s (%s): %s\n    wanted: HTTP %s: %s', v_status, v_state, v_msg, p_status, coalesce(p_message, '(any message)')
  ));
end
$$;

-- null when the statement succeeds, else the error as a PostgREST client would see it
-- (PGRST: its body and http detail parsed; any other SQLSTATE: code and message).
create or replace function tests.error_of(p_sql text) returns jsonb
language plpgsql
as $$
declare
  v_state text;
  v_msg text;
  v_detail text;
begin
  execute p_sql;
  return null;
exception when others then
  get stacked diagnostics v_state = returned_sqlstate, v_msg = message_text, v_detail = pg_exception_detail;
  if v_state = 'PGRST' then
    return jsonb_build_object('sqlstate', v_state, 'body', v_msg::jsonb, 'http', v_detail::jsonb);
  end if;
  return jsonb_build_object('sqlstate', v_state, 'message', v_msg);
end
$$;

-- How many of p_calls runs of p_sql succeed (for budgets and rate limits).
create or replace function tests.succeeds_times(p_calls integer, p_sql text) returns integer
language plpgsql
as $$
declare
  v_ok integer := 0;
begin
  for i in 1..p_calls loop
    if tests.error_of(p_sql) is null then
      v_ok := v_ok + 1;
    end if;
  end loop;
  return v_ok;
end
$$;
