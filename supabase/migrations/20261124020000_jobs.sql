-- Jobs: the one contract between the database and the workers, like procrastinate's schema.
--   * jobs: every piece of outside work is a private.jobs row written in the transaction that
--     caused it; workers claim with `for update skip locked` and a lease; handler failures
--     and lost leases are counted apart, each with its own cap;
--   * runtime: snoozing without spending an attempt (defer_job) and a content-free wake-up
--     row in public.job_signals that Supabase Realtime carries (LISTEN/NOTIFY locally);
--   * dead letter: dead jobs stay 30 days, admins see them (public.dead_jobs), retry them
--     (public.retry_dead_job) and are told when jobs start dying.
-- The dead-job alert calls private.notify_staff (03 notifications): plpgsql resolves it when
-- the trigger runs.

-- jobs ------------------------------------------------------------------------------------
-- Durable jobs: every piece of outside work (an SMS, a Claude call, an email) is a row
-- written in the same transaction as the change that caused it. Workers claim with
-- `for update skip locked` and a lease (visibility timeout). Two ways a run can end badly,
-- counted apart:
--   a handler failure   the worker reported it (fail_job): one attempt spent, retried with
--                       backoff, dead after max_attempts;
--   a lost lease        the worker vanished (killed, crashed, cut off) and never reported:
--                       one lease loss, the job goes back to the queue behind the work that
--                       is due (run_at moved back with backoff, so a crash-looping worker
--                       does not take the same jobs first), dead after max_lease_losses.
-- An attempt is counted when the handler's outcome is recorded (complete_job, fail_job),
-- never at claim time, so kills cost lease losses, not attempts; a job whose handler kills
-- its worker every time is still ended by the lease-loss cap. Expired leases are settled in
-- the claim path (claim_jobs) and every minute by the sweeper, so no job stays `running`
-- past its lease for longer than it takes the next claim or sweep to come round.
create type private.job_status as enum ('queued', 'running', 'done', 'dead', 'canceled');
comment on type private.job_status is 'A job: queued, running, done, dead (dead-lettered) or canceled.';

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
  lease_losses integer not null default 0,
  max_lease_losses integer not null default 10 check (max_lease_losses between 1 and 100),
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
comment on column private.jobs.locked_until is
  'Lease end: a running job whose lease passed is a lost lease, settled by the next claim or sweep.';
comment on column private.jobs.attempts is
  'Handler runs whose outcome was recorded (completed or failed); counted then, not at claim time.';
comment on column private.jobs.lease_losses is
  'Runs whose worker vanished before reporting (the lease expired while running).';
comment on column private.jobs.max_lease_losses is
  'Lease losses after which the job is dead-lettered (a handler that kills its worker every time).';
comment on column private.jobs.idempotency_key is 'Enqueueing twice with the same key yields one job.';
comment on column private.jobs.result is 'Output a waiting caller reads back (e.g. an AI draft).';

-- The claim scan: queued work by due time; running work by lease end (lost leases).
create index jobs_claimable_idx on private.jobs (priority, run_at) where status = 'queued';
create index jobs_lease_idx on private.jobs (locked_until) where status = 'running';
create index jobs_client_idx on private.jobs (client_id) where client_id is not null;
create index jobs_dead_idx on private.jobs (finished_at desc) where status = 'dead';

create trigger jobs_touch before update on private.jobs
  for each row execute function private.touch_updated_at();

-- Trigger: one NOTIFY dbr_jobs per enqueue statement wakes the local workers.
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
comment on function private.wake_workers() is
  'Trigger: one NOTIFY dbr_jobs per enqueue statement wakes the local workers.';
create trigger jobs_wake after insert on private.jobs
  for each statement execute function private.wake_workers();

-- Adds a job (or returns the existing one with the same idempotency key).
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

-- Counts a lease loss on every running job (of p_kinds) whose lease passed: re-queued with backoff,
-- or dead-lettered once out of lease losses or attempts.
create function private.settle_lost_leases(p_kinds text[] default null) returns integer
language sql
security definer
set search_path = ''
as $$
  -- Running jobs whose lease passed: their worker vanished. Each is one lease loss; the job
  -- goes back to the queue behind what is due now (run_at = now + 2^(losses-1) s, +-25 %,
  -- capped at 10 minutes) or, out of lease losses or attempts, is dead-lettered here.
  with lost as (
    select j.id
    from private.jobs j
    where j.status = 'running'
      and j.locked_until < now()
      and (p_kinds is null or j.kind = any (p_kinds))
    for update skip locked
  ), settled as (
    update private.jobs j
    set status = case
          when j.lease_losses + 1 >= j.max_lease_losses or j.attempts >= j.max_attempts then 'dead'
          else 'queued'
        end::private.job_status,
        lease_losses = j.lease_losses + 1,
        run_at = now() + make_interval(secs => least(600, power(2, j.lease_losses)) * (0.75 + random() * 0.5)),
        last_error = left(format(
          'lease lost %s time(s): worker %s did not report within its lease%s',
          j.lease_losses + 1, coalesce(j.locked_by, '?'), coalesce(' (last error: ' || j.last_error || ')', '')
        ), 4000),
        locked_until = null,
        locked_by = null,
        finished_at = case
          when j.lease_losses + 1 >= j.max_lease_losses or j.attempts >= j.max_attempts then now()
        end
    from lost
    where j.id = lost.id
    returning 1
  )
  select count(*)::integer from settled
$$;
comment on function private.settle_lost_leases(text[]) is
  'Counts a lease loss on every running job (of p_kinds) whose lease passed: re-queued with backoff, '
  'or dead-lettered once out of lease losses or attempts. Called by claim_jobs and sweep_jobs.';
revoke all on function private.settle_lost_leases(text[]) from public, anon, authenticated;
grant execute on function private.settle_lost_leases(text[]) to service_role;

-- Settles lost leases (settle_lost_leases), then claims up to p_limit due jobs for a worker (skip
-- locked) with a lease of p_visibility_seconds.
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
  -- Lost leases first: nothing is left running past its lease while workers claim.
  select private.settle_lost_leases(p_kinds);
  -- Then due work in order. A due job that can no longer be retried (its caps were lowered,
  -- or it was queued that way) is dead-lettered here instead of being handed out.
  with picked as (
    select j.id
    from private.jobs j
    where j.status = 'queued'
      and j.run_at <= now()
      and (p_kinds is null or j.kind = any (p_kinds))
    order by j.priority, j.run_at
    limit p_limit
    for update skip locked
  ), claimed as (
    update private.jobs j
    set status = case
          when j.attempts >= j.max_attempts or j.lease_losses >= j.max_lease_losses then 'dead'
          else 'running'
        end::private.job_status,
        locked_by = case when j.attempts < j.max_attempts and j.lease_losses < j.max_lease_losses then p_worker end,
        locked_until = case
          when j.attempts < j.max_attempts and j.lease_losses < j.max_lease_losses
            then now() + make_interval(secs => p_visibility_seconds)
        end,
        finished_at = case when j.attempts >= j.max_attempts or j.lease_losses >= j.max_lease_losses then now() end,
        last_error = case
          when j.attempts >= j.max_attempts or j.lease_losses >= j.max_lease_losses
            then coalesce(j.last_error, 'no attempts left')
          else j.last_error
        end
    from picked
    where j.id = picked.id
    returning j.*
  )
  select * from claimed where status = 'running'
$$;
comment on function private.claim_jobs(text, text[], integer, integer) is
  'Settles lost leases (settle_lost_leases), then claims up to p_limit due jobs for a worker (skip locked) '
  'with a lease of p_visibility_seconds. Spends no attempt: attempts are counted when the outcome is recorded.';

-- Marks a claimed job done (the run counts as an attempt); false when the lease was lost meanwhile.
create function private.complete_job(p_id bigint, p_worker text, p_result jsonb default null)
returns boolean
language sql
security definer
set search_path = ''
as $$
  update private.jobs
  set status = 'done', attempts = attempts + 1, result = p_result, finished_at = now(), locked_until = null,
      last_error = null
  where id = p_id and status = 'running' and locked_by = p_worker
  returning true
$$;
comment on function private.complete_job(bigint, text, jsonb) is
  'Marks a claimed job done (the run counts as an attempt); false when the lease was lost meanwhile.';

-- Records a failed run as an attempt: re-queued with backoff, or dead-lettered after the last
-- attempt.
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
  -- This failure is attempt number attempts + 1.
  update private.jobs
  set status = case when p_retry and attempts + 1 < max_attempts then 'queued' else 'dead' end::private.job_status,
      attempts = attempts + 1,
      last_error = left(p_error, 4000),
      locked_until = null,
      locked_by = null,
      -- Exponential backoff with jitter: 2^attempts seconds (capped at an hour) +- 25%.
      run_at = now() + make_interval(secs => coalesce(
        p_retry_in_seconds,
        least(3600, power(2, attempts + 1)) * (0.75 + random() * 0.5)
      )),
      finished_at = case when p_retry and attempts + 1 < max_attempts then null else now() end
  where id = p_id and status = 'running' and locked_by = p_worker
  returning status
$$;
comment on function private.fail_job(bigint, text, text, boolean, integer) is
  'Records a failed run as an attempt: re-queued with backoff, or dead-lettered after the last attempt.';

-- Graceful shutdown: puts a worker's running jobs back in the queue without spending an attempt;
-- returns how many.
create function private.release_jobs(p_worker text) returns integer
language sql
security definer
set search_path = ''
as $$
  -- Graceful shutdown: give back unfinished claims (no attempt was spent on them).
  with released as (
    update private.jobs
    set status = 'queued', locked_until = null, locked_by = null
    where status = 'running' and locked_by = p_worker
    returning 1
  )
  select count(*)::integer from released
$$;
comment on function private.release_jobs(text) is
  'Graceful shutdown: puts a worker''s running jobs back in the queue without spending an attempt; returns how many.';

-- pg_cron sweeper: settles lost leases of every kind (returns how many) and purges old jobs.
create function private.sweep_jobs() returns integer
language sql
security definer
set search_path = ''
as $$
  -- Lost leases of every kind are settled (re-queued with backoff, or dead-lettered) even
  -- while no worker claims; finished jobs older than 7 days are removed (dead ones are kept
  -- 30 days for inspection).
  delete from private.jobs
  where (status in ('done', 'canceled') and finished_at < now() - interval '7 days')
     or (status = 'dead' and finished_at < now() - interval '30 days');
  select private.settle_lost_leases(null);
$$;
comment on function private.sweep_jobs() is
  'pg_cron sweeper: settles lost leases of every kind (returns how many) and purges old jobs.';

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

-- job runtime -----------------------------------------------------------------------------
-- What the worker pool needs beyond the jobs core: snoozing a job without spending an
-- attempt (an SMS deferred to the sending window is not a failure), and a wake-up signal
-- that Supabase Realtime can carry. private.jobs is not in a published schema and must not
-- be: Realtime would stream payloads (phone numbers, message ids) to any subscriber. So
-- every enqueue statement also writes one content-free row into public.job_signals, which
-- is in the supabase_realtime publication and readable by no API role (RLS, no policies;
-- the workers subscribe with the service role). Locally, LISTEN/NOTIFY on `dbr_jobs`
-- (private.wake_workers) does the same job; either way the poll backstop remains the
-- guarantee, the signal only cuts latency.

-- Reschedules a claimed job to p_until without spending an attempt (window, rate limit, or a claim
-- given back).
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

-- Trigger: writes one public.job_signals row per enqueue statement for Realtime subscribers.
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

-- pg_cron: drops wake-up signals older than five minutes.
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

-- dead letter -----------------------------------------------------------------------------
-- Dead letter: a job that used up its attempts (or failed permanently) stays in private.jobs
-- with status 'dead' for 30 days. Admins of the owning client see their dead jobs through
-- public.dead_jobs, can put one back in the queue with public.retry_dead_job(job_id), and get
-- an in-app alert (private.notify_staff) when jobs start dying.

-- Dead-lettered jobs of the caller's client; empty for anyone but an active admin.
create function private.list_dead_jobs() returns table (
  id bigint,
  kind text,
  payload jsonb,
  attempts integer,
  max_attempts integer,
  lease_losses integer,
  last_error text,
  created_at timestamptz,
  finished_at timestamptz
)
language sql
stable
security definer
set search_path = ''
as $$
  select j.id, j.kind, j.payload, j.attempts, j.max_attempts, j.lease_losses, j.last_error, j.created_at,
    j.finished_at
  from private.jobs j
  where j.status = 'dead'
    and j.client_id = (select private.current_client_id())
    and (select private.is_admin())
  order by j.finished_at desc
$$;
comment on function private.list_dead_jobs() is
  'Dead-lettered jobs of the caller''s client; empty for anyone but an active admin.';

create view public.dead_jobs with (security_invoker = true) as
select d.id, d.kind, d.payload, d.attempts, d.max_attempts, d.lease_losses, d.last_error, d.created_at,
  d.finished_at
from private.list_dead_jobs() as d;
comment on view public.dead_jobs is
  'Admin view of background jobs that failed for good (newest first): what, why, when; attempts are '
  'handler failures, lease_losses runs whose worker vanished.';

revoke all on function private.list_dead_jobs() from public, anon;
grant execute on function private.list_dead_jobs() to authenticated, service_role;
revoke all on public.dead_jobs from public, anon, authenticated;
grant select on public.dead_jobs to authenticated, service_role;

-- Puts a dead job of the caller's client back in the queue with fresh attempts (admins only).
create function private.retry_dead_job(p_job_id bigint) returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id bigint;
begin
  if not coalesce((select private.is_admin()), false) then
    perform private.raise_error(403, 'only admins can retry failed jobs');
  end if;
  update private.jobs
  set status = 'queued', attempts = 0, lease_losses = 0, run_at = now(), finished_at = null,
      locked_until = null, locked_by = null
  where id = p_job_id and status = 'dead' and client_id = (select private.current_client_id())
  returning id into v_id;
  if v_id is null then
    perform private.raise_error(404, format('no failed job %s for this client', p_job_id));
  end if;
  return v_id;
end
$$;
comment on function private.retry_dead_job(bigint) is
  'Puts a dead job of the caller''s client back in the queue with fresh attempts (admins only).';
revoke all on function private.retry_dead_job(bigint) from public, anon;
grant execute on function private.retry_dead_job(bigint) to authenticated, service_role;

-- RPC /rest/v1/rpc/retry_dead_job: requeue a dead-lettered job (admins of its client only).
create function public.retry_dead_job(job_id bigint) returns bigint
language sql
security invoker
set search_path = ''
as $$
  select private.retry_dead_job(job_id)
$$;
comment on function public.retry_dead_job(bigint) is
  'RPC /rest/v1/rpc/retry_dead_job: requeue a dead-lettered job (admins of its client only).';
revoke all on function public.retry_dead_job(bigint) from public, anon;
grant execute on function public.retry_dead_job(bigint) to authenticated;

-- Alert ----------------------------------------------------------------------------------
create function private.alert_dead_job() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- One alert per client per quarter hour: a burst of dead jobs (Twilio down for an hour)
  -- should raise one alarm, not a thousand.
  if new.client_id is null or exists (
    select from private.jobs j
    where j.status = 'dead' and j.client_id = new.client_id and j.id <> new.id
      and j.finished_at > now() - interval '15 minutes'
  ) then
    return null;
  end if;
  -- An alert must never stop a job from being recorded as dead.
  begin
    perform private.notify_staff(
      new.client_id,
      'A background job failed',
      format(
        '%s failed after %s attempt(s)%s: %s', new.kind, new.attempts,
        case when new.lease_losses > 0 then format(' and %s lost lease(s)', new.lease_losses) else '' end,
        coalesce(left(new.last_error, 300), 'no error text')
      ),
      'immediate',
      null,
      jsonb_build_object('job_id', new.id, 'kind', new.kind)
    );
  exception when others then
    raise warning 'dead job alert for job % failed: %', new.id, sqlerrm;
  end;
  return null;
end
$$;
comment on function private.alert_dead_job() is
  'Trigger: notifies the client''s staff when a job is dead-lettered (at most once per 15 minutes).';
revoke all on function private.alert_dead_job() from public, anon, authenticated;

create trigger jobs_alert_dead after update of status on private.jobs
  for each row when (new.status = 'dead' and old.status is distinct from 'dead')
  execute function private.alert_dead_job();
