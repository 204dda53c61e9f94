-- The AI as the second opt-out layer. The phrase set (private.opt_out_phrases) decides first, in
-- the ingest. In auto and suggest modes the reply decision's opt_out_intent covers the rest; in
-- manual or off mode no reply is generated, so the ingest queues ai.classify_opt_out instead: the
-- worker asks Claude one forced-tool question (is this a revocation?) and commits the answer
-- here. A confident revocation is handled exactly like STOP, and staff are told.

create function private.notify_ai_opt_out(p_lead_id uuid, p_message_id uuid, p_how text, p_reason text) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_lead public.leads;
  v_conv uuid;
  v_name text;
begin
  select l.* into v_lead from public.leads l where l.id = p_lead_id;
  select cv.id into v_conv from public.conversations cv where cv.lead_id = p_lead_id;
  v_name := coalesce(nullif(trim(concat_ws(' ', v_lead.first_name, v_lead.last_name)), ''), v_lead.phone_number);
  perform private.notify_staff(v_lead.client_id, 'Opted out: ' || v_name,
    v_name || ' asked not to be contacted again (' || p_how || ': ' || left(coalesce(p_reason, ''), 200) || '). '
    || 'Nothing more will be sent to ' || v_lead.phone_number || '.', 'low',
    case when v_conv is not null then '/conversations/' || v_conv end,
    jsonb_build_object('kind', 'opted_out', 'lead_id', v_lead.id, 'message_id', p_message_id,
      'phone_number', v_lead.phone_number, 'source', p_how),
    v_lead.dataset_id);
end
$$;
comment on function private.notify_ai_opt_out(uuid, uuid, text, text) is
  'Tells staff a lead was opted out by the AI (reply decision or opt-out classification), like a STOP keyword.';

create function private.ai_classify_begin(p_conversation_id uuid, p_inbound_message_id uuid) returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_in public.messages;
  v_lead public.leads;
begin
  select m.* into v_in from public.messages m
  where m.id = p_inbound_message_id and m.conversation_id = p_conversation_id and m.direction = 'inbound';
  select l.* into v_lead from public.leads l where l.id = v_in.lead_id;
  if v_in.id is null or v_lead.id is null then
    return jsonb_build_object('action', 'skip', 'reason', 'not_found');
  elsif v_lead.opted_out or private.number_is_suppressed(v_lead.client_id, v_lead.phone_number) then
    return jsonb_build_object('action', 'skip', 'reason', 'opted_out');
  end if;
  return jsonb_build_object(
    'action', 'classify',
    'message', v_in.content,
    'client', (select jsonb_build_object('name', c.name, 'anthropic_model', c.settings ->> 'anthropic_model')
      from public.clients c where c.id = v_lead.client_id),
    -- What we said just before: "no" to "shall we stop?" is not "no" to "are you interested?".
    'previous', coalesce((
      select jsonb_agg(jsonb_build_object('direction', x.direction, 'content', x.content) order by x.created_at, x.id)
      from (
        select m.direction, m.content, m.created_at, m.id from public.messages m
        where m.conversation_id = p_conversation_id and m.status not in ('draft', 'canceled')
          and (m.created_at, m.id) < (v_in.created_at, v_in.id)
        order by m.created_at desc, m.id desc
        limit 4
      ) x
    ), '[]'::jsonb)
  );
end
$$;
comment on function private.ai_classify_begin(uuid, uuid) is
  'Worker step 1 of ai.classify_opt_out: skip (lead already opted out, message gone) or the text to classify '
  'with the last few messages before it.';

create function private.ai_classify_commit(
  p_conversation_id uuid, p_inbound_message_id uuid, p_result jsonb, p_min_confidence numeric default 0.8
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_in public.messages;
  v_lead public.leads;
  v_confident boolean;
begin
  select m.* into v_in from public.messages m
  where m.id = p_inbound_message_id and m.conversation_id = p_conversation_id and m.direction = 'inbound';
  -- The lead's row lock, as every opt-out and AI commit takes it.
  select l.* into v_lead from public.leads l where l.id = v_in.lead_id for update;
  if v_in.id is null or v_lead.id is null then
    return jsonb_build_object('status', 'skipped', 'reason', 'not_found');
  end if;
  update public.messages m
  set ai_metadata = m.ai_metadata || jsonb_build_object('opt_out_classification', p_result)
  where m.id = v_in.id;
  if v_lead.opted_out then
    return jsonb_build_object('status', 'skipped', 'reason', 'opted_out');
  end if;
  v_confident := coalesce((p_result ->> 'opt_out')::boolean, false)
    and coalesce((p_result ->> 'confidence')::numeric, 0) >= p_min_confidence;
  if not v_confident then
    return jsonb_build_object('status', case when coalesce((p_result ->> 'opt_out')::boolean, false)
      then 'not_confident' else 'no_opt_out' end);
  end if;
  perform private.opt_out_lead(v_lead.id, left('AI classifier: ' || coalesce(p_result ->> 'reason', 'asked to stop'), 200), 'ai');
  perform private.notify_ai_opt_out(v_lead.id, v_in.id, 'AI opt-out check', p_result ->> 'reason');
  return jsonb_build_object('status', 'opted_out');
end
$$;
comment on function private.ai_classify_commit(uuid, uuid, jsonb, numeric) is
  'Worker step 2 of ai.classify_opt_out: stores the classification on the inbound message; a revocation with '
  'confidence >= p_min_confidence opts the lead out like STOP and notifies staff. Returns {"status": '
  'opted_out|no_opt_out|not_confident|skipped}.';

revoke all on function private.notify_ai_opt_out(uuid, uuid, text, text), private.ai_classify_begin(uuid, uuid),
  private.ai_classify_commit(uuid, uuid, jsonb, numeric)
from public, anon, authenticated;
grant execute on function private.notify_ai_opt_out(uuid, uuid, text, text), private.ai_classify_begin(uuid, uuid),
  private.ai_classify_commit(uuid, uuid, jsonb, numeric)
to service_role;
