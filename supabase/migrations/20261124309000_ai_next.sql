-- AI band, next changes (to be folded into 20261124300000_ai.sql).
--
-- ai_reply_begin also returns what booking a call needs, read in the same round trip as the
-- context: the client's Cal.com settings (`calcom`, as private.calcom_settings gives them) and
-- the lead's booking facts (`booking`: names, contact, time zone, current Cal.com booking).
-- The worker offers slots and books from these instead of reading the client and the lead
-- again; the opt-out and same-booking checks and private.record_booking still run at booking
-- time, so nothing stale decides a booking.

-- Worker step 1 of ai.reply: skip (with the reason), or the context to generate from plus the
-- Cal.com settings and the lead's booking facts.
create or replace function private.ai_reply_begin(p_conversation_id uuid, p_inbound_message_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_reason text := private.ai_reply_blocker(p_conversation_id, p_inbound_message_id);
  v_client_id uuid;
  v_booking jsonb;
begin
  if v_reason = 'safeguard' then
    perform private.ai_safeguard_handover(p_conversation_id);
  end if;
  if v_reason is not null then
    return jsonb_build_object('action', 'skip', 'reason', v_reason);
  end if;
  select
    l.client_id,
    jsonb_build_object(
      'lead_id', l.id, 'client_id', l.client_id, 'first_name', l.first_name,
      'last_name', l.last_name, 'email', l.email, 'phone_number', l.phone_number,
      'time_zone', coalesce(l.timezone, c.timezone), 'cal_booking_id', l.cal_booking_id,
      'call_booked', l.call_booked, 'call_booked_time', l.call_booked_time
    )
  into v_client_id, v_booking
  from public.conversations cv
  join public.leads l on l.id = cv.lead_id
  join public.clients c on c.id = l.client_id
  where cv.id = p_conversation_id;
  return jsonb_build_object(
    'action', 'generate',
    'context', private.ai_context(p_conversation_id),
    'calcom', private.calcom_settings(v_client_id),
    'booking', v_booking
  );
end
$$;
comment on function private.ai_reply_begin(uuid, uuid) is
  'Worker step 1 of ai.reply: skip (with the reason), or the context to generate from, the client''s '
  'Cal.com settings (calcom) and the lead''s booking facts (booking), so booking reads neither again.';
