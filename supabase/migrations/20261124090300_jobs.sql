-- Durable jobs: every piece of outside work (an SMS, a Claude call, an email) is a row
-- written in the same transaction as the change that caused it. Workers claim with
-- `for update skip locked` and a visibility timeout; a crashed worker's job becomes
-- claimable again when its lock expires. Failures retry with backoff, then dead-letter.

create type private.job_status as enum ('queued', 'running', 'done', 'dead', 'canceled');

create table private.jobs (
  id bigint generated always as identity primary key,
  kind text not null check (kind ~ '^[a-z][a-z0-9_.]*$'),
  payload jsonb not null default '{}'::jsonb,
  client_id uuid references public.clients (id) on delete cascade,
  status private.job_status not null default 'queued',
  priority smallint not null default 100,
  run_at timestamptz not null default now(),
  attempts integer not null default 0,
  max_attempts integer not null default 5 check (max_attempts between 1 and 100),
  locked_until timestamptz,
  locked_by text,
  last_error text,
  idempotency_key text unique,
  result jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz
);
comment on table private.jobs is 'Durable work queue for workers (SMS sends, AI calls, notifications).';
comment on column private.jobs.locked_until is 'Visibility timeout: a running job whose lock passed is claimable again.';
comment on column private.jobs.idempotency_key is 'Enqueueing twice with the same key yields one job.';
comment on column private.jobs.result is 'Output a waiting caller reads back (e.g. an AI draft).';

-- The claim scan: queued work by due time, plus running work whose lock expired.
create index jobs_claimable_idx on private.jobs (priority, run_at) where status in ('queued', 'running');
create index jobs_client_idx on private.jobs (client_id) where client_id is not null;
create index jobs_dead_idx on private.jobs (finished_at desc) where status = 'dead';

create trigger jobs_touch before update on private.jobs
  for each row execute function private.touch_updated_at();

create function private.wake_workers() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- One signal per statement, not per row: a bulk enqueue of 1M rows wakes workers once.
  perform pg_catalog.pg_notify('dbr_jobs', tg_table_name);
  return null;
end
$$;
create trigger jobs_wake after insert on private.jobs
  for each statement execute function private.wake_workers();

create function private.enqueue_job(
  p_kind text,
  p_payload jsonb default '{}'::jsonb,
  p_run_at timestamptz default now(),
  p_idempotency_key text default null,
  p_client_id uuid default null,
  p_max_attempts integer default 5,
  p_priority smallint default 100
) returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id bigint;
begin
  insert into private.jobs (kind, payload, run_at, idempotency_key, client_id, max_attempts, priority)
  values (p_kind, p_payload, coalesce(p_run_at, now()), p_idempotency_key, p_client_id, p_max_attempts, p_priority)
  on conflict (idempotency_key) do nothing
  returning id into v_id;
  if v_id is null then
    select j.id into v_id from private.jobs j where j.idempotency_key = p_idempotency_key;
  end if;
  return v_id;
end
$$;
comment on function private.enqueue_job(text, jsonb, timestamptz, text, uuid, integer, smallint) is
  'Adds a job (or returns the existing one with the same idempotency key).';

create function private.claim_jobs(
  p_worker text,
  p_kinds text[] default null,
  p_limit integer default 1,
  p_visibility_seconds integer default 120
) returns setof private.jobs
language sql
security definer
set search_path = ''
as $$
  with picked as (
    select j.id
    from private.jobs j
    where j.status in ('queued', 'running')
      and j.run_at <= now()
      and (j.status = 'queued' or j.locked_until < now())
      and j.attempts < j.max_attempts
      and (p_kinds is null or j.kind = any (p_kinds))
    order by j.priority, j.run_at
    limit p_limit
    for update skip locked
  )
  update private.jobs j
  set status = 'running',
      attempts = j.attempts + 1,
      locked_by = p_worker,
      locked_until = now() + make_interval(secs => p_visibility_seconds)
  from picked
  where j.id = picked.id
  returning j.*
$$;
comment on function private.claim_jobs(text, text[], integer, integer) is
  'Claims up to p_limit due jobs for a worker (skip locked), with a visibility timeout.';

create function private.complete_job(p_id bigint, p_worker text, p_result jsonb default null)
returns boolean
language sql
security definer
set search_path = ''
as $$
  update private.jobs
  set status = 'done', result = p_result, finished_at = now(), locked_until = null, last_error = null
  where id = p_id and status = 'running' and locked_by = p_worker
  returning true
$$;
comment on function private.complete_job(bigint, text, jsonb) is
  'Marks a claimed job done; false when the claim was lost (lock expired and re-claimed).';

create function private.fail_job(
  p_id bigint,
  p_worker text,
  p_error text,
  p_retry boolean default true,
  p_retry_in_seconds integer default null
) returns private.job_status
language sql
security definer
set search_path = ''
as $$
  update private.jobs
  set status = case when p_retry and attempts < max_attempts then 'queued' else 'dead' end::private.job_status,
      last_error = left(p_error, 4000),
      locked_until = null,
      -- Exponential backoff with jitter: 2^attempts seconds (capped at an hour) +- 25%.
      run_at = now() + make_interval(secs => coalesce(
        p_retry_in_seconds,
        least(3600, power(2, attempts)) * (0.75 + random() * 0.5)
      )),
      finished_at = case when p_retry and attempts < max_attempts then null else now() end
  where id = p_id and status = 'running' and locked_by = p_worker
  returning status
$$;
comment on function private.fail_job(bigint, text, text, boolean, integer) is
  'Records a failed attempt: re-queued with backoff, or dead-lettered after the last attempt.';

create function private.release_jobs(p_worker text) returns integer
language sql
security definer
set search_path = ''
as $$
  -- Graceful shutdown: give back unfinished claims without spending an attempt.
  with released as (
    update private.jobs
    set status = 'queued', attempts = greatest(attempts - 1, 0), locked_until = null, locked_by = null
    where status = 'running' and locked_by = p_worker
    returning 1
  )
  select count(*)::integer from released
$$;

create function private.sweep_jobs() returns integer
language sql
security definer
set search_path = ''
as $$
  -- Running jobs whose lock expired after their last attempt are dead-lettered; finished
  -- jobs older than 7 days are removed (dead ones are kept 30 days for inspection).
  with dead as (
    update private.jobs
    set status = 'dead', finished_at = now(),
        last_error = coalesce(last_error, 'worker lost the job after its last attempt')
    where status = 'running' and locked_until < now() and attempts >= max_attempts
    returning 1
  ), purged as (
    delete from private.jobs
    where (status in ('done', 'canceled') and finished_at < now() - interval '7 days')
       or (status = 'dead' and finished_at < now() - interval '30 days')
    returning 1
  )
  select (select count(*) from dead)::integer
$$;
comment on function private.sweep_jobs() is 'pg_cron sweeper: dead-letters lost jobs and purges old ones.';

revoke all on private.jobs from public, anon, authenticated;
revoke all on function private.enqueue_job(text, jsonb, timestamptz, text, uuid, integer, smallint),
  private.claim_jobs(text, text[], integer, integer), private.complete_job(bigint, text, jsonb),
  private.fail_job(bigint, text, text, boolean, integer), private.release_jobs(text),
  private.sweep_jobs() from public, anon, authenticated;
grant all on private.jobs to service_role;
grant execute on function private.enqueue_job(text, jsonb, timestamptz, text, uuid, integer, smallint),
  private.claim_jobs(text, text[], integer, integer), private.complete_job(bigint, text, jsonb),
  private.fail_job(bigint, text, text, boolean, integer), private.release_jobs(text),
  private.sweep_jobs() to service_role;

select private.schedule_cron('sweep-jobs', '* * * * *', 'select private.sweep_jobs()');
