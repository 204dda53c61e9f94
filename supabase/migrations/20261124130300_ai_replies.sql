-- AI replies: the worker reads a conversation's context, calls Claude outside any transaction,
-- then commits the decision through one function that re-checks everything under the lead's
-- row lock (manual mode, opt-out, archive, AI mode, a newer inbound message, the safeguard)
-- in the same transaction that queues the SMS. So a stale answer is never sent, and the
-- latest inbound message gets exactly one answer.

create index messages_ai_inbound_idx on public.messages ((ai_metadata ->> 'inbound_message_id'))
where ai_generated;
create index messages_ai_prompt_idx on public.messages ((ai_metadata ->> 'prompt_version_id'))
where ai_generated;
create index messages_drafts_idx on public.messages (conversation_id) where status = 'draft';

create function private.ai_context(p_conversation_id uuid) returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'conversation', jsonb_build_object(
      'id', cv.id, 'status', cv.status, 'ai_mode', private.effective_ai_mode(cv.id),
      'ai_consecutive_messages', cv.ai_consecutive_messages,
      'ai_max_consecutive_messages', private.ai_max_consecutive(cv.client_id)
    ),
    'client', jsonb_build_object(
      'id', c.id, 'name', c.name, 'timezone', c.timezone,
      'anthropic_model', c.settings ->> 'anthropic_model',
      'company_description', c.settings ->> 'company_description',
      'booking_enabled', coalesce((c.settings ->> 'ai_booking_enabled')::boolean, true)
    ),
    'dataset', jsonb_build_object('id', d.id, 'name', d.name, 'source', d.source, 'description', d.description),
    'lead', jsonb_build_object(
      'id', l.id, 'first_name', l.first_name, 'last_name', l.last_name, 'phone_number', l.phone_number,
      'email', l.email, 'postcode', l.postcode, 'inquiry_date', l.inquiry_date, 'notes', l.notes,
      'custom_fields', l.custom_fields, 'timezone', coalesce(l.timezone, c.timezone),
      'contact_status', l.contact_status, 'lead_sentiment', l.lead_sentiment,
      'manual_mode', l.manual_mode, 'opted_out', l.opted_out, 'archived', l.archived,
      'call_booked', l.call_booked, 'call_booked_time', l.call_booked_time
    ),
    'messages', coalesce((
      select jsonb_agg(x.msg order by x.created_at, x.id)
      from (
        select m.created_at, m.id, jsonb_build_object(
          'id', m.id, 'direction', m.direction, 'category', m.message_category, 'status', m.status,
          'content', m.content, 'at', coalesce(m.received_at, m.sent_at, m.created_at),
          'ai_generated', m.ai_generated, 'by_staff', m.sent_by is not null,
          'offered_slots', m.ai_metadata -> 'offered_slots'
        ) as msg
        from public.messages m
        where m.conversation_id = cv.id and m.status not in ('draft', 'canceled')
        order by m.created_at desc, m.id desc
        limit 40
      ) x
    ), '[]'::jsonb),
    'prompt', (
      select jsonb_build_object(
        'id', r.id, 'version', r.version, 'system_prompt', r.system_prompt,
        'user_prompt_template', r.user_prompt_template, 'lessons_context', r.lessons_context,
        'lesson_ids', to_jsonb(r.lesson_ids),
        'master_id', ms.id, 'master_system_prompt', ms.system_prompt
      )
      from public.prompts r
      left join public.prompts ms on ms.client_id = r.client_id and ms.prompt_type = 'master' and ms.is_active
      where r.client_id = cv.client_id and r.prompt_type = 'reply' and r.is_active
    )
  )
  from public.conversations cv
  join public.leads l on l.id = cv.lead_id
  join public.datasets d on d.id = cv.dataset_id
  join public.clients c on c.id = cv.client_id
  where cv.id = p_conversation_id
$$;
comment on function private.ai_context(uuid) is
  'Everything the AI needs to answer a conversation: lead facts, last 40 messages, live reply prompt '
  '(with its lessons) and the master prompt, effective AI mode and safeguard counters.';

create function private.ai_reply_blocker(
  p_conversation_id uuid, p_inbound_message_id uuid, p_booking_id text default null
) returns text
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_conv public.conversations;
  v_lead public.leads;
  v_in public.messages;
  v_booked boolean;
begin
  select cv.* into v_conv from public.conversations cv where cv.id = p_conversation_id;
  select l.* into v_lead from public.leads l where l.id = v_conv.lead_id;
  select m.* into v_in from public.messages m
  where m.id = p_inbound_message_id and m.conversation_id = p_conversation_id and m.direction = 'inbound';
  if v_conv.id is null or v_lead.id is null or v_in.id is null then
    return 'not_found';
  end if;
  -- The confirmation of a booking the AI just made may go out although booking switched manual mode on.
  v_booked := p_booking_id is not null and v_lead.cal_booking_id is not distinct from p_booking_id;
  if private.lead_is_opted_out(v_lead.id) then
    return 'opted_out';
  elsif v_lead.archived then
    return 'archived';
  elsif v_lead.contact_status in ('OPTED_OUT', 'UNDELIVERABLE', 'CONVERTED') then
    return lower(v_lead.contact_status::text);
  elsif v_lead.manual_mode and not v_booked then
    return 'manual_mode';
  elsif not v_booked and private.effective_ai_mode(v_conv.id) = 'off' then
    return 'ai_off';
  elsif v_conv.status <> 'active' then
    return v_conv.status::text;
  elsif exists (
    select from public.messages m
    where m.conversation_id = v_conv.id and m.direction = 'inbound'
      and (m.created_at, m.id) > (v_in.created_at, v_in.id)
  ) then
    return 'superseded';
  elsif exists (
    select from public.messages m
    where m.conversation_id = v_conv.id and m.ai_generated and m.status <> 'canceled'
      and m.ai_metadata ->> 'inbound_message_id' = v_in.id::text
  ) then
    return 'already_answered';
  elsif exists (
    select from public.messages m
    where m.conversation_id = v_conv.id and m.direction = 'outbound' and m.sent_by is not null
      and m.status not in ('draft', 'canceled') and m.created_at > v_in.created_at
  ) then
    return 'answered_by_staff';
  elsif not v_booked and v_conv.ai_consecutive_messages >= private.ai_max_consecutive(v_conv.client_id) then
    return 'safeguard';
  end if;
  return null;
end
$$;
comment on function private.ai_reply_blocker(uuid, uuid, text) is
  'Why the AI must not answer this inbound message now (opted_out, archived, manual_mode, ai_off, '
  'needs_human, closed, superseded, already_answered, answered_by_staff, safeguard, not_found), or null.';

create function private.ai_safeguard_handover(p_conversation_id uuid) returns void
language sql
security definer
set search_path = ''
as $$
  select private.ai_handover(
    p_conversation_id, 'safeguard',
    format('The AI has sent %s messages in a row without a person stepping in; please take over.',
      (select cv.ai_consecutive_messages from public.conversations cv where cv.id = p_conversation_id))
  )
$$;

create function private.ai_reply_begin(p_conversation_id uuid, p_inbound_message_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_reason text := private.ai_reply_blocker(p_conversation_id, p_inbound_message_id);
begin
  if v_reason = 'safeguard' then
    perform private.ai_safeguard_handover(p_conversation_id);
  end if;
  if v_reason is not null then
    return jsonb_build_object('action', 'skip', 'reason', v_reason);
  end if;
  return jsonb_build_object('action', 'generate', 'context', private.ai_context(p_conversation_id));
end
$$;
comment on function private.ai_reply_begin(uuid, uuid) is
  'Worker step 1 of ai.reply: skip (with the reason) or the context to generate from.';

create function private.ai_apply_assessment(p_lead_id uuid, p_decision jsonb) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_status public.lead_status;
  v_sentiment public.lead_sentiment;
begin
  if p_decision ->> 'contact_status' in ('REPLIED', 'HOT', 'WARM', 'COLD', 'NOT_INTERESTED') then
    v_status := (p_decision ->> 'contact_status')::public.lead_status;
  end if;
  if p_decision ->> 'lead_sentiment' in ('POSITIVE', 'NEGATIVE', 'NEUTRAL', 'HOT', 'UNCLEAR') then
    v_sentiment := (p_decision ->> 'lead_sentiment')::public.lead_sentiment;
  end if;
  -- Outcomes that only bookings, opt-outs and delivery results may set are never overwritten.
  update public.leads l
  set contact_status = case
        when v_status is null or l.contact_status in ('CALL_BOOKED', 'CONVERTED', 'OPTED_OUT', 'UNDELIVERABLE')
          then l.contact_status
        else v_status end,
      lead_sentiment = coalesce(v_sentiment, l.lead_sentiment)
  where l.id = p_lead_id
    and (l.contact_status, l.lead_sentiment) is distinct from (
      case
        when v_status is null or l.contact_status in ('CALL_BOOKED', 'CONVERTED', 'OPTED_OUT', 'UNDELIVERABLE')
          then l.contact_status
        else v_status end,
      coalesce(v_sentiment, l.lead_sentiment)
    );
  if v_sentiment is not null then
    update public.conversations set sentiment = v_sentiment
    where lead_id = p_lead_id and sentiment is distinct from v_sentiment;
  end if;
end
$$;
comment on function private.ai_apply_assessment(uuid, jsonb) is
  'Updates lead contact_status/lead_sentiment (and conversation sentiment) from an AI decision.';

create function private.ai_store_draft(p_conversation_id uuid, p_content text, p_ai jsonb) returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_conv public.conversations;
  v_lead public.leads;
  v_id uuid;
begin
  select cv.* into v_conv from public.conversations cv where cv.id = p_conversation_id;
  select l.* into v_lead from public.leads l where l.id = v_conv.lead_id;
  -- One pending draft per conversation: a new one replaces the old.
  delete from public.messages m where m.conversation_id = p_conversation_id and m.status = 'draft';
  insert into public.messages (
    client_id, dataset_id, conversation_id, lead_id, direction, message_category, status, content,
    to_number, ai_generated, ai_confidence, ai_reasoning, ai_metadata
  )
  values (
    v_conv.client_id, v_conv.dataset_id, v_conv.id, v_lead.id, 'outbound', 'ai_response', 'draft', p_content,
    v_lead.phone_number, true, (p_ai ->> 'confidence')::numeric, p_ai ->> 'reasoning',
    p_ai - 'confidence' - 'reasoning'
  )
  returning id into v_id;
  return v_id;
end
$$;
comment on function private.ai_store_draft(uuid, text, jsonb) is
  'Stores an AI draft (message status draft, visible in the conversation), replacing an older draft.';

create function private.ai_send_message(
  p_lead_id uuid, p_content text, p_ai jsonb,
  p_category public.message_category default 'ai_response', p_sent_by uuid default null
) returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid;
begin
  -- queue_sms stores confidence/reasoning in their columns and the rest of p_ai as ai_metadata.
  v_id := private.queue_sms(p_lead_id, p_content, p_category, p_sent_by, p_ai);
  -- Lessons the reply says it applied, counted once per message.
  update public.lessons
  set times_applied = times_applied + 1, last_applied_at = now()
  where id in (
    select x::uuid from jsonb_array_elements_text(coalesce(p_ai -> 'lessons_applied', '[]')) x
    where x ~ '^[0-9a-f-]{36}$'
  );
  return v_id;
end
$$;
comment on function private.ai_send_message(uuid, text, jsonb, public.message_category, uuid) is
  'Queues an AI-written SMS through private.queue_sms (AI decision stored on the message) and counts the '
  'lessons it applied. Category ai_response for autonomous replies; system for a booking confirmation '
  '(booking turns manual mode on, which holds back ai_response messages); human_manual once a person approved it.';

create function private.ai_reply_commit(
  p_conversation_id uuid, p_inbound_message_id uuid, p_decision jsonb, p_ai jsonb
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_conv public.conversations;
  v_lead public.leads;
  v_reason text;
  v_mode public.ai_mode;
  v_text text := nullif(trim(coalesce(p_decision ->> 'reply_text', '')), '');
  v_booking_id text := p_ai -> 'booking' ->> 'booking_id';
  v_ai jsonb := p_ai || jsonb_build_object('inbound_message_id', p_inbound_message_id);
  v_id uuid;
begin
  select cv.* into v_conv from public.conversations cv where cv.id = p_conversation_id;
  -- The lead's row lock serialises every commit (and every opt-out or manual-mode switch) for a lead.
  select l.* into v_lead from public.leads l where l.id = v_conv.lead_id for update;
  v_reason := private.ai_reply_blocker(p_conversation_id, p_inbound_message_id, v_booking_id);
  if v_reason = 'safeguard' then
    perform private.ai_safeguard_handover(p_conversation_id);
    return jsonb_build_object('status', 'handed_over', 'reason', 'safeguard');
  elsif v_reason is not null then
    return jsonb_build_object(
      'status', case when v_reason in ('superseded', 'already_answered') then v_reason else 'skipped' end,
      'reason', v_reason
    );
  end if;
  v_mode := case when v_booking_id is not null then 'auto' else private.effective_ai_mode(p_conversation_id) end;

  if coalesce((p_decision ->> 'opt_out_intent')::boolean, false) then
    -- Exactly what the STOP keyword does (suppression, status, pending sends canceled).
    perform private.opt_out_lead(
      v_lead.id, left('AI: ' || coalesce(p_decision ->> 'reasoning', 'the lead asked to stop'), 200), 'ai'
    );
    perform private.notify_ai_opt_out(v_lead.id, p_inbound_message_id, 'AI reply', p_decision ->> 'reasoning');
    return jsonb_build_object('status', 'opted_out');
  end if;

  perform private.ai_apply_assessment(v_lead.id, p_decision);

  if v_mode = 'suggest' then
    if v_text is null then
      if coalesce((p_decision ->> 'handover')::boolean, false) then
        perform private.ai_handover(p_conversation_id, 'ai_requested', p_decision ->> 'handover_reason');
        return jsonb_build_object('status', 'handed_over', 'reason', 'ai_requested');
      end if;
      return jsonb_build_object('status', 'skipped', 'reason', 'empty_reply');
    end if;
    v_id := private.ai_store_draft(p_conversation_id, v_text, v_ai);
    perform private.notify_staff(
      v_conv.client_id, 'AI draft waiting for approval',
      format('%s replied; a suggested answer is ready to review.',
        coalesce(nullif(trim(concat_ws(' ', v_lead.first_name, v_lead.last_name)), ''), v_lead.phone_number)),
      'normal', '/conversations/' || v_conv.id,
      jsonb_build_object('conversation_id', v_conv.id, 'lead_id', v_lead.id, 'message_id', v_id),
      v_conv.dataset_id
    );
    return jsonb_build_object('status', 'drafted', 'message_id', v_id);
  end if;

  if p_decision ->> 'booking_intent' = 'book' and not (p_ai ? 'booking') then
    -- A confirmation without a booking behind it must never go out.
    return jsonb_build_object('status', 'skipped', 'reason', 'booking_not_made');
  end if;
  if v_text is not null then
    -- A booking confirmation or a handover's holding message must go out although the booking
    -- or the handover switches manual mode on (which holds back ai_response sends): system.
    v_id := private.ai_send_message(
      v_lead.id, v_text, v_ai,
      case
        when v_booking_id is not null or coalesce((p_decision ->> 'handover')::boolean, false) then 'system'
        else 'ai_response'
      end::public.message_category
    );
    update public.conversations set ai_consecutive_messages = ai_consecutive_messages + 1
    where id = p_conversation_id;
  end if;
  if coalesce((p_decision ->> 'handover')::boolean, false) then
    perform private.ai_handover(p_conversation_id, 'ai_requested', p_decision ->> 'handover_reason');
    return jsonb_build_object('status', 'handed_over', 'reason', 'ai_requested', 'message_id', v_id);
  end if;
  if p_ai ? 'booking_error' then
    perform private.ai_flag_needs_human(
      p_conversation_id, 'booking_failed',
      format('Booking the slot %s failed (%s); the lead was told a person will confirm a time.',
        p_ai ->> 'chosen_slot', p_ai ->> 'booking_error')
    );
  end if;
  if v_id is null then
    return jsonb_build_object('status', 'skipped', 'reason', 'empty_reply');
  end if;
  return jsonb_build_object('status', 'sent', 'message_id', v_id);
end
$$;
comment on function private.ai_reply_commit(uuid, uuid, jsonb, jsonb) is
  'Worker step 2 of ai.reply: re-checks under the lead lock, then sends (auto), drafts (suggest), opts '
  'out or hands over. Returns {"status": sent|drafted|opted_out|handed_over|superseded|already_answered|skipped}.';

-- A booked call credits the lessons the AI applied in that lead's conversation.
create function private.credit_lessons_on_booking() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.lessons
  set times_successful = times_successful + 1
  where id in (
    select distinct x::uuid
    from public.messages m, jsonb_array_elements_text(coalesce(m.ai_metadata -> 'lessons_applied', '[]')) x
    where m.lead_id = new.id and m.ai_generated and m.status not in ('draft', 'canceled')
      and x ~ '^[0-9a-f-]{36}$'
  );
  return null;
end
$$;
create trigger leads_credit_lessons after update of call_booked on public.leads
  for each row when (new.call_booked and not old.call_booked)
  execute function private.credit_lessons_on_booking();

revoke all on function private.ai_context(uuid), private.ai_reply_blocker(uuid, uuid, text),
  private.ai_safeguard_handover(uuid), private.ai_reply_begin(uuid, uuid),
  private.ai_apply_assessment(uuid, jsonb), private.ai_store_draft(uuid, text, jsonb),
  private.ai_send_message(uuid, text, jsonb, public.message_category, uuid), private.ai_reply_commit(uuid, uuid, jsonb, jsonb),
  private.credit_lessons_on_booking()
from public, anon, authenticated;
grant execute on function private.ai_context(uuid), private.ai_reply_blocker(uuid, uuid, text),
  private.ai_safeguard_handover(uuid), private.ai_reply_begin(uuid, uuid),
  private.ai_apply_assessment(uuid, jsonb), private.ai_store_draft(uuid, text, jsonb),
  private.ai_send_message(uuid, text, jsonb, public.message_category, uuid), private.ai_reply_commit(uuid, uuid, jsonb, jsonb)
to service_role;
