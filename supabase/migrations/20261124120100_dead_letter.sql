-- Dead letter: a job that used up its attempts (or failed permanently) stays in private.jobs
-- with status 'dead' for 30 days. Admins of the owning client see their dead jobs through
-- public.dead_jobs, can put one back in the queue with public.retry_dead_job(job_id), and get
-- an in-app/e-mail alert (private.notify_staff) when jobs start dying.

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
