-- Manual messaging and the conversation view in the seed's shapes:
-- POST /api/messages/send -> public.send_message, GET /api/conversations/[id] -> public.get_conversation.

create function private.send_manual_message(p_lead_id uuid, p_content text, p_message_category text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_lead public.leads;
  v_id uuid;
  v_msg public.messages;
begin
  perform private.require_member();
  select l.* into v_lead from public.leads l
  where l.id = p_lead_id and l.client_id = private.current_client_id()
    and (private.sees_all_datasets() or l.dataset_id = any (private.visible_dataset_ids()))
    and (not private.sees_only_assigned_leads() or l.assigned_to = auth.uid());
  if not found then
    perform private.raise_error(404, format('lead %s not found', p_lead_id));
  end if;
  if not private.can_write() then
    perform private.raise_error(403, 'read-only members cannot send messages');
  end if;
  if coalesce(p_message_category, 'human_manual') <> 'human_manual' then
    perform private.raise_error(400, format('message_category must be human_manual (got %s)', p_message_category));
  end if;
  -- The seed's 60 sends per client and rolling hour (429 with Retry-After; a refusal stores nothing).
  perform private.use_send_budget(v_lead.client_id);
  -- queue_sms refuses an opted-out or suppressed number with 403: a person cannot message it either.
  v_id := private.queue_sms(v_lead.id, p_content, 'human_manual', auth.uid());
  select m.* into v_msg from public.messages m where m.id = v_id;
  return jsonb_build_object('message', jsonb_build_object(
    'id', v_msg.id, 'content', v_msg.content, 'sent_at', v_msg.sent_at, 'twilio_sid', v_msg.twilio_sid,
    'status', v_msg.status
  ));
end
$$;
comment on function private.send_manual_message(uuid, text, text) is
  'Body of public.send_message: caller must see the lead and be a writer; goes through queue_sms.';

create function public.send_message(lead_id uuid, content text, message_category text default 'human_manual')
returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.send_manual_message(lead_id, content, message_category)
$$;
comment on function public.send_message(uuid, text, text) is
  'POST /api/messages/send: queues a human_manual SMS (status pending until the worker sends it). '
  '403 for read-only members and for opted-out numbers; 404 for a lead the caller cannot see.';

create function private.get_conversation(p_conversation_id uuid) returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_result jsonb;
begin
  -- Runs as the caller: RLS decides what is visible.
  select jsonb_build_object(
    'conversation', jsonb_build_object(
      'id', cv.id, 'lead_id', cv.lead_id, 'started_at', cv.started_at, 'last_message_at', cv.last_message_at,
      'message_count', cv.message_count, 'status', cv.status, 'sentiment', cv.sentiment,
      'quality_score', cv.quality_score
    ),
    'messages', coalesce((
      select jsonb_agg(jsonb_build_object(
        'id', m.id, 'content', m.content, 'direction', m.direction, 'message_category', m.message_category,
        'sent_at', coalesce(m.sent_at, m.received_at), 'delivered_at', m.delivered_at, 'ai_generated', m.ai_generated,
        'ai_quality_score', m.ai_quality_score, 'sophie_feedback', m.sophie_feedback,
        'sophie_feedback_status', m.sophie_feedback_status, 'status', m.status, 'created_at', m.created_at
      ) order by m.created_at, m.id)
      from public.messages m where m.conversation_id = cv.id
    ), '[]'::jsonb),
    'lead', jsonb_build_object(
      'id', l.id, 'first_name', l.first_name, 'last_name', l.last_name, 'phone_number', l.phone_number,
      'contact_status', l.contact_status
    )
  ) into v_result
  from public.conversations cv
  join public.leads l on l.id = cv.lead_id
  where cv.id = p_conversation_id;
  if v_result is null then
    perform private.raise_error(404, format('conversation %s not found', p_conversation_id));
  end if;
  return v_result;
end
$$;
comment on function private.get_conversation(uuid) is 'Body of public.get_conversation (security invoker).';

create function public.get_conversation(id uuid) returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.get_conversation(id)
$$;
comment on function public.get_conversation(uuid) is
  'GET /api/conversations/[id]: {conversation, messages, lead} in the seed''s shape (messages oldest first, '
  'with status and created_at added; sent_at of an inbound message is when it was received). 404 if not visible.';

revoke all on function private.send_manual_message(uuid, text, text), public.send_message(uuid, text, text),
  private.get_conversation(uuid), public.get_conversation(uuid) from public, anon;
grant execute on function private.send_manual_message(uuid, text, text), public.send_message(uuid, text, text),
  private.get_conversation(uuid), public.get_conversation(uuid) to authenticated, service_role;
