-- Stranded sends. A message is stranded when it is `sending` with no Twilio SID (its attempt
-- was recorded, its result never was: the worker died between Twilio and the database) and
-- no live sms.send run will look at it: its job is dead (out of attempts or lease losses),
-- gone, finished, or running past its lease. Whether Twilio took it is unknown, so before
-- anything else happens to it the message is looked up at Twilio (To, From, body, since the
-- attempt), by an sms.reconcile job, which the workers run (pg_cron cannot call Twilio):
--   found      recorded as sent with its SID and status (record_send_result); a dead send
--              job is closed as done, its work was in fact done;
--   not found  the attempt is released (message back to pending): a send job with tries
--              left sends it once more; a dead one stays dead-lettered (an admin's
--              retry_dead_job then sends it, once).
-- The same reconcile step (private.reconcile_send) serves the sms.send job itself when its
-- prepare_send answers `reconcile`. Releasing is guarded by the attempt number, so a lookup
-- that found nothing can never release a newer attempt that is in flight.
-- Reconcile jobs are enqueued when a send job dies with its message stranded (trigger), and
-- every minute for anything else stranded, e.g. while no worker ran (pg_cron).

-- The minute's scan reads only messages mid-attempt (a handful, whatever the table's size).
create index messages_sending_idx on public.messages (send_started_at) where status = 'sending' and twilio_sid is null;

create function private.send_job_key(p_message_id uuid) returns text
language sql
immutable
set search_path = ''
as $$
  select 'sms.send:' || p_message_id::text
$$;
comment on function private.send_job_key(uuid) is 'Idempotency key of a message''s sms.send job (see queue_sms).';

create function private.stranded_send(p_message_id uuid) returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  -- What a Twilio lookup needs, while the message is still mid-attempt; null once resolved.
  select jsonb_build_object(
    'action', 'reconcile', 'message_id', m.id, 'to', m.to_number, 'from', m.from_number, 'body', m.content,
    'attempted_at', m.send_started_at, 'attempts', m.send_attempts
  )
  from public.messages m
  where m.id = p_message_id and m.status = 'sending' and m.twilio_sid is null
$$;
comment on function private.stranded_send(uuid) is
  'The attempt data (to, from, body, attempted_at, attempts) of a message still sending without a SID, else null.';

create function private.reconcile_send(
  p_message_id uuid,
  p_attempt integer,
  p_twilio_sid text default null,
  p_status text default null,
  p_segments integer default null
) returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_msg public.messages;
  v_job private.jobs;
begin
  select m.* into v_msg from public.messages m where m.id = p_message_id for update;
  if not found then
    return 'gone';
  end if;
  select j.* into v_job from private.jobs j where j.idempotency_key = private.send_job_key(p_message_id) for update;

  if p_twilio_sid is not null then
    -- Twilio has it: the lead got the message. Recording is idempotent (first SID wins).
    perform private.record_send_result(p_message_id, p_twilio_sid, coalesce(p_status, 'queued'), null, null, p_segments);
    if v_job.status = 'dead' then
      update private.jobs j
      set status = 'done', finished_at = now(),
          result = jsonb_build_object('status', 'reconciled', 'sid', p_twilio_sid),
          last_error = left('reconciled after dead-lettering: ' || coalesce(j.last_error, ''), 4000)
      where j.id = v_job.id;
    end if;
    return 'recorded';
  end if;

  -- Not at Twilio: release exactly the attempt that was looked up, never a newer one.
  if v_msg.status <> 'sending' or v_msg.twilio_sid is not null or v_msg.send_attempts <> p_attempt then
    return 'moved_on';
  end if;
  update public.messages m
  set status = 'pending', send_started_at = null,
      error_message = case when v_job.status = 'dead' then 'not sent: its send job was dead-lettered' else m.error_message end
  where m.id = p_message_id;
  -- One more try for a job that still has tries; a finished or missing job gets one back.
  if v_job.id is null then
    perform private.enqueue_job(
      'sms.send', jsonb_build_object('message_id', p_message_id), now(), private.send_job_key(p_message_id),
      v_msg.client_id
    );
  elsif v_job.status in ('done', 'canceled') then
    update private.jobs j
    set status = 'queued', run_at = now(), finished_at = null, locked_by = null, locked_until = null
    where j.id = v_job.id;
  end if;
  return case when v_job.status = 'dead' then 'released_dead' else 'released' end;
end
$$;
comment on function private.reconcile_send(uuid, integer, text, text, integer) is
  'Result of a Twilio lookup for attempt p_attempt of a message: with a SID, records it as sent (closing a dead '
  'send job as done); without, releases that attempt (message back to pending; a dead send job stays dead). '
  'Returns recorded, released, released_dead, moved_on or gone.';

create function private.enqueue_send_reconcile(p_message_id uuid) returns bigint
language sql
security definer
set search_path = ''
as $$
  -- One reconcile job per attempt: the key names the attempt, so re-enqueueing is a no-op.
  select private.enqueue_job(
    'sms.reconcile', jsonb_build_object('message_id', m.id, 'attempt', m.send_attempts), now(),
    'sms.reconcile:' || m.id::text || ':' || m.send_attempts::text, m.client_id, 10, 10::smallint
  )
  from public.messages m
  where m.id = p_message_id and m.status = 'sending' and m.twilio_sid is null
$$;
comment on function private.enqueue_send_reconcile(uuid) is
  'Enqueues the sms.reconcile job of a message''s current attempt if it is sending without a SID (else null).';

create function private.enqueue_stranded_reconciles() returns integer
language sql
security definer
set search_path = ''
as $$
  -- Stranded: sending, no SID, and no live send run (job dead, finished, missing, or running
  -- past its lease). A queued send job reconciles by itself when it runs (prepare_send).
  with stranded as (
    select private.enqueue_send_reconcile(m.id) as job_id
    from public.messages m
    left join private.jobs j on j.idempotency_key = private.send_job_key(m.id)
    where m.status = 'sending' and m.twilio_sid is null
      and (j.id is null or j.status in ('dead', 'done', 'canceled') or (j.status = 'running' and j.locked_until < now()))
  )
  select count(job_id)::integer from stranded
$$;
comment on function private.enqueue_stranded_reconciles() is
  'pg_cron: enqueues an sms.reconcile job for every stranded send (sending, no SID, no live send run).';

create function private.reconcile_dead_send() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- A send job that dies mid-attempt: look the message up at Twilio now, not at the next cron.
  -- Nothing here may stop a job from being recorded as dead (a malformed payload, say): the
  -- minute's scan is the fallback.
  begin
    perform private.enqueue_send_reconcile((new.payload ->> 'message_id')::uuid);
  exception when others then
    raise warning 'reconcile for dead job % not enqueued: %', new.id, sqlerrm;
  end;
  return null;
end
$$;
comment on function private.reconcile_dead_send() is
  'Trigger: an sms.send job dead-lettered while its message is sending without a SID gets an sms.reconcile job.';

create trigger jobs_reconcile_dead_send after update of status on private.jobs
  for each row when (new.status = 'dead' and old.status is distinct from 'dead' and new.kind = 'sms.send')
  execute function private.reconcile_dead_send();

revoke all on function private.send_job_key(uuid), private.stranded_send(uuid),
  private.reconcile_send(uuid, integer, text, text, integer), private.enqueue_send_reconcile(uuid),
  private.enqueue_stranded_reconciles(), private.reconcile_dead_send()
  from public, anon, authenticated;
grant execute on function private.send_job_key(uuid), private.stranded_send(uuid),
  private.reconcile_send(uuid, integer, text, text, integer), private.enqueue_send_reconcile(uuid),
  private.enqueue_stranded_reconciles()
  to service_role;

select private.schedule_cron('reconcile-sends', '* * * * *', 'select private.enqueue_stranded_reconciles()');
