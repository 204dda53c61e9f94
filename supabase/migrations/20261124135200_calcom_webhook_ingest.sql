-- Cal.com webhooks: the calcom-webhook edge function checks X-Cal-Signature-256 and hands the
-- parsed body to this one function. Each (booking uid, trigger event) is handled once.

create function private.ingest_calcom_webhook(p_event jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_trigger text := p_event ->> 'triggerEvent';
  v_payload jsonb := p_event -> 'payload';
  v_uid text;
  v_from_uid text;
  v_start timestamptz;
  v_end timestamptz;
  v_old_start timestamptz;
  v_old_end timestamptz;
  v_lead_text text;
  v_lead_id uuid;
  v_known_lead uuid;
  v_client_id uuid;
  v_event_type text;
  v_setting_type text;
  v_event_id bigint;
  v_details jsonb;
  v_result jsonb;
begin
  if jsonb_typeof(p_event) is distinct from 'object' or v_trigger is null then
    raise exception 'not a Cal.com webhook event (no triggerEvent)' using errcode = '22023';
  end if;
  if v_trigger = 'PING' then
    -- Cal.com's "ping test" from the webhook settings page.
    return jsonb_build_object('status', 'ok', 'event', v_trigger);
  end if;
  if v_trigger not in ('BOOKING_CREATED', 'BOOKING_CANCELLED', 'BOOKING_RESCHEDULED') then
    return jsonb_build_object('status', 'ignored', 'reason', 'unsupported_event', 'event', v_trigger);
  end if;
  if jsonb_typeof(v_payload) is distinct from 'object' or coalesce(v_payload ->> 'uid', '') = '' then
    raise exception 'a % event needs payload.uid', v_trigger using errcode = '22023';
  end if;
  v_uid := v_payload ->> 'uid';
  begin
    v_start := (v_payload ->> 'startTime')::timestamptz;
    v_end := (v_payload ->> 'endTime')::timestamptz;
  exception when others then
    raise exception 'payload.startTime / endTime are not timestamps' using errcode = '22023';
  end;
  if v_trigger = 'BOOKING_RESCHEDULED' then
    -- The replaced booking's times, kept for it in case its own BOOKING_CREATED comes later.
    begin
      v_old_start := (v_payload ->> 'rescheduleStartTime')::timestamptz;
      v_old_end := greatest((v_payload ->> 'rescheduleEndTime')::timestamptz, v_old_start);
    exception when others then
      v_old_start := null;
      v_old_end := null;
    end;
  end if;
  if v_trigger <> 'BOOKING_CANCELLED' and v_start is null then
    raise exception 'a % event needs payload.startTime', v_trigger using errcode = '22023';
  end if;

  -- One effect per (uid, event): a repeated delivery returns what the first one did.
  insert into private.calcom_webhook_events (booking_uid, trigger_event, payload)
  values (v_uid, v_trigger, p_event)
  on conflict (booking_uid, trigger_event) do nothing
  returning id into v_event_id;
  if v_event_id is null then
    select e.result into v_result
    from private.calcom_webhook_events e
    where e.booking_uid = v_uid and e.trigger_event = v_trigger;
    return jsonb_build_object('status', 'duplicate', 'event', v_trigger, 'uid', v_uid, 'first_result', v_result);
  end if;

  v_from_uid := coalesce(
    nullif(v_payload ->> 'rescheduleUid', ''),
    nullif(v_payload ->> 'rescheduledFromUid', ''),
    nullif(v_payload ->> 'fromReschedule', '')
  );

  -- Which lead: a booking we already know decides; otherwise the lead_id we put in metadata.
  select b.lead_id into v_known_lead from public.bookings b where b.cal_booking_uid = v_uid;
  if v_known_lead is null and v_from_uid is not null then
    select b.lead_id into v_known_lead from public.bookings b where b.cal_booking_uid = v_from_uid;
  end if;
  v_lead_text := v_payload -> 'metadata' ->> 'lead_id';
  if v_known_lead is not null then
    v_lead_id := v_known_lead;
  elsif v_lead_text ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    v_lead_id := v_lead_text::uuid;
  end if;
  select l.client_id into v_client_id from public.leads l where l.id = v_lead_id;

  if v_client_id is null then
    v_result := jsonb_build_object('status', 'ignored', 'reason', 'unknown_lead');
  elsif v_known_lead is null and v_trigger <> 'BOOKING_CANCELLED' then
    -- A booking we did not make: it must be for the event type this client books leads into.
    v_event_type := v_payload ->> 'eventTypeId';
    v_setting_type := private.calcom_settings(v_client_id) ->> 'event_type_id';
    if v_setting_type is not null and v_event_type is not null and v_event_type <> v_setting_type then
      v_result := jsonb_build_object('status', 'ignored', 'reason', 'event_type_mismatch');
    end if;
  end if;

  if v_result is null then
    v_details := jsonb_strip_nulls(jsonb_build_object(
      'cal_booking_id', case when v_payload ->> 'bookingId' ~ '^[0-9]+$' then v_payload -> 'bookingId' end,
      'event_type_id', case when v_payload ->> 'eventTypeId' ~ '^[0-9]+$' then v_payload -> 'eventTypeId' end,
      'title', v_payload -> 'title',
      'attendees', v_payload -> 'attendees',
      'location', v_payload -> 'location',
      'metadata', v_payload -> 'metadata',
      'reschedule_start_time', v_old_start,
      'reschedule_end_time', v_old_end
    ));
    if v_trigger = 'BOOKING_CANCELLED' then
      v_result := private.record_booking_cancellation(
        v_uid,
        v_payload ->> 'cancellationReason',
        v_payload ->> 'cancelledBy',
        v_lead_id,
        v_start,
        v_end,
        v_details
      );
    else
      v_result := private.record_booking(
        v_lead_id, v_uid, v_start, coalesce(v_end, v_start), 'webhook', null, null,
        nullif(v_payload ->> 'additionalNotes', ''), v_details,
        case when v_trigger = 'BOOKING_RESCHEDULED' then v_from_uid end
      );
      v_result := v_result || jsonb_build_object('status', case when (v_result ->> 'created')::boolean then 'recorded' else 'already_recorded' end);
    end if;
  end if;

  v_result := v_result || jsonb_build_object('event', v_trigger, 'uid', v_uid);
  update private.calcom_webhook_events
  set result = v_result, lead_id = v_lead_id, client_id = v_client_id
  where id = v_event_id;
  return v_result;
end
$$;
comment on function private.ingest_calcom_webhook(jsonb) is
  'Handles one verified Cal.com webhook body ({triggerEvent, payload}): BOOKING_CREATED and BOOKING_RESCHEDULED '
  'record the booking on the lead (metadata.lead_id, or the booking it replaces), BOOKING_CANCELLED undoes it. '
  'Idempotent on (payload.uid, triggerEvent). Returns what it did.';

revoke all on function private.ingest_calcom_webhook(jsonb) from public, anon, authenticated;
grant execute on function private.ingest_calcom_webhook(jsonb) to service_role;
