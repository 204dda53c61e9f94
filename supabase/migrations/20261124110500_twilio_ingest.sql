-- Twilio webhooks, SQL side: private.ingest_twilio_webhook takes Twilio's form fields as a
-- JSON object (the twilio-webhook edge function calls it after checking the signature) and
-- handles both inbound SMS and delivery status callbacks, idempotently.

create function private.opt_out_lead(p_lead_id uuid, p_reason text, p_source text default 'ai') returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_lead public.leads;
begin
  select l.* into v_lead from public.leads l where l.id = p_lead_id;
  if not found then
    raise exception 'lead % not found', p_lead_id using errcode = 'P0002';
  end if;
  return private.opt_out_number(v_lead.client_id, v_lead.phone_number, coalesce(p_reason, 'opted out'), p_source);
end
$$;
comment on function private.opt_out_lead(uuid, text, text) is
  'Opts a lead''s number out exactly like the STOP keyword (used for the AI''s opt-out intent).';

-- status callbacks --------------------------------------------------------------------------
create function private.ingest_twilio_status(p_sid text, p_status text, p_error_code integer, p_params jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_new boolean;
begin
  -- Serialises with record_send_result storing this sid, so an event is either applied here
  -- (message already has the sid) or seen there (stored before the sid), never lost between.
  perform pg_advisory_xact_lock(hashtext('twilio_sid:' || p_sid));
  insert into private.twilio_status_events (message_sid, status, error_code, params)
  values (p_sid, p_status, p_error_code, p_params)
  on conflict (message_sid, status) do nothing
  returning true into v_new;
  if v_new is null then
    return jsonb_build_object('status', 'duplicate', 'message_sid', p_sid);
  end if;
  if private.apply_twilio_status_event(p_sid, p_status, p_error_code, now()) then
    update private.twilio_status_events e set applied_at = now()
    where e.message_sid = p_sid and e.status = p_status;
    return jsonb_build_object('status', 'applied', 'message_sid', p_sid, 'message_status', p_status);
  end if;
  return jsonb_build_object('status', 'stored', 'message_sid', p_sid, 'message_status', p_status);
end
$$;
comment on function private.ingest_twilio_status(text, text, integer, jsonb) is
  'One status callback: deduplicated on (MessageSid, MessageStatus), applied forward-only, or kept until the '
  'send result stores the sid.';

-- inbound SMS -------------------------------------------------------------------------------
create function private.ingest_inbound_sms(p_sid text, p_params jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_from text := coalesce(private.sms_e164(p_params ->> 'From'), nullif(trim(p_params ->> 'From'), ''));
  v_to text := private.sms_e164(p_params ->> 'To');
  v_body text := left(coalesce(p_params ->> 'Body', ''), 1600);
  v_opt_type text := upper(nullif(trim(p_params ->> 'OptOutType'), ''));
  v_client public.clients;
  v_lead public.leads;
  v_conversation uuid;
  v_message uuid;
  v_keyword text;
  v_action text;
  v_name text;
  v_mode text;
  v_delay integer;
  v_suppressed boolean;
  v_rule private.opt_out_phrases;
begin
  if v_from is null then
    -- Without the sender the message belongs to no lead and cannot be answered: refused, not stored.
    perform private.raise_error(400, 'an inbound message needs its From number',
      jsonb_build_object('field', 'From', 'message_sid', p_sid));
  end if;
  if trim(v_body) = '' then
    v_body := case when coalesce(nullif(p_params ->> 'NumMedia', ''), '0')::integer > 0 then '[media message]'
      else '[empty message]' end;
  end if;

  -- The client owns the To number (or the messaging service the message came through).
  select c.* into v_client from public.clients c where c.twilio_phone_number = v_to;
  if not found and nullif(p_params ->> 'MessagingServiceSid', '') is not null then
    select c.* into v_client from public.clients c
    where c.twilio_messaging_service_sid = p_params ->> 'MessagingServiceSid'
    order by c.created_at limit 1;
  end if;
  if v_client.id is null then
    insert into private.unmatched_inbound (message_sid, from_number, to_number, body, params)
    values (p_sid, v_from, coalesce(v_to, p_params ->> 'To'), v_body, p_params)
    on conflict (message_sid) do nothing
    returning message_sid into v_action;
    return jsonb_build_object('status', case when v_action is null then 'duplicate' else 'unmatched' end,
      'message_sid', p_sid);
  end if;

  -- The lead: the most recently active one with this number in this client.
  select l.* into v_lead
  from public.leads l
  left join public.conversations cv on cv.lead_id = l.id
  where l.client_id = v_client.id and l.phone_number = v_from
  order by cv.last_message_at desc nulls last, l.created_at desc
  limit 1;
  if v_lead.id is not null then
    v_conversation := private.ensure_conversation(v_lead);
  end if;

  -- Exactly once per MessageSid: concurrent deliveries of the same webhook wait on the unique
  -- index here and only the one that inserted goes on.
  insert into public.messages (
    client_id, dataset_id, conversation_id, lead_id, direction, message_category, status, content,
    from_number, to_number, twilio_sid, received_at
  ) values (
    v_client.id, v_lead.dataset_id, v_conversation, v_lead.id, 'inbound', 'lead_reply', 'received', v_body,
    v_from, v_to, p_sid, now()
  )
  on conflict (twilio_sid) do nothing
  returning id into v_message;
  if v_message is null then
    return jsonb_build_object('status', 'duplicate', 'message_sid', p_sid);
  end if;

  v_suppressed := private.number_is_suppressed(v_client.id, v_from);
  v_keyword := case when v_opt_type in ('STOP', 'START', 'HELP') then v_opt_type else private.sms_keyword(v_body) end;
  -- START/UNSTOP/YES opt back in only a number that is opted out; otherwise "Yes" is a reply.
  if v_keyword = 'START' and not v_suppressed and not coalesce(v_lead.opted_out, false) then
    v_keyword := null;
  end if;
  -- Not a bare keyword: the maintained phrase set (private.opt_out_phrases) decides next, before
  -- and whatever the AI mode ("stop please", "no more texts", "delete my details", "baja").
  if v_keyword is null then
    select p.* into v_rule from private.opt_out_match(v_body) p;
    if v_rule.id is not null then
      v_keyword := 'STOP';
    end if;
  end if;
  v_name := coalesce(nullif(trim(concat_ws(' ', v_lead.first_name, v_lead.last_name)), ''), v_from);

  if v_lead.id is not null then
    update public.conversations c
    set message_count = c.message_count + 1, last_message_at = greatest(c.last_message_at, now()),
        status = case when c.status = 'closed' then 'active' else c.status end
    where c.id = v_conversation;
    update public.leads l
    set reply_received_at = now(), latest_lead_reply = v_body,
        contact_status = case
          when l.contact_status in ('READY', 'M1_SENT', 'M2_SENT', 'M3_SENT', 'NO_RESPONSE', 'UNDELIVERABLE')
            and v_keyword is distinct from 'STOP' then 'REPLIED'
          else l.contact_status
        end::public.lead_status
    where l.id = v_lead.id
    returning l.* into v_lead;
  end if;

  -- Opt-out first, so everything pending to the number is canceled as opted_out.
  if v_keyword = 'STOP' then
    perform private.opt_out_number(v_client.id, v_from,
      'Replied "' || left(trim(v_body), 40) || '"' || coalesce(' (opt-out rule ' || v_rule.id || ')', ''),
      case when v_opt_type = 'STOP' then 'twilio_opt_out' when v_rule.id is not null then 'inbound_phrase'
        else 'inbound_keyword' end);
  end if;
  -- The lead answered: the rest of the sequence stops, queued steps included.
  if v_lead.id is not null then
    perform private.cancel_pending_messages(v_client.id, null, v_lead.id, array['m1', 'm2', 'm3']::public.message_category [],
      'superseded: the lead replied');
  end if;

  if v_keyword = 'STOP' then
    perform private.notify_staff(v_client.id, 'Opted out: ' || v_name,
      v_name || ' replied "' || left(trim(v_body), 40) || '". Nothing more will be sent to ' || v_from || '.', 'low',
      case when v_conversation is not null then '/conversations/' || v_conversation end,
      jsonb_build_object('kind', 'opted_out', 'lead_id', v_lead.id, 'message_id', v_message, 'phone_number', v_from,
        'opt_out_rule', v_rule.id),
      v_lead.dataset_id);
    v_action := 'opted_out';
  elsif v_keyword = 'START' then
    perform private.opt_in_number(v_client.id, v_from);
    perform private.notify_staff(v_client.id, 'Opted back in: ' || v_name,
      v_name || ' texted "' || left(trim(v_body), 40) || '" and can be messaged again. The sequence does not restart '
      || 'by itself.', 'normal',
      case when v_conversation is not null then '/conversations/' || v_conversation end,
      jsonb_build_object('kind', 'opted_in', 'lead_id', v_lead.id, 'message_id', v_message, 'phone_number', v_from),
      v_lead.dataset_id);
    v_action := 'opted_in';
  elsif v_keyword = 'HELP' then
    -- With OptOutType=HELP Twilio's Advanced Opt-Out has already answered; otherwise we do.
    if v_opt_type is null and v_lead.id is not null and not v_suppressed then
      perform private.queue_sms(v_lead.id, private.render_template(coalesce(nullif(trim(v_client.settings ->> 'help_text'), ''),
        '{company_name}: reply to this message and one of our team will help you. Reply STOP to opt out.'),
        v_lead, v_client.name), 'system');
    end if;
    v_action := 'help';
  elsif v_lead.id is null then
    perform private.notify_staff(v_client.id, 'Message from an unknown number',
      v_from || ': ' || left(v_body, 300), 'normal', null,
      jsonb_build_object('kind', 'unknown_sender', 'message_id', v_message, 'phone_number', v_from), null);
    v_action := 'unknown_sender';
  elsif v_lead.opted_out or v_suppressed then
    v_action := 'stored_opted_out';
  else
    if to_regprocedure('private.effective_ai_mode(uuid)') is not null then
      execute 'select private.effective_ai_mode($1)::text' into v_mode using v_conversation;
    end if;
    if v_lead.manual_mode or coalesce(v_mode, 'auto') = 'off' then
      perform private.notify_staff(v_client.id, 'New reply from ' || v_name, left(v_body, 500), 'immediate',
        '/conversations/' || v_conversation,
        jsonb_build_object('kind', 'reply_manual', 'lead_id', v_lead.id, 'conversation_id', v_conversation,
          'message_id', v_message),
        v_lead.dataset_id);
      -- No AI reply in this mode, but the AI still reads the reply for a revocation the phrase
      -- set missed (ai.classify_opt_out: a classification, never a reply), unless switched off.
      if coalesce(v_client.settings ->> 'ai_opt_out_classification', 'true') <> 'false' then
        perform private.enqueue_job(
          'ai.classify_opt_out', jsonb_build_object('conversation_id', v_conversation, 'inbound_message_id', v_message),
          now(), 'ai.classify_opt_out:' || v_message, v_client.id, 5, 10::smallint
        );
      end if;
      v_action := 'notified';
    else
      select coalesce(c.ai_response_delay_seconds, (v_client.settings ->> 'ai_response_delay_seconds')::integer, 60)
      into v_delay from public.campaigns c where c.dataset_id = v_lead.dataset_id;
      perform private.enqueue_job(
        'ai.reply', jsonb_build_object('conversation_id', v_conversation, 'inbound_message_id', v_message),
        now() + make_interval(secs => coalesce(v_delay, (v_client.settings ->> 'ai_response_delay_seconds')::integer, 60)),
        'ai.reply:' || v_message, v_client.id, 5, 10::smallint
      );
      v_action := 'ai_reply';
    end if;
  end if;

  return jsonb_build_object(
    'status', 'received', 'action', v_action, 'message_id', v_message, 'lead_id', v_lead.id,
    'conversation_id', v_conversation, 'client_id', v_client.id, 'opt_out_rule', v_rule.id
  );
end
$$;
comment on function private.ingest_inbound_sms(text, jsonb) is
  'One inbound SMS: stored once per MessageSid; opt-out/opt-in/help keywords, OptOutType and the opt-out phrase '
  'set (private.opt_out_match) handled in every AI mode; otherwise the conversation and lead are updated, the '
  'sequence stopped and ai.reply enqueued (or staff notified and ai.classify_opt_out enqueued).';

create function private.ingest_twilio_webhook(p_params jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_sid text := coalesce(
    nullif(p_params ->> 'MessageSid', ''), nullif(p_params ->> 'SmsMessageSid', ''), nullif(p_params ->> 'SmsSid', '')
  );
  v_status text := lower(coalesce(nullif(p_params ->> 'MessageStatus', ''), nullif(p_params ->> 'SmsStatus', '')));
begin
  if p_params is null or jsonb_typeof(p_params) <> 'object' then
    raise exception 'webhook parameters must be a JSON object' using errcode = '22023';
  end if;
  if v_sid is null then
    raise exception 'MessageSid is missing' using errcode = '22023';
  end if;
  if p_params ? 'Body' or v_status = 'received' then
    return private.ingest_inbound_sms(v_sid, p_params);
  end if;
  if v_status is null then
    raise exception 'neither Body nor MessageStatus: not a Twilio message webhook' using errcode = '22023';
  end if;
  return private.ingest_twilio_status(v_sid, v_status, nullif(p_params ->> 'ErrorCode', '')::integer, p_params);
end
$$;
comment on function private.ingest_twilio_webhook(jsonb) is
  'The twilio-webhook edge function''s one call: inbound SMS (Body / SmsStatus=received) or a status '
  'callback (MessageStatus), as Twilio''s form fields in a JSON object. Idempotent.';

-- record_send_result takes the same lock as a status callback for the same sid.
create function private.lock_twilio_sid() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform pg_advisory_xact_lock(hashtext('twilio_sid:' || new.twilio_sid));
  return new;
end
$$;
comment on function private.lock_twilio_sid() is
  'Trigger: storing an outbound message''s sid takes the per-sid lock status callbacks take (no lost callback).';

create trigger messages_lock_twilio_sid before update of twilio_sid on public.messages
  for each row when (new.twilio_sid is not null and old.twilio_sid is null)
  execute function private.lock_twilio_sid();

create function private.prune_twilio_status_events() returns integer
language sql
security definer
set search_path = ''
as $$
  -- Dedup keys older than a week cannot meet a Twilio retry any more (Twilio retries for hours).
  with gone as (
    delete from private.twilio_status_events where received_at < now() - interval '7 days' returning 1
  )
  select count(*)::integer from gone
$$;
comment on function private.prune_twilio_status_events() is 'pg_cron, daily: drops status events older than 7 days.';

select private.schedule_cron('prune-twilio-status-events', '17 3 * * *', 'select private.prune_twilio_status_events()');

revoke all on function private.prune_twilio_status_events() from public, anon, authenticated;
revoke all on function private.opt_out_lead(uuid, text, text),
  private.ingest_twilio_status(text, text, integer, jsonb), private.ingest_inbound_sms(text, jsonb),
  private.ingest_twilio_webhook(jsonb), private.lock_twilio_sid()
  from public, anon, authenticated;
grant execute on function private.opt_out_lead(uuid, text, text), private.ingest_twilio_webhook(jsonb) to service_role;
