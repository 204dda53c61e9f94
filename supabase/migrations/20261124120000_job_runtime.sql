-- What the worker pool needs beyond the jobs core: snoozing a job without spending an
-- attempt (an SMS deferred to the sending window is not a failure), and a wake-up signal
-- that Supabase Realtime can carry. private.jobs is not in a published schema and must not
-- be: Realtime would stream payloads (phone numbers, message ids) to any subscriber. So
-- every enqueue statement also writes one content-free row into public.job_signals, which
-- is in the supabase_realtime publication and readable by no API role (RLS, no policies;
-- the workers subscribe with the service role). Locally, LISTEN/NOTIFY on `dbr_jobs`
-- (private.wake_workers) does the same job; either way the poll backstop remains the
-- guarantee, the signal only cuts latency.

create function private.defer_job(
  p_id bigint,
  p_worker text,
  p_until timestamptz,
  p_reason text default null
) returns boolean
language sql
security definer
set search_path = ''
as $$
  -- Gives the claim back and reschedules without counting an attempt, so a message waiting
  -- for its window or its rate limit never runs out of attempts.
  update private.jobs
  set status = 'queued',
      run_at = greatest(coalesce(p_until, now()), now()),
      locked_until = null,
      locked_by = null,
      last_error = case when p_reason is null then last_error else 'deferred: ' || left(p_reason, 200) end
  where id = p_id and status = 'running' and locked_by = p_worker
  returning true
$$;
comment on function private.defer_job(bigint, text, timestamptz, text) is
  'Reschedules a claimed job to p_until without spending an attempt (window, rate limit, or a claim given back).';

revoke all on function private.defer_job(bigint, text, timestamptz, text) from public, anon, authenticated;
grant execute on function private.defer_job(bigint, text, timestamptz, text) to service_role;

-- Realtime wake-up signal ----------------------------------------------------------------
create table public.job_signals (
  id bigint generated always as identity primary key,
  signaled_at timestamptz not null default now()
);
comment on table public.job_signals is
  'Content-free wake-up rows for workers subscribed through Supabase Realtime; one per enqueue statement, pruned every minute.';

alter table public.job_signals enable row level security;
-- No policy: API users see nothing. The workers subscribe with the service role (bypasses RLS).
revoke all on public.job_signals from public, anon, authenticated;
grant select on public.job_signals to service_role;

create function private.signal_job_workers() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- One row per statement (like the NOTIFY), so a bulk enqueue signals once.
  insert into public.job_signals default values;
  return null;
end
$$;
comment on function private.signal_job_workers() is
  'Trigger: writes one public.job_signals row per enqueue statement for Realtime subscribers.';
revoke all on function private.signal_job_workers() from public, anon, authenticated;

create trigger jobs_signal_realtime after insert on private.jobs
  for each statement execute function private.signal_job_workers();

create function private.prune_job_signals() returns integer
language sql
security definer
set search_path = ''
as $$
  with gone as (
    delete from public.job_signals where signaled_at < now() - interval '5 minutes' returning 1
  )
  select count(*)::integer from gone
$$;
comment on function private.prune_job_signals() is 'pg_cron: drops wake-up signals older than five minutes.';
revoke all on function private.prune_job_signals() from public, anon, authenticated;
grant execute on function private.prune_job_signals() to service_role;

alter publication supabase_realtime add table public.job_signals;

select private.schedule_cron('prune-job-signals', '* * * * *', 'select private.prune_job_signals()');
