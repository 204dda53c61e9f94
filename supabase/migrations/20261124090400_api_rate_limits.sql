-- Per-user API rate limit, kept in the database so every API process shares one count.

create unlogged table private.api_rate_limits (
  subject text not null,
  window_start timestamptz not null,
  hits integer not null default 0,
  primary key (subject, window_start)
);
comment on table private.api_rate_limits is
  'Fixed one-minute windows of API hits per subject (user id or client address). Unlogged: losing counts on a crash is harmless.';

create function private.hit_api_rate_limit(p_subject text, p_limit integer)
returns table (allowed boolean, hits integer, retry_after_seconds integer)
language sql
security definer
set search_path = ''
as $$
  insert into private.api_rate_limits as r (subject, window_start, hits)
  values (p_subject, date_trunc('minute', now()), 1)
  on conflict (subject, window_start) do update set hits = r.hits + 1
  returning r.hits <= p_limit,
            r.hits,
            greatest(1, ceil(extract(epoch from (r.window_start + interval '1 minute' - now())))::integer)
$$;
comment on function private.hit_api_rate_limit(text, integer) is
  'Counts one request for a subject in the current minute; says whether it is allowed and when to retry.';

create function private.purge_api_rate_limits() returns void
language sql
security definer
set search_path = ''
as $$
  delete from private.api_rate_limits where window_start < now() - interval '5 minutes'
$$;

revoke all on private.api_rate_limits from public, anon, authenticated;
revoke all on function private.hit_api_rate_limit(text, integer), private.purge_api_rate_limits()
  from public, anon, authenticated;
grant execute on function private.hit_api_rate_limit(text, integer) to service_role;

select private.schedule_cron('purge-api-rate-limits', '*/5 * * * *', 'select private.purge_api_rate_limits()');
