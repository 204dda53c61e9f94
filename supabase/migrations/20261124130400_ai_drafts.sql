-- AI drafts for staff: messages/ai-generate (a draft job the API waits for, cached per conversation
-- state) and messages/ai-send (approve a draft, optionally edited, or send given content).

create function private.ai_latest_message_id(p_conversation_id uuid) returns uuid
language sql
stable
security definer
set search_path = ''
as $$
  select m.id from public.messages m
  where m.conversation_id = p_conversation_id and m.status not in ('draft', 'canceled')
  order by m.created_at desc, m.id desc
  limit 1
$$;
comment on function private.ai_latest_message_id(uuid) is
  'The newest real (not draft, not canceled) message of a conversation: the state a draft answers.';

create function private.ai_draft_json(p_message public.messages) returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'message_id', p_message.id,
    'content', p_message.content,
    'confidence', p_message.ai_confidence,
    'reasoning', p_message.ai_reasoning,
    'lessons_applied', coalesce(p_message.ai_metadata -> 'lessons_applied', '[]'::jsonb)
  )
$$;

create function private.caller_conversation(p_lead_id uuid, p_conversation_id uuid) returns public.conversations
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_conv public.conversations;
begin
  -- Same visibility as the RLS policies: the caller's client and a dataset they may see.
  select cv.* into v_conv from public.conversations cv
  where cv.id = p_conversation_id and cv.lead_id = p_lead_id
    and cv.client_id = private.current_client_id()
    and (private.sees_all_datasets() or cv.dataset_id = any (private.visible_dataset_ids()))
    and (not private.sees_only_assigned_leads() or cv.lead_id = any (private.assigned_lead_ids()));
  if v_conv.id is null then
    perform private.raise_error(404, format('conversation %s of lead %s not found', p_conversation_id, p_lead_id));
  end if;
  if not private.can_write() then
    perform private.raise_error(403, 'read-only members cannot use AI drafts');
  end if;
  return v_conv;
end
$$;

create function private.request_ai_draft(
  p_lead_id uuid, p_conversation_id uuid, p_force boolean default false
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_conv public.conversations := private.caller_conversation(p_lead_id, p_conversation_id);
  v_latest uuid := private.ai_latest_message_id(p_conversation_id);
  v_draft public.messages;
  v_key text;
  v_job private.jobs;
  v_job_id bigint;
begin
  if exists (select from public.leads l where l.id = p_lead_id and (l.opted_out or l.archived)) then
    perform private.raise_error(400, 'this lead is opted out or archived; nothing can be sent to them');
  end if;
  if not coalesce(p_force, false) then
    select m.* into v_draft from public.messages m
    where m.conversation_id = p_conversation_id and m.status = 'draft'
      and m.ai_metadata ->> 'based_on_message_id' is not distinct from v_latest::text
    order by m.created_at desc
    limit 1;
    if v_draft.id is not null then
      return jsonb_build_object('cached', true, 'generated_message', private.ai_draft_json(v_draft));
    end if;
  end if;
  -- Concurrent requests for the same state share one job; a forced or failed one gets a new key.
  v_key := format('ai.draft:%s:%s', p_conversation_id, coalesce(v_latest::text, 'empty'));
  select j.* into v_job from private.jobs j where j.idempotency_key = v_key;
  if coalesce(p_force, false) or v_job.status in ('dead', 'canceled')
     or (v_job.status = 'done' and not exists (
       select from public.messages m where m.id = (v_job.result ->> 'message_id')::uuid and m.status = 'draft'
     )) then
    v_key := v_key || ':' || gen_random_uuid();
  end if;
  v_job_id := private.enqueue_job(
    'ai.draft',
    jsonb_build_object(
      'conversation_id', p_conversation_id, 'lead_id', p_lead_id, 'requested_by', auth.uid(),
      'based_on_message_id', v_latest
    ),
    now(), v_key, v_conv.client_id, 3, 10::smallint
  );
  return jsonb_build_object('cached', false, 'job_id', v_job_id);
end
$$;
comment on function private.request_ai_draft(uuid, uuid, boolean) is
  'messages/ai-generate: returns the cached draft for the conversation''s current state, or enqueues an '
  'ai.draft job (shared by concurrent callers) and returns its id for the caller to wait on.';

create function private.ai_draft_job(p_job_id bigint) returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object('status', j.status, 'result', j.result, 'last_error', j.last_error,
    'attempts', j.attempts, 'max_attempts', j.max_attempts)
  from private.jobs j
  where j.id = p_job_id and j.kind = 'ai.draft' and j.client_id = private.current_client_id()
$$;
comment on function private.ai_draft_job(bigint) is
  'Status and result of one of the caller''s client''s ai.draft jobs (what ai-generate waits for).';

create function private.ai_draft_begin(p_conversation_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_lead public.leads;
begin
  select l.* into v_lead from public.leads l
  join public.conversations cv on cv.lead_id = l.id
  where cv.id = p_conversation_id;
  if v_lead.id is null then
    return jsonb_build_object('action', 'skip', 'reason', 'not_found');
  elsif private.lead_is_opted_out(v_lead.id) then
    return jsonb_build_object('action', 'skip', 'reason', 'opted_out');
  elsif v_lead.archived then
    return jsonb_build_object('action', 'skip', 'reason', 'archived');
  end if;
  return jsonb_build_object(
    'action', 'generate', 'context', private.ai_context(p_conversation_id),
    'based_on_message_id', private.ai_latest_message_id(p_conversation_id)
  );
end
$$;
comment on function private.ai_draft_begin(uuid) is
  'Worker step 1 of ai.draft: the context (drafts are allowed in every AI mode, not for opted-out leads).';

create function private.ai_draft_commit(p_conversation_id uuid, p_content text, p_ai jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid;
  v_msg public.messages;
begin
  if nullif(trim(coalesce(p_content, '')), '') is null then
    return jsonb_build_object(
      'message_id', null, 'content', '', 'confidence', p_ai -> 'confidence', 'reasoning', p_ai ->> 'reasoning',
      'lessons_applied', coalesce(p_ai -> 'lessons_applied', '[]'::jsonb)
    );
  end if;
  v_id := private.ai_store_draft(p_conversation_id, trim(p_content), p_ai);
  select m.* into v_msg from public.messages m where m.id = v_id;
  return private.ai_draft_json(v_msg);
end
$$;
comment on function private.ai_draft_commit(uuid, text, jsonb) is
  'Worker step 2 of ai.draft: stores the draft and returns the generated_message the API hands back.';

create function private.ai_send(p_lead_id uuid, p_message_id uuid, p_content text) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_lead public.leads;
  v_conv public.conversations;
  v_draft public.messages;
  v_content text := nullif(trim(coalesce(p_content, '')), '');
  v_ai jsonb;
  v_id uuid;
  v_msg public.messages;
begin
  if private.current_client_id() is null or not private.can_write() then
    perform private.raise_error(403, 'you cannot send messages');
  end if;
  select l.* into v_lead from public.leads l
  where l.id = p_lead_id and l.client_id = private.current_client_id()
    and (private.sees_all_datasets() or l.dataset_id = any (private.visible_dataset_ids()))
    and (not private.sees_only_assigned_leads() or l.assigned_to = auth.uid())
  for update;
  if v_lead.id is null then
    perform private.raise_error(404, format('lead %s not found', p_lead_id));
  end if;
  select cv.* into v_conv from public.conversations cv where cv.lead_id = v_lead.id;
  if p_message_id is not null then
    select m.* into v_draft from public.messages m where m.id = p_message_id and m.lead_id = v_lead.id;
    if v_draft.id is null and exists (
      select from public.messages m where m.lead_id = v_lead.id and m.ai_metadata ->> 'draft_id' = p_message_id::text
    ) then
      perform private.raise_error(409, format('draft %s was already approved and sent', p_message_id));
    elsif v_draft.id is null then
      perform private.raise_error(404, format('message %s not found for this lead', p_message_id));
    elsif v_draft.status <> 'draft' then
      perform private.raise_error(409, format('message %s is not a draft (it was already sent or discarded)', p_message_id));
    end if;
  elsif v_content is null then
    perform private.raise_error(400, 'give message_id (a draft to approve) or content');
  else
    -- Content without a draft id still inherits the pending draft's AI record, if there is one.
    select m.* into v_draft from public.messages m
    where m.conversation_id = v_conv.id and m.status = 'draft'
    order by m.created_at desc limit 1;
  end if;
  v_content := coalesce(v_content, v_draft.content);
  if length(v_content) > 1600 then
    perform private.raise_error(400, 'content is longer than 1600 characters');
  end if;
  v_ai := coalesce(v_draft.ai_metadata, '{}'::jsonb) || jsonb_build_object(
    'approved_by', auth.uid(), 'approved_at', now(), 'draft_id', v_draft.id,
    'edited', v_draft.id is null or v_draft.content is distinct from v_content,
    'confidence', v_draft.ai_confidence, 'reasoning', v_draft.ai_reasoning
  );
  if v_draft.id is not null and v_draft.content is distinct from v_content then
    v_ai := v_ai || jsonb_build_object('original_content', v_draft.content);
  end if;
  -- A person approved it: it goes as their message (manual mode does not hold it back), still
  -- marked ai_generated with the AI's record.
  -- The seed's 60 sends per client and rolling hour, shared with send_message; a refusal keeps the draft.
  perform private.use_send_budget(v_lead.client_id);
  v_id := private.ai_send_message(v_lead.id, v_content, jsonb_strip_nulls(v_ai), 'human_manual', auth.uid());
  if v_conv.id is not null then
    delete from public.messages m where m.conversation_id = v_conv.id and m.status = 'draft';
  end if;
  select m.* into v_msg from public.messages m where m.id = v_id;
  return jsonb_build_object('message', jsonb_build_object(
    'id', v_msg.id, 'content', v_msg.content, 'sent_at', v_msg.sent_at, 'twilio_sid', v_msg.twilio_sid,
    'status', v_msg.status, 'message_category', v_msg.message_category, 'ai_generated', v_msg.ai_generated,
    'approved_draft_id', v_draft.id
  ));
end
$$;
comment on function private.ai_send(uuid, uuid, text) is
  'messages/ai-send: approves a draft (optionally with edited content) or sends given content through '
  'the send path; the draft disappears from the conversation and the queued message takes its place.';

create function public.ai_send(lead_id uuid, message_id uuid default null, content text default null)
returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.ai_send(lead_id, message_id, content)
$$;
comment on function public.ai_send(uuid, uuid, text) is 'POST messages/ai-send: see private.ai_send.';

revoke all on function private.ai_latest_message_id(uuid), private.ai_draft_json(public.messages),
  private.caller_conversation(uuid, uuid), private.request_ai_draft(uuid, uuid, boolean),
  private.ai_draft_job(bigint), private.ai_draft_begin(uuid), private.ai_draft_commit(uuid, text, jsonb),
  private.ai_send(uuid, uuid, text), public.ai_send(uuid, uuid, text)
from public, anon;
grant execute on function private.request_ai_draft(uuid, uuid, boolean), private.ai_draft_job(bigint),
  private.ai_send(uuid, uuid, text), public.ai_send(uuid, uuid, text)
to authenticated, service_role;
grant execute on function private.ai_latest_message_id(uuid), private.ai_draft_json(public.messages),
  private.ai_draft_begin(uuid), private.ai_draft_commit(uuid, text, jsonb)
to service_role;
