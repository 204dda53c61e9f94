-- Bookings: record_booking / record_booking_cancellation on the lead (idempotent on the
-- Cal.com uid), ingest_calcom_webhook (dedupe, reschedule chain, unknown lead, event type
-- check, malformed events), and who may read or write bookings.
begin;
set local search_path = public, extensions;
set local client_min_messages = warning;
select plan(39);

select tests.create_client('Acme') as acme \gset
select tests.create_client('Other') as other \gset
select tests.create_user('admin@acme.test', :'acme', 'admin') as admin \gset
select tests.create_user('other@other.test', :'other', 'admin') as other_admin \gset
insert into datasets (client_id, name) values (:'acme', 'One') returning id as d1 \gset
insert into datasets (client_id, name) values (:'acme', 'Two') returning id as d2 \gset
insert into datasets (client_id, name) values (:'other', 'Theirs') returning id as d3 \gset
select tests.create_user('restricted@acme.test', :'acme', 'sales_rep', 'active', false, array[:'d2'::uuid])
  as restricted \gset
insert into leads (client_id, dataset_id, phone_number, first_name, contact_status)
values (:'acme', :'d1', '+447700935001', 'Ann', 'HOT') returning id as ann \gset
insert into leads (client_id, dataset_id, phone_number, first_name, contact_status)
values (:'acme', :'d1', '+447700935002', 'Bob', 'WARM') returning id as bob \gset
insert into leads (client_id, dataset_id, phone_number, first_name, contact_status)
values (:'other', :'d3', '+447700935003', 'Cy', 'REPLIED') returning id as cy \gset

-- record_booking -------------------------------------------------------------------------
select is(
  (private.record_booking(:'ann', 'uid-a', '2030-01-07 10:00Z', '2030-01-07 10:30Z', 'api', :'admin',
    'https://cal.test/booking/uid-a', 'quote', '{"cal_booking_id": 11, "event_type_id": 5}') ->> 'created')::boolean,
  true, 'record_booking creates the booking'
);
select results_eq(
  $$select contact_status::text, call_booked, call_booked_time, cal_booking_id, manual_mode,
           manual_mode_activated_at is not null from leads where id = '$$ || :'ann' || $$'$$,
  $$values ('CALL_BOOKED', true, '2030-01-07 10:00Z'::timestamptz, 'uid-a', true, true)$$,
  'the lead is booked, in manual mode'
);
select results_eq(
  $$select source, booked_by, cal_booking_id, event_type_id, previous_lead_status::text, status::text
    from bookings where cal_booking_uid = 'uid-a'$$,
  $$values ('api', '$$ || :'admin' || $$'::uuid, 11::bigint, 5::bigint, 'HOT', 'accepted')$$,
  'the booking keeps who made it, the Cal.com ids and the previous status'
);
select is(
  (select count(*)::integer from notifications where client_id = :'acme' and title = 'Call booked'),
  1, 'staff are notified once'
);
select is(
  (private.record_booking(:'ann', 'uid-a', '2030-01-07 10:00Z', '2030-01-07 10:30Z', 'webhook') ->> 'created')::boolean,
  false, 'recording the same uid again is a no-op'
);
select is(
  (select count(*)::integer from notifications where client_id = :'acme' and title = 'Call booked'),
  1, 'and notifies nobody again'
);
select tests.throws_status(
  format($$select private.record_booking(%L, 'uid-a', '2030-01-07 10:00Z', '2030-01-07 10:30Z')$$, :'bob'),
  409, null, 'a uid recorded for one lead cannot be claimed by another'
);
select tests.throws_status(
  $$select private.record_booking(gen_random_uuid(), 'uid-x', '2030-01-07 10:00Z', '2030-01-07 10:30Z')$$,
  404, null, 'an unknown lead is P0002'
);
select tests.throws_status(
  format($$select private.record_booking(%L, ' ', '2030-01-07 10:00Z', '2030-01-07 10:30Z')$$, :'bob'),
  400, null, 'a blank uid is refused'
);
select tests.throws_status(
  format($$select private.record_booking(%L, 'uid-y', '2030-01-07 10:00Z', '2030-01-07 09:00Z')$$, :'bob'),
  400, null, 'an end before the start is refused'
);
select tests.throws_status(
  format($$select private.record_booking(%L, 'uid-y', '2030-01-07 10:00Z', '2030-01-07 10:30Z', 'fax')$$, :'bob'),
  400, null, 'an unknown source is refused'
);

-- cancellation ---------------------------------------------------------------------------
select is(
  private.record_booking_cancellation('uid-a', 'changed my mind') ->> 'lead_status', 'HOT',
  'cancelling the current booking restores the previous status'
);
select results_eq(
  $$select contact_status::text, call_booked, call_booked_time, cal_booking_id, manual_mode
    from leads where id = '$$ || :'ann' || $$'$$,
  $$values ('HOT', false, null::timestamptz, null::text, true)$$,
  'the lead is unbooked and stays in manual mode'
);
select results_eq(
  $$select status::text, cancellation_reason from bookings where cal_booking_uid = 'uid-a'$$,
  $$values ('cancelled', 'changed my mind')$$,
  'the booking is marked cancelled with the reason'
);
select is(
  private.record_booking_cancellation('uid-a') ->> 'status', 'duplicate', 'a second cancellation is a no-op'
);
select is(
  (select count(*)::integer from notifications where client_id = :'acme' and title = 'Call cancelled'),
  1, 'staff are told about the cancellation once'
);
select is(
  private.record_booking_cancellation('nope') ->> 'reason', 'unknown_booking', 'an unknown uid is ignored'
);

-- webhook ingest -------------------------------------------------------------------------
create function pg_temp.event(p_trigger text, p_payload jsonb) returns jsonb
language sql as $$
  select jsonb_build_object('triggerEvent', p_trigger, 'createdAt', now(), 'payload', p_payload)
$$;

select is(
  private.ingest_calcom_webhook(pg_temp.event('BOOKING_CREATED', jsonb_build_object(
    'uid', 'w-1', 'bookingId', 21, 'eventTypeId', 5, 'startTime', '2030-02-04T09:00:00Z',
    'endTime', '2030-02-04T09:30:00Z', 'metadata', jsonb_build_object('lead_id', :'bob')))) ->> 'status',
  'recorded', 'BOOKING_CREATED books the lead named in metadata'
);
select results_eq(
  $$select contact_status::text, cal_booking_id from leads where id = '$$ || :'bob' || $$'$$,
  $$values ('CALL_BOOKED', 'w-1')$$, 'the lead carries the booking'
);
select is(
  private.ingest_calcom_webhook(pg_temp.event('BOOKING_CREATED', jsonb_build_object(
    'uid', 'w-1', 'startTime', '2030-02-04T09:00:00Z', 'endTime', '2030-02-04T09:30:00Z',
    'metadata', jsonb_build_object('lead_id', :'bob')))) ->> 'status',
  'duplicate', 'the same uid and event again is a duplicate'
);
select is(
  (select count(*)::integer from private.calcom_webhook_events where booking_uid = 'w-1'), 1,
  'one stored event per (uid, trigger)'
);
select is(
  private.ingest_calcom_webhook(pg_temp.event('BOOKING_RESCHEDULED', jsonb_build_object(
    'uid', 'w-2', 'rescheduleUid', 'w-1', 'startTime', '2030-02-05T11:00:00Z', 'endTime', '2030-02-05T11:30:00Z',
    'metadata', '{}'::jsonb))) ->> 'rescheduled',
  'true', 'BOOKING_RESCHEDULED finds the lead through the booking it replaces'
);
select results_eq(
  $$select cal_booking_id, call_booked_time from leads where id = '$$ || :'bob' || $$'$$,
  $$values ('w-2', '2030-02-05T11:00:00Z'::timestamptz)$$, 'the lead moves to the new booking'
);
select results_eq(
  $$select cal_booking_uid, status::text, rescheduled_to_uid, rescheduled_from_uid, previous_lead_status::text
    from bookings where lead_id = '$$ || :'bob' || $$' order by start_time$$,
  $$values ('w-1', 'rescheduled', 'w-2', null::text, 'WARM'), ('w-2', 'accepted', null, 'w-1', 'WARM')$$,
  'the old booking points to the new one, which keeps the status from before'
);
select is(
  private.ingest_calcom_webhook(pg_temp.event('BOOKING_CANCELLED', jsonb_build_object(
    'uid', 'w-1', 'startTime', '2030-02-04T09:00:00Z'))) ->> 'status',
  'superseded', 'cancelling the replaced booking does not touch the lead'
);
select is(
  (select call_booked from leads where id = :'bob'), true, 'the lead keeps its moved call'
);
select is(
  private.ingest_calcom_webhook(pg_temp.event('BOOKING_CANCELLED', jsonb_build_object(
    'uid', 'w-2', 'startTime', '2030-02-05T11:00:00Z', 'cancellationReason', 'ill'))) ->> 'lead_status',
  'WARM', 'cancelling the moved booking restores the status from before the first booking'
);
select is(
  private.ingest_calcom_webhook(pg_temp.event('BOOKING_CREATED', jsonb_build_object(
    'uid', 'w-3', 'startTime', '2030-02-04T09:00:00Z', 'metadata', jsonb_build_object('lead_id', gen_random_uuid()))))
  ->> 'reason',
  'unknown_lead', 'an unknown lead is acknowledged and ignored'
);
update clients set settings = jsonb_build_object('calcom', jsonb_build_object('event_type_id', 5)) where id = :'other';
select is(
  private.ingest_calcom_webhook(pg_temp.event('BOOKING_CREATED', jsonb_build_object(
    'uid', 'w-4', 'eventTypeId', 6, 'startTime', '2030-02-04T09:00:00Z',
    'metadata', jsonb_build_object('lead_id', :'cy')))) ->> 'reason',
  'event_type_mismatch', 'a booking of another event type does not book the client''s lead'
);
select is((select call_booked from leads where id = :'cy'), false, 'so the lead is untouched');
select throws_ok(
  $$select private.ingest_calcom_webhook('{"payload": {}}')$$, '22023', null, 'no triggerEvent is 22023'
);
select throws_ok(
  $$select private.ingest_calcom_webhook('{"triggerEvent": "BOOKING_CREATED", "payload": {"uid": "z", "startTime": "soon"}}')$$,
  '22023', null, 'an unreadable startTime is 22023'
);
select throws_ok(
  $$update clients set settings = '{"calcom": {"event_type_id": "five"}}' where name = 'Acme'$$,
  '23514', null, 'settings.calcom.event_type_id must be a number'
);

-- who may read and write -----------------------------------------------------------------
select tests.authenticate_as(:'admin');
select is((select count(*)::integer from bookings), 3, 'an admin reads the client''s bookings');
select throws_ok(
  format($$insert into bookings (client_id, dataset_id, lead_id, cal_booking_uid, start_time, end_time, source)
           values (%L, %L, %L, 'forged', now(), now(), 'api')$$, :'acme', :'d1', :'ann'),
  '42501', null, 'users cannot write bookings directly'
);
select throws_ok(
  format($$select private.record_booking(%L, 'forged', now(), now())$$, :'ann'),
  '42501', null, 'users cannot call record_booking'
);
select throws_ok(
  $$select private.ingest_calcom_webhook('{}')$$, '42501', null, 'users cannot call the webhook ingest'
);
select tests.clear_authentication();
select tests.authenticate_as(:'restricted');
select is((select count(*)::integer from bookings), 0, 'a member restricted to another dataset sees none');
select tests.clear_authentication();
select tests.authenticate_as(:'other_admin');
select is((select count(*)::integer from bookings), 0, 'another client''s admin sees none');

select * from finish();
rollback;
