-- Opt-out, opt-in and undeliverable numbers, cancelling pending sends, and applying a message
-- status forward only (with Twilio error classification). Used by the send path, the status
-- callbacks and the inbound SMS path alike.

create function private.cancel_pending_messages(
  p_client_id uuid, p_phone text, p_lead_id uuid, p_categories public.message_category [], p_reason text
) returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_rows integer;
begin
  -- Pending messages only: a message already handed to a worker ('sending') is past recall,
  -- which is why prepare_send re-checks everything at the last moment.
  with canceled as (
    update public.messages m
    set status = 'canceled', error_message = p_reason
    where m.status = 'pending'
      and m.client_id = p_client_id
      and (p_phone is null or m.to_number = p_phone)
      and (p_lead_id is null or m.lead_id = p_lead_id)
      and (p_categories is null or m.message_category = any (p_categories))
    returning m.id
  ), jobs as (
    update private.jobs j
    set status = 'canceled', finished_at = now(), last_error = 'message canceled: ' || p_reason, locked_until = null
    from canceled c
    where j.idempotency_key = 'sms.send:' || c.id and j.status = 'queued'
    returning 1
  )
  select count(*) into v_rows from canceled;
  return v_rows;
end
$$;
comment on function private.cancel_pending_messages(uuid, text, uuid, public.message_category [], text) is
  'Cancels pending outbound messages (by number and/or lead and categories) and their queued sms.send jobs.';

create function private.opt_out_number(p_client_id uuid, p_phone text, p_reason text, p_source text)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_leads integer;
begin
  insert into public.suppressions (client_id, phone_number, reason, source, created_by)
  values (p_client_id, p_phone, left(p_reason, 200), p_source, null)
  on conflict (client_id, phone_number) do nothing;
  update public.leads l
  set opted_out = true, opted_out_at = coalesce(l.opted_out_at, now()), contact_status = 'OPTED_OUT'
  where l.client_id = p_client_id and l.phone_number = p_phone
    and (not l.opted_out or l.contact_status <> 'OPTED_OUT');
  get diagnostics v_leads = row_count;
  perform private.cancel_pending_messages(p_client_id, p_phone, null, null, 'opted_out');
  return v_leads;
end
$$;
comment on function private.opt_out_number(uuid, text, text, text) is
  'Opts a number out for a client at once: suppression row, every lead with that number OPTED_OUT, every '
  'pending message to it canceled. Also the entry point for the AI''s opt-out intent (source ai).';

create function private.opt_in_number(p_client_id uuid, p_phone text) returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_removed integer;
begin
  delete from public.suppressions s where s.client_id = p_client_id and s.phone_number = p_phone;
  get diagnostics v_removed = row_count;
  -- Back in contact, but the sequence does not silently restart: the lead is REPLIED (it has
  -- just texted us), which no sequence step picks up; staff decide what happens next.
  update public.leads l
  set opted_out = false, opted_out_at = null,
      contact_status = case when l.contact_status = 'OPTED_OUT' then 'REPLIED' else l.contact_status end
  where l.client_id = p_client_id and l.phone_number = p_phone and l.opted_out;
  return v_removed;
end
$$;
comment on function private.opt_in_number(uuid, text) is
  'Lifts a client''s suppression of a number (START/UNSTOP/YES); its leads become REPLIED, not re-sequenced.';

create function private.mark_number_undeliverable(p_client_id uuid, p_phone text, p_code integer) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.leads l
  set contact_status = 'UNDELIVERABLE'
  where l.client_id = p_client_id and l.phone_number = p_phone
    and l.contact_status not in ('UNDELIVERABLE', 'OPTED_OUT', 'CALL_BOOKED', 'CONVERTED');
  perform private.cancel_pending_messages(p_client_id, p_phone, null, null, 'undeliverable (Twilio ' || p_code || ')');
end
$$;
comment on function private.mark_number_undeliverable(uuid, text, integer) is
  'An invalid or landline number (Twilio 21211, 21614, 30006...): its leads become UNDELIVERABLE, pending messages canceled.';

create function private.classify_send_error(p_msg public.messages, p_code integer) returns text
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_code is null or p_msg.to_number is null then
    return null;
  end if;
  if p_code = 21610 then
    perform private.opt_out_number(p_msg.client_id, p_msg.to_number, 'Twilio error 21610: recipient unsubscribed',
      'twilio_error');
    return 'opted_out';
  end if;
  if p_code in (21211, 21214, 21217, 21612, 21614, 30005, 30006) then
    perform private.mark_number_undeliverable(p_msg.client_id, p_msg.to_number, p_code);
    return 'undeliverable';
  end if;
  return null;
end
$$;
comment on function private.classify_send_error(public.messages, integer) is
  'Acts on a Twilio error code: 21610 opts the number out; invalid/landline codes make it undeliverable.';

create function private.apply_message_status(
  p_id uuid, p_new public.message_status, p_error_code integer, p_error_message text, p_at timestamptz
) returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_msg public.messages;
begin
  select m.* into v_msg from public.messages m where m.id = p_id for update;
  if not found or p_new is null then
    return false;
  end if;
  -- Forward only: delivered is never overwritten by a late 'sent', a failure never hidden by
  -- a later segment's status; final states stay final.
  if private.message_status_rank(v_msg.status) >= 5
     or private.message_status_rank(p_new) <= private.message_status_rank(v_msg.status) then
    return false;
  end if;
  update public.messages m
  set status = p_new,
      sent_at = case when p_new in ('queued', 'sent', 'delivered') then coalesce(m.sent_at, p_at) else m.sent_at end,
      delivered_at = case when p_new = 'delivered' then coalesce(m.delivered_at, p_at) else m.delivered_at end,
      failed_at = case when p_new in ('failed', 'undelivered') then coalesce(m.failed_at, p_at) else m.failed_at end,
      error_code = coalesce(p_error_code, m.error_code),
      error_message = coalesce(p_error_message, m.error_message)
  where m.id = p_id
  returning m.* into v_msg;
  if p_new in ('failed', 'undelivered') then
    perform private.classify_send_error(v_msg, p_error_code);
  end if;
  return true;
end
$$;
comment on function private.apply_message_status(uuid, public.message_status, integer, text, timestamptz) is
  'Moves an outbound message forward (never back), stamping sent/delivered/failed times and error codes.';

create function private.apply_twilio_status_event(p_sid text, p_status text, p_error_code integer, p_at timestamptz)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid;
begin
  select m.id into v_id from public.messages m where m.twilio_sid = p_sid and m.direction = 'outbound';
  if v_id is null then
    return false;
  end if;
  perform private.apply_message_status(
    v_id, private.twilio_message_status(p_status), p_error_code,
    case when p_error_code is not null then 'Twilio error ' || p_error_code end, p_at
  );
  return true;
end
$$;
comment on function private.apply_twilio_status_event(text, text, integer, timestamptz) is
  'Applies one status callback to the message with that sid; false when no message has the sid yet.';

revoke all on function private.cancel_pending_messages(uuid, text, uuid, public.message_category [], text),
  private.opt_out_number(uuid, text, text, text), private.opt_in_number(uuid, text),
  private.mark_number_undeliverable(uuid, text, integer), private.classify_send_error(public.messages, integer),
  private.apply_message_status(uuid, public.message_status, integer, text, timestamptz),
  private.apply_twilio_status_event(text, text, integer, timestamptz)
  from public, anon, authenticated;
grant execute on function private.opt_out_number(uuid, text, text, text), private.opt_in_number(uuid, text)
  to service_role;
