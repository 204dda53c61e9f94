-- Foundation: what every domain builds on.
--   * extensions (pg_trgm; pg_cron where the database may hold it) and the private schema,
--     the home of internal tables and security-definer helpers, never exposed by PostgREST;
--   * default privileges: no function is executable by PUBLIC or anon unless granted;
--   * shared helpers: private.touch_updated_at (trigger), private.schedule_cron (idempotent
--     pg_cron jobs), private.raise_error (the one way SQL refuses a request: PostgREST answers
--     it with the API contract's status and {code, message, details}), and the JSON patch
--     readers the RPCs use to read bodies (400 naming the field).
-- Band 00: migrations and pgTAP files (supabase/tests/00x_*.sql) share the band numbers.

-- extensions, the private schema, shared helpers ------------------------------------------
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
-- still needs `revoke ... from public, anon` (supabase/tests/000_schema_guards.sql checks it).
alter default privileges in schema private revoke execute on functions from public;
alter default privileges in schema public revoke execute on functions from public;
alter default privileges in schema public revoke execute on functions from anon;

-- Trigger: keeps updated_at current on every update.
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

-- Schedules (or reschedules) a named pg_cron job when pg_cron exists in this database.
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

-- The one way a SQL function refuses a request. PostgREST answers SQLSTATE 'PGRST' with the
-- status and headers of `detail` and the body of `message`, so the frontend (supabase-js
-- `error`) sees the API contract's {code, message, details} with the contract's status;
-- api/ and `dbr rpc` translate the same SQLSTATE the same way. Plain SQLSTATEs would not do:
-- PostgREST answers P0002 (no_data_found) with 500.
create function private.raise_error(
  status integer,
  message text,
  details jsonb default null,
  code text default null,
  headers jsonb default null
) returns void
language plpgsql
set search_path = ''
as $$
begin
  raise sqlstate 'PGRST' using
    message = pg_catalog.json_build_object(
      'code', coalesce(code, case status
        when 400 then 'VALIDATION_ERROR' when 401 then 'UNAUTHORIZED' when 403 then 'FORBIDDEN'
        when 404 then 'NOT_FOUND' when 409 then 'CONFLICT' when 429 then 'RATE_LIMITED'
        else 'ERROR' end),
      'message', message,
      'details', details,
      'hint', null)::text,
    detail = pg_catalog.json_build_object('status', status, 'headers', coalesce(headers, '{}'::jsonb))::text;
end
$$;
comment on function private.raise_error(integer, text, jsonb, text, jsonb) is
  'Raises PostgREST''s custom error (SQLSTATE PGRST): HTTP `status`, body {code, message, details}. '
  'code defaults from the status: 400 VALIDATION_ERROR, 401 UNAUTHORIZED, 403 FORBIDDEN, 404 NOT_FOUND, '
  '409 CONFLICT, 429 RATE_LIMITED.';
revoke all on function private.raise_error(integer, text, jsonb, text, jsonb) from public, anon;
grant execute on function private.raise_error(integer, text, jsonb, text, jsonb) to authenticated, service_role;

-- JSON patch readers ----------------------------------------------------------------------
-- Readers of the JSON bodies and patches the RPCs take: each raises 400 naming the field.

-- Reads a nullable timestamptz from a JSON patch, raising 400 with the field name when malformed.
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

-- Raises 400 naming every key of a JSON patch that is not in the allowed list.
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

-- Reads a trimmed text field from a JSON patch (blank becomes null); 400 when not a string.
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

-- Reads an enum value (as text) from a JSON patch; 400 listing the allowed values otherwise.
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

-- Reads a boolean from a JSON patch; 400 otherwise.
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

-- Reads a nullable uuid from a JSON patch; 400 when malformed.
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


revoke all on function private.parse_timestamptz_field(jsonb, text),
  private.reject_unknown_keys(jsonb, text []),
  private.text_field(jsonb, text),
  private.enum_field(jsonb, text, text [], boolean),
  private.boolean_field(jsonb, text),
  private.uuid_field(jsonb, text)
from public, anon;
grant execute on function private.parse_timestamptz_field(jsonb, text),
  private.reject_unknown_keys(jsonb, text []),
  private.text_field(jsonb, text),
  private.enum_field(jsonb, text, text [], boolean),
  private.boolean_field(jsonb, text),
  private.uuid_field(jsonb, text)
to authenticated, service_role;

-- statistics -------------------------------------------------------------------------------
-- Standard normal CDF, Abramowitz & Stegun 26.2.17 (absolute error < 7.5e-8).
create function private.normal_cdf(p_x double precision) returns double precision
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
  v_x double precision := abs(p_x);
  v_t double precision := 1.0 / (1.0 + 0.2316419 * v_x);
  v_tail double precision;
begin
  if v_x > 37 then
    -- exp() underflows beyond this; the tail is below 1e-300.
    return case when p_x >= 0 then 1.0 else 0.0 end;
  end if;
  v_tail := exp(-v_x * v_x / 2.0) / sqrt(2.0 * pi()) * v_t
    * (0.319381530 + v_t * (-0.356563782 + v_t * (1.781477937 + v_t * (-1.821255978 + v_t * 1.330274429))));
  return case when p_x >= 0 then 1.0 - v_tail else v_tail end;
end
$$;
comment on function private.normal_cdf(double precision) is
  'Standard normal cumulative distribution (A&S 26.2.17): the significance tests of Sophie''s patterns and of analytics.';
revoke all on function private.normal_cdf(double precision) from public, anon;
grant execute on function private.normal_cdf(double precision) to authenticated, service_role;
