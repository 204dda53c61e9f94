-- Supabase-compatibility bootstrap for a plain PostgreSQL cluster.
--
-- Creates the objects that Supabase's Postgres image ships and that the migrations rely
-- on: the API roles, the auth schema with auth.users and auth.uid()/role()/jwt(), a minimal
-- storage schema, the extensions schema and the supabase_realtime publication. Every
-- object is skipped where it already exists, so running this against a real Supabase
-- database changes nothing. It is NOT a migration: hosted Supabase already has all of it.

do $$
begin
  if not exists (select from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit password 'postgres';
  end if;
  if not exists (select from pg_roles where rolname = 'supabase_realtime_admin') then
    create role supabase_realtime_admin nologin noinherit;
  end if;
end
$$;

grant anon, authenticated, service_role to authenticator;

create schema if not exists extensions;
grant usage on schema extensions to anon, authenticated, service_role;
create extension if not exists pgcrypto with schema extensions;
create extension if not exists "uuid-ossp" with schema extensions;
-- On by default on a hosted project: slow statements are found the same way locally.
do $$
begin
  if exists (select from pg_available_extensions where name = 'pg_stat_statements') then
    create extension if not exists pg_stat_statements with schema extensions;
  end if;
end
$$;

-- What Supabase grants on public: API roles reach every object, RLS decides the rows.
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;

-- auth --------------------------------------------------------------------------------
create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

create table if not exists auth.users (
  instance_id uuid,
  id uuid primary key,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  invited_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  phone text,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  deleted_at timestamptz
);

do $$
begin
  if not exists (
    select from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'auth' and p.proname = 'uid'
  ) then
    create function auth.uid() returns uuid language sql stable as $f$
      select coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
      )::uuid
    $f$;
  end if;
  if not exists (
    select from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'auth' and p.proname = 'role'
  ) then
    create function auth.role() returns text language sql stable as $f$
      select coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
      )::text
    $f$;
  end if;
  if not exists (
    select from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'auth' and p.proname = 'jwt'
  ) then
    create function auth.jwt() returns jsonb language sql stable as $f$
      select coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
      )::jsonb
    $f$;
  end if;
  if not exists (
    select from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'auth' and p.proname = 'email'
  ) then
    create function auth.email() returns text language sql stable as $f$
      select (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')::text
    $f$;
  end if;
end
$$;

grant execute on all functions in schema auth to anon, authenticated, service_role;

-- storage (only what the migrations touch: buckets and objects) --------------------------
create schema if not exists storage;
grant usage on schema storage to anon, authenticated, service_role;

create table if not exists storage.buckets (
  id text primary key,
  name text not null unique,
  owner uuid,
  public boolean default false,
  file_size_limit bigint,
  allowed_mime_types text[],
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);

create table if not exists storage.objects (
  id uuid primary key default extensions.gen_random_uuid(),
  bucket_id text references storage.buckets (id),
  name text,
  owner uuid,
  metadata jsonb,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);

-- realtime ------------------------------------------------------------------------------
do $$
begin
  if not exists (select from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$$;

-- auth.users columns GoTrue keeps and the local Auth stand-in uses (invite links, bans) ------
do $$
declare
  v_col text;
  v_type text;
begin
  for v_col, v_type in values ('confirmation_token', 'varchar(255)'), ('confirmation_sent_at', 'timestamptz'),
    ('recovery_token', 'varchar(255)'), ('recovery_sent_at', 'timestamptz'), ('banned_until', 'timestamptz')
  loop
    if not exists (
      select from information_schema.columns
      where table_schema = 'auth' and table_name = 'users' and column_name = v_col
    ) then
      execute format('alter table auth.users add column %I %s', v_col, v_type);
    end if;
  end loop;
end
$$;

-- vault ---------------------------------------------------------------------------------
-- Supabase Vault where the extension exists; otherwise the same interface (vault.secrets,
-- vault.create_secret, vault.update_secret, vault.decrypted_secrets) over pgcrypto, with the
-- key in a table only the superuser can read. Nothing in vault is granted to the API roles, and
-- the functions run with the caller's rights (so only privileged logins can use them).
do $$
begin
  if exists (select from pg_namespace where nspname = 'vault') then
    return;
  end if;
  if exists (select from pg_available_extensions where name = 'supabase_vault') then
    create extension supabase_vault;
    return;
  end if;
  create schema vault;
  revoke all on schema vault from public;
  create table vault.local_key (id boolean primary key default true check (id), key text not null);
  insert into vault.local_key (key) values (encode(extensions.gen_random_bytes(32), 'hex'));
  create table vault.secrets (
    id uuid primary key default extensions.gen_random_uuid(),
    name text unique,
    description text not null default '',
    secret text not null,
    key_id uuid,
    nonce bytea,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
  );
  create function vault.create_secret(
    new_secret text, new_name text default null, new_description text default '', new_key_id uuid default null
  ) returns uuid language sql set search_path = '' as $f$
    insert into vault.secrets (name, description, secret, key_id)
    values (new_name, coalesce(new_description, ''),
            encode(extensions.pgp_sym_encrypt(new_secret, (select key from vault.local_key)), 'base64'),
            new_key_id)
    returning id
  $f$;
  create function vault.update_secret(
    secret_id uuid, new_secret text default null, new_name text default null,
    new_description text default null, new_key_id uuid default null
  ) returns void language sql set search_path = '' as $f$
    update vault.secrets s set
      secret = coalesce(encode(extensions.pgp_sym_encrypt(new_secret, (select key from vault.local_key)), 'base64'), s.secret),
      name = coalesce(new_name, s.name),
      description = coalesce(new_description, s.description),
      key_id = coalesce(new_key_id, s.key_id),
      updated_at = now()
    where s.id = secret_id
  $f$;
  create view vault.decrypted_secrets as
    select s.*, extensions.pgp_sym_decrypt(decode(s.secret, 'base64'), k.key) as decrypted_secret
    from vault.secrets s cross join vault.local_key k;
  revoke all on all tables in schema vault from public;
  revoke all on all functions in schema vault from public;
end
$$;
