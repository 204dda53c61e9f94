-- The one outbound send path and the rules it enforces. Every SMS (sequence, AI, manual,
-- system) is a messages row queued by private.queue_sms (or, in bulk, by the sequencing
-- tick); the sms.send worker asks private.prepare_send right before calling Twilio, which
-- re-checks opt-out, lead state, campaign state, the schedule window, both rate limits and
-- per-number pacing at that moment; private.record_send_result stores the outcome.


-- queue_sms ------------------------------------------------------------------------------
create function private.ensure_conversation(p_lead public.leads) returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid;
begin
  insert into public.conversations (client_id, dataset_id, lead_id)
  values (p_lead.client_id, p_lead.dataset_id, p_lead.id)
  on conflict (lead_id) do nothing
  returning id into v_id;
  if v_id is null then
    select c.id into v_id from public.conversations c where c.lead_id = p_lead.id;
  end if;
  return v_id;
end
$$;
comment on function private.ensure_conversation(public.leads) is 'The lead''s conversation, created on first use.';

create function private.number_is_suppressed(p_client_id uuid, p_phone text) returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (select from public.suppressions s where s.client_id = p_client_id and s.phone_number = p_phone)
$$;

-- The one definition of "opted out" every path asks (bookings, AI answers, sends).
create function private.lead_is_opted_out(p_lead_id uuid) returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce((
    select l.opted_out or l.contact_status = 'OPTED_OUT'
      or private.number_is_suppressed(l.client_id, l.phone_number)
    from public.leads l where l.id = p_lead_id
  ), false)
$$;
comment on function private.lead_is_opted_out(uuid) is
  'True when the lead texted STOP (opted_out / OPTED_OUT) or its number is on the client''s suppression list '
  '(a staff entry does not flag the lead row): no booking, AI answer or send for it.';
revoke all on function private.lead_is_opted_out(uuid) from public, anon, authenticated;
grant execute on function private.lead_is_opted_out(uuid) to service_role;

create function private.queue_sms(
  p_lead_id uuid,
  p_content text,
  p_category public.message_category,
  p_sent_by uuid default null,
  p_ai jsonb default null,
  p_run_at timestamptz default now()
) returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_lead public.leads;
  v_client public.clients;
  v_content text := trim(coalesce(p_content, ''));
  v_conversation uuid;
  v_id uuid;
begin
  if p_category = 'lead_reply' then
    perform private.raise_error(400, 'lead_reply is an inbound category; it cannot be sent');
  end if;
  select l.* into v_lead from public.leads l where l.id = p_lead_id;
  if not found then
    perform private.raise_error(404, format('lead %s not found', p_lead_id));
  end if;
  if v_lead.opted_out or private.number_is_suppressed(v_lead.client_id, v_lead.phone_number) then
    perform private.raise_error(
      403, format('this lead has opted out (replied STOP); no message can be sent to %s', v_lead.phone_number),
      jsonb_build_object('hint', 'Only the lead can opt back in, by texting START.'));
  end if;
  if v_content = '' then
    perform private.raise_error(400, 'message content is empty');
  end if;
  if length(v_content) > 1600 then
    perform private.raise_error(400, format('message content is %s characters; the limit is 1600', length(v_content)));
  end if;
  select c.* into v_client from public.clients c where c.id = v_lead.client_id;
  -- The first message a lead receives carries the opt-out line.
  if not exists (
    select from public.messages m
    where m.lead_id = v_lead.id and m.direction = 'outbound' and m.status not in ('canceled', 'failed', 'draft')
  ) then
    v_content := private.with_opt_out_line(v_content, private.client_opt_out_line(v_client.settings));
  end if;
  v_conversation := private.ensure_conversation(v_lead);
  insert into public.messages (
    client_id, dataset_id, conversation_id, lead_id, direction, message_category, status, content,
    from_number, to_number, ai_generated, ai_confidence, ai_reasoning, ai_quality_score, ai_metadata, sent_by
  ) values (
    v_lead.client_id, v_lead.dataset_id, v_conversation, v_lead.id, 'outbound', p_category, 'pending', v_content,
    v_client.twilio_phone_number, v_lead.phone_number,
    p_ai is not null or p_category = 'ai_response',
    (p_ai ->> 'confidence')::numeric, p_ai ->> 'reasoning', (p_ai ->> 'quality_score')::numeric,
    coalesce(p_ai - 'confidence' - 'reasoning' - 'quality_score', '{}'::jsonb), p_sent_by
  )
  returning id into v_id;
  -- Conversational messages (a person is waiting) go ahead of bulk sequence messages.
  perform private.enqueue_job(
    'sms.send', jsonb_build_object('message_id', v_id), coalesce(p_run_at, now()), 'sms.send:' || v_id,
    v_lead.client_id, 5, (case when p_category in ('m1', 'm2', 'm3') then 100 else 10 end)::smallint
  );
  return v_id;
end
$$;
comment on function private.queue_sms(uuid, text, public.message_category, uuid, jsonb, timestamptz) is
  'The one way to queue an outbound SMS: stores a pending message (conversation created if missing, opt-out '
  'line on the lead''s first message) and enqueues sms.send. 403 when the number opted out.';

-- prepare_send ---------------------------------------------------------------------------
create function private.skip_message(p_id uuid, p_reason text) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.messages set status = 'canceled', error_message = p_reason where id = p_id and status = 'pending';
  return jsonb_build_object('action', 'skip', 'reason', p_reason);
end
$$;

create function private.prepare_send(p_message_id uuid, p_worker text, p_now timestamptz default now())
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_msg public.messages;
  v_lead public.leads;
  v_client public.clients;
  v_campaign public.campaigns;
  v_dataset_status public.campaign_status;
  v_seq boolean;
  v_tz text;
  v_limit integer;
  v_count integer;
  v_until timestamptz;
  v_sender text;
  v_pace numeric;
  v_slot timestamptz;
  v_body text;
  v_mode text;
begin
  select m.* into v_msg from public.messages m where m.id = p_message_id for update;
  if not found then
    return jsonb_build_object('action', 'skip', 'reason', 'canceled');
  end if;
  if v_msg.status = 'sending' then
    -- A previous attempt was recorded but its result never was (crash between the two).
    return jsonb_build_object(
      'action', 'reconcile', 'to', v_msg.to_number, 'from', v_msg.from_number, 'body', v_msg.content,
      'attempted_at', v_msg.send_started_at, 'attempts', v_msg.send_attempts
    );
  end if;
  if v_msg.status in ('canceled', 'draft') or v_msg.direction <> 'outbound' then
    return jsonb_build_object('action', 'skip', 'reason', 'canceled');
  end if;
  if v_msg.status <> 'pending' then
    return jsonb_build_object('action', 'skip', 'reason', 'already_sent');
  end if;

  select l.* into v_lead from public.leads l where l.id = v_msg.lead_id;
  select c.* into v_client from public.clients c where c.id = v_msg.client_id;
  v_seq := v_msg.message_category in ('m1', 'm2', 'm3');

  -- Never to an opted-out number, whoever wrote the message.
  if v_lead.opted_out or private.number_is_suppressed(v_lead.client_id, v_lead.phone_number) then
    return private.skip_message(v_msg.id, 'opted_out');
  end if;
  -- Automated messages respect archive and manual mode; a person's own message goes.
  if v_seq or v_msg.message_category = 'ai_response' then
    if v_lead.archived then
      return private.skip_message(v_msg.id, 'archived');
    end if;
    if v_lead.manual_mode then
      return private.skip_message(v_msg.id, 'manual_mode');
    end if;
  end if;
  if v_msg.message_category = 'ai_response' then
    if to_regprocedure('private.effective_ai_mode(uuid)') is not null then
      execute 'select private.effective_ai_mode($1)::text' into v_mode using v_msg.conversation_id;
      if v_mode = 'off' then
        return private.skip_message(v_msg.id, 'manual_mode');
      end if;
    end if;
    -- The lead wrote again after this answer was written: the answer to the latest message wins.
    if exists (
      select from public.messages i
      where i.conversation_id = v_msg.conversation_id and i.direction = 'inbound' and i.created_at > v_msg.created_at
    ) then
      return private.skip_message(v_msg.id, 'superseded');
    end if;
  end if;

  if v_seq then
    if v_lead.call_booked or v_lead.contact_status = 'CALL_BOOKED' then
      return private.skip_message(v_msg.id, 'booked');
    end if;
    if v_lead.contact_status = 'CONVERTED' then
      return private.skip_message(v_msg.id, 'converted');
    end if;
    if v_lead.contact_status in ('NOT_INTERESTED', 'UNDELIVERABLE', 'OPTED_OUT') then
      return private.skip_message(v_msg.id, 'canceled');
    end if;
    if v_lead.reply_received_at > v_msg.created_at
       or v_lead.contact_status in ('REPLIED', 'HOT', 'WARM', 'COLD', 'NO_RESPONSE') then
      return private.skip_message(v_msg.id, 'superseded');
    end if;
    select d.campaign_status into v_dataset_status from public.datasets d where d.id = v_msg.dataset_id;
    if v_dataset_status = 'paused' then
      -- Kept pending: resume_campaign brings the job forward and it goes exactly once.
      return jsonb_build_object('action', 'defer', 'until', p_now + interval '1 hour', 'reason', 'paused');
    end if;
    if v_dataset_status <> 'active' then
      return private.skip_message(v_msg.id, 'canceled');
    end if;
    select c.* into v_campaign from public.campaigns c where c.dataset_id = v_msg.dataset_id;
    v_tz := coalesce(v_lead.timezone, v_client.timezone);
    if not private.in_send_window(p_now, v_tz, v_campaign.hours_start, v_campaign.hours_end, v_campaign.days) then
      return jsonb_build_object(
        'action', 'defer', 'reason', 'outside_window',
        'until', private.next_send_window(p_now, v_tz, v_campaign.hours_start, v_campaign.hours_end, v_campaign.days)
      );
    end if;
    -- Client limit: messages handed to Twilio in the rolling hour.
    v_limit := coalesce((v_client.settings ->> 'sms_per_hour')::integer, 60);
    select count(*) into v_count from public.messages m
    where m.client_id = v_msg.client_id and m.send_started_at > p_now - interval '1 hour' and m.send_started_at <= p_now;
    if v_count >= v_limit then
      select m.send_started_at + interval '1 hour' into v_until from public.messages m
      where m.client_id = v_msg.client_id and m.send_started_at > p_now - interval '1 hour' and m.send_started_at <= p_now
      order by m.send_started_at desc offset v_limit - 1 limit 1;
      return jsonb_build_object('action', 'defer', 'until', v_until, 'reason', 'client_rate');
    end if;
    -- Campaign limit: sequence messages of this dataset in the rolling minute.
    select count(*) into v_count from public.messages m
    where m.dataset_id = v_msg.dataset_id and m.message_category in ('m1', 'm2', 'm3')
      and m.send_started_at > p_now - interval '1 minute' and m.send_started_at <= p_now;
    if v_count >= v_campaign.rate_limit_messages_per_minute then
      select m.send_started_at + interval '1 minute' into v_until from public.messages m
      where m.dataset_id = v_msg.dataset_id and m.message_category in ('m1', 'm2', 'm3')
        and m.send_started_at > p_now - interval '1 minute' and m.send_started_at <= p_now
      order by m.send_started_at desc offset v_campaign.rate_limit_messages_per_minute - 1 limit 1;
      return jsonb_build_object('action', 'defer', 'until', v_until, 'reason', 'campaign_rate');
    end if;
  end if;

  -- Per-number pacing: one atomic claim of the sender's next free slot. A messaging service
  -- spreads load over its own pool, so it is paced only when the client sets a rate for it.
  if v_client.twilio_messaging_service_sid is not null then
    v_sender := v_client.twilio_messaging_service_sid;
    v_pace := (v_client.settings ->> 'service_pace_per_second')::numeric;
  else
    v_sender := v_client.twilio_phone_number;
    v_pace := coalesce((v_client.settings ->> 'number_pace_per_second')::numeric, 1);
  end if;
  if v_sender is not null and v_pace > 0 then
    insert into private.sending_pace as p (sender, next_free_at)
    values (v_sender, p_now + make_interval(secs => 1 / v_pace))
    on conflict (sender) do update set next_free_at = p_now + make_interval(secs => 1 / v_pace)
    where p.next_free_at <= p_now
    returning p.next_free_at into v_slot;
    if v_slot is null then
      select p.next_free_at into v_until from private.sending_pace p where p.sender = v_sender;
      return jsonb_build_object('action', 'defer', 'until', v_until, 'reason', 'number_pace');
    end if;
  end if;

  -- The first message the lead actually receives carries the opt-out line.
  v_body := v_msg.content;
  if not exists (
    select from public.messages m
    where m.lead_id = v_msg.lead_id and m.direction = 'outbound' and m.id <> v_msg.id
      and m.status in ('sending', 'queued', 'sent', 'delivered')
  ) then
    v_body := private.with_opt_out_line(v_body, private.client_opt_out_line(v_client.settings));
  end if;

  update public.messages m
  set status = 'sending', send_started_at = p_now, send_attempts = m.send_attempts + 1, content = v_body,
      from_number = case when v_client.twilio_messaging_service_sid is null then v_client.twilio_phone_number end,
      to_number = v_lead.phone_number
  where m.id = v_msg.id;

  return jsonb_build_object(
    'action', 'send',
    'to', v_lead.phone_number,
    'from', case when v_client.twilio_messaging_service_sid is null then v_client.twilio_phone_number end,
    'messaging_service_sid', v_client.twilio_messaging_service_sid,
    'body', v_body,
    'status_callback', nullif(current_setting('dbr.twilio_status_callback_url', true), ''),
    'message_id', v_msg.id,
    'worker', p_worker
  );
end
$$;
comment on function private.prepare_send(uuid, text, timestamptz) is
  'Called by the sms.send worker right before Twilio: re-checks opt-out, lead and campaign state, window, '
  'client/campaign rates and number pacing now; returns send (message marked sending), defer, skip or reconcile.';

-- record_send_result ----------------------------------------------------------------------
create function private.record_send_result(
  p_message_id uuid,
  p_twilio_sid text,
  p_status text,
  p_error_code integer default null,
  p_error_message text default null,
  p_segments integer default null
) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_msg public.messages;
  v_new public.message_status;
  v_event record;
begin
  select m.* into v_msg from public.messages m where m.id = p_message_id for update;
  if not found then
    raise exception 'message % not found', p_message_id using errcode = 'P0002';
  end if;

  -- 'pending' (or 'retry'): Twilio did not take the message (429/5xx before acceptance, or a
  -- reconcile that found nothing): back to pending so the next attempt may send.
  if lower(p_status) in ('pending', 'retry') then
    if v_msg.status = 'sending' and v_msg.twilio_sid is null then
      update public.messages m
      set status = 'pending', send_started_at = null,
          error_code = coalesce(p_error_code, m.error_code), error_message = coalesce(p_error_message, m.error_message)
      where m.id = p_message_id;
    end if;
    return;
  end if;

  v_new := private.twilio_message_status(p_status);
  if v_new is null then
    raise exception 'unknown send status %', p_status using errcode = '22023';
  end if;

  if p_twilio_sid is not null and v_msg.twilio_sid is null then
    update public.messages m
    set twilio_sid = p_twilio_sid, segments = coalesce(p_segments, m.segments)
    where m.id = p_message_id;
  elsif p_segments is not null then
    update public.messages m set segments = p_segments where m.id = p_message_id;
  end if;

  -- Accepted by Twilio for the first time: the lead has been sent this step.
  if p_twilio_sid is not null and v_msg.twilio_sid is null and v_new in ('queued', 'sent', 'delivered') then
    update public.leads l
    set m1_sent_at = case when v_msg.message_category = 'm1' then coalesce(l.m1_sent_at, now()) else l.m1_sent_at end,
        m2_sent_at = case when v_msg.message_category = 'm2' then coalesce(l.m2_sent_at, now()) else l.m2_sent_at end,
        m3_sent_at = case when v_msg.message_category = 'm3' then coalesce(l.m3_sent_at, now()) else l.m3_sent_at end,
        contact_status = case
          when v_msg.message_category = 'm1' and l.contact_status = 'READY' then 'M1_SENT'
          when v_msg.message_category = 'm2' and l.contact_status = 'M1_SENT' then 'M2_SENT'
          when v_msg.message_category = 'm3' and l.contact_status = 'M2_SENT' then 'M3_SENT'
          else l.contact_status
        end::public.lead_status
    where l.id = v_msg.lead_id;
    update public.conversations c
    set message_count = c.message_count + 1, last_message_at = greatest(c.last_message_at, now())
    where c.id = v_msg.conversation_id;
  end if;

  perform private.apply_message_status(p_message_id, v_new, p_error_code, p_error_message, now());

  -- Status callbacks that beat this result to the database are applied now, in any order.
  if p_twilio_sid is not null then
    for v_event in
      select e.status, e.error_code, e.received_at from private.twilio_status_events e
      where e.message_sid = p_twilio_sid and e.applied_at is null
      order by e.received_at
    loop
      perform private.apply_twilio_status_event(p_twilio_sid, v_event.status, v_event.error_code, v_event.received_at);
    end loop;
    update private.twilio_status_events e set applied_at = now()
    where e.message_sid = p_twilio_sid and e.applied_at is null;
  end if;
end
$$;
comment on function private.record_send_result(uuid, text, text, integer, text, integer) is
  'Stores a send outcome: sid, status (forward only), error code and segments; on first acceptance stamps the '
  'lead''s m1/m2/m3_sent_at and status. 21610 opts out, invalid/landline codes make the lead UNDELIVERABLE. '
  'Status pending/retry returns an unaccepted attempt to pending.';

revoke all on function private.ensure_conversation(public.leads), private.number_is_suppressed(uuid, text),
  private.queue_sms(uuid, text, public.message_category, uuid, jsonb, timestamptz),
  private.skip_message(uuid, text), private.prepare_send(uuid, text, timestamptz),
  private.record_send_result(uuid, text, text, integer, text, integer)
  from public, anon, authenticated;
grant execute on function private.queue_sms(uuid, text, public.message_category, uuid, jsonb, timestamptz),
  private.prepare_send(uuid, text, timestamptz),
  private.record_send_result(uuid, text, text, integer, text, integer)
  to service_role;
