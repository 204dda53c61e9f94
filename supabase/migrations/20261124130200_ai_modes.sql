-- AI modes and the consecutive-AI-message safeguard.
-- Mode resolution: conversation -> dataset -> client settings `ai_mode` -> 'auto'; a lead in
-- manual mode is always 'off'. The safeguard hands a conversation to a person once the AI has
-- sent `ai_max_consecutive_messages` (client setting, default 10) messages without a person
-- stepping in.

create function private.effective_ai_mode(p_conversation_id uuid) returns public.ai_mode
language sql
stable
security definer
set search_path = ''
as $$
  select case
    when l.manual_mode then 'off'::public.ai_mode
    else coalesce(
      cv.ai_mode,
      d.ai_mode,
      case when c.settings ->> 'ai_mode' in ('auto', 'suggest', 'off') then (c.settings ->> 'ai_mode')::public.ai_mode end,
      'auto'::public.ai_mode
    )
  end
  from public.conversations cv
  join public.leads l on l.id = cv.lead_id
  join public.datasets d on d.id = cv.dataset_id
  join public.clients c on c.id = cv.client_id
  where cv.id = p_conversation_id
$$;
comment on function private.effective_ai_mode(uuid) is
  'The AI mode that applies to a conversation now: off when the lead is in manual mode, else the first '
  'set of conversation, dataset and client settings ai_mode, else auto. Null for an unknown conversation.';

create function private.ai_max_consecutive(p_client_id uuid) returns integer
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(
    case when c.settings ->> 'ai_max_consecutive_messages' ~ '^[0-9]{1,4}$'
      then greatest(1, (c.settings ->> 'ai_max_consecutive_messages')::integer) end,
    10
  )
  from public.clients c where c.id = p_client_id
$$;
comment on function private.ai_max_consecutive(uuid) is
  'Client setting ai_max_consecutive_messages (default 10): AI messages allowed in a row before handover.';

alter table public.conversations
add column ai_consecutive_messages integer not null default 0 check (ai_consecutive_messages >= 0);
comment on column public.conversations.ai_consecutive_messages is
  'AI messages sent on their own since a person last stepped in (a staff message, an approved draft, '
  'or manual mode switched off). Compared with the client''s ai_max_consecutive_messages.';

-- A person stepping in resets the count.
create function private.reset_ai_streak_on_staff_message() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.conversations set ai_consecutive_messages = 0
  where id = new.conversation_id and ai_consecutive_messages <> 0;
  return null;
end
$$;
create trigger messages_reset_ai_streak after insert on public.messages
  for each row
  when (new.direction = 'outbound' and new.sent_by is not null and new.conversation_id is not null)
  execute function private.reset_ai_streak_on_staff_message();

create function private.reset_ai_streak_on_manual_off() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.conversations set ai_consecutive_messages = 0
  where lead_id = new.id and ai_consecutive_messages <> 0;
  return null;
end
$$;
create trigger leads_reset_ai_streak after update of manual_mode on public.leads
  for each row when (old.manual_mode and not new.manual_mode)
  execute function private.reset_ai_streak_on_manual_off();

create function private.ai_handover(
  p_conversation_id uuid, p_reason text, p_detail text default null
) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_conv public.conversations;
  v_lead public.leads;
begin
  update public.conversations set status = 'needs_human'
  where id = p_conversation_id
  returning * into v_conv;
  if not found then
    return;
  end if;
  update public.leads set manual_mode = true, manual_mode_activated_at = now()
  where id = v_conv.lead_id and not manual_mode
  returning * into v_lead;
  if v_lead.id is null then
    select l.* into v_lead from public.leads l where l.id = v_conv.lead_id;
  end if;
  perform private.notify_staff(
    v_conv.client_id,
    'Conversation needs a person',
    format('%s: %s', coalesce(nullif(trim(concat_ws(' ', v_lead.first_name, v_lead.last_name)), ''), v_lead.phone_number),
      coalesce(p_detail, p_reason)),
    'immediate',
    '/conversations/' || v_conv.id,
    jsonb_build_object('conversation_id', v_conv.id, 'lead_id', v_lead.id, 'reason', p_reason),
    v_conv.dataset_id
  );
end
$$;
comment on function private.ai_handover(uuid, text, text) is
  'Hands a conversation to a person: status needs_human, lead manual mode on, staff notified.';

create function private.ai_flag_needs_human(
  p_conversation_id uuid, p_reason text, p_detail text default null
) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_conv public.conversations;
begin
  -- Unlike a handover, the AI stays on for the lead's next message; a person must look now.
  update public.conversations set status = 'needs_human'
  where id = p_conversation_id
  returning * into v_conv;
  if found then
    perform private.notify_staff(
      v_conv.client_id,
      case when p_reason = 'booking_failed' then 'Booking failed: please confirm a time with the lead'
        else 'AI could not answer a lead' end,
      coalesce(p_detail, p_reason), 'immediate',
      '/conversations/' || v_conv.id,
      jsonb_build_object('conversation_id', v_conv.id, 'lead_id', v_conv.lead_id, 'reason', p_reason),
      v_conv.dataset_id
    );
  end if;
end
$$;
comment on function private.ai_flag_needs_human(uuid, text, text) is
  'Flags a conversation needs_human and notifies staff (e.g. Claude unavailable after every retry).';

revoke all on function private.effective_ai_mode(uuid), private.ai_max_consecutive(uuid),
  private.reset_ai_streak_on_staff_message(), private.reset_ai_streak_on_manual_off(),
  private.ai_handover(uuid, text, text), private.ai_flag_needs_human(uuid, text, text)
from public, anon;
grant execute on function private.effective_ai_mode(uuid), private.ai_max_consecutive(uuid),
  private.ai_handover(uuid, text, text), private.ai_flag_needs_human(uuid, text, text)
to service_role;
