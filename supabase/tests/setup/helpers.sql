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

grant execute on all functions in schema tests to anon, authenticated, service_role;
