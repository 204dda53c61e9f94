-- Extensions the schema relies on, the private schema for internals and shared helpers.

create extension if not exists pg_trgm with schema extensions;

-- pg_cron lives in exactly one database per cluster (cron.database_name: `postgres` on
-- Supabase and locally). Throw-away test databases skip it; their ticks are called directly.
do $$
begin
  if exists (select from pg_available_extensions where name = 'pg_cron')
     and current_database() = coalesce(current_setting('cron.database_name', true), 'postgres') then
    create extension if not exists pg_cron with schema pg_catalog;
  end if;
end
$$;

create schema if not exists private;
comment on schema private is
  'Internal tables (jobs, rate limits) and security-definer helpers. Never exposed through PostgREST.';
revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

-- Functions are not executable by everyone unless granted explicitly. Beware: per-schema
-- default privileges cannot take away PUBLIC's global execute default, so every new function
-- still needs `revoke ... from public, anon` (supabase/tests/001_schema_guards.sql checks it).
alter default privileges in schema private revoke execute on functions from public;
alter default privileges in schema public revoke execute on functions from public;
alter default privileges in schema public revoke execute on functions from anon;

create function private.touch_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end
$$;
comment on function private.touch_updated_at() is 'Trigger: keeps updated_at current on every update.';

create function private.schedule_cron(job_name text, schedule text, command text) returns void
language plpgsql
set search_path = ''
as $$
begin
  -- No-op where pg_cron is not installed (test databases); idempotent by job name.
  if exists (select from pg_catalog.pg_extension where extname = 'pg_cron') then
    execute format('select cron.schedule(%L, %L, %L)', job_name, schedule, command);
  end if;
end
$$;
comment on function private.schedule_cron(text, text, text) is
  'Schedules (or reschedules) a named pg_cron job when pg_cron exists in this database.';
revoke all on function private.schedule_cron(text, text, text) from public, anon, authenticated;
