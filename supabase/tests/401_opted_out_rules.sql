-- No booking, no AI answer and no manual send to an opted-out lead: one who texted STOP
-- (leads.opted_out) or whose number is on the client's suppression list (a staff entry does
-- not flag the lead row). Checked in SQL on every path: record_booking (api/ai),
-- ai_reply_begin / ai_reply_blocker / ai_draft_begin and send_message.
begin;
set local search_path = public, extensions;
set local client_min_messages = warning;
select plan(15);

-- The PostgREST error an expression raises: {code, message, details, status}, or null.
create function pg_temp.rpc_error(p_sql text) returns jsonb
language plpgsql
as $$
declare
  v_message text;
  v_detail text;
begin
  execute p_sql;
  return null;
exception when sqlstate 'PGRST' then
  get stacked diagnostics v_message = message_text, v_detail = pg_exception_detail;
  return v_message::jsonb - 'hint' || jsonb_build_object('status', (v_detail::jsonb ->> 'status')::integer);
end
$$;

select tests.create_client('Acme') as acme \gset
select tests.create_user('admin@acme.test', :'acme', 'admin') as admin \gset
select tests.create_user('rep@acme.test', :'acme', 'sales_rep') as rep \gset
insert into datasets (client_id, name) values (:'acme', 'One') returning id as d1 \gset
insert into leads (client_id, dataset_id, phone_number, first_name, contact_status)
values (:'acme', :'d1', '+447700936001', 'Stopped', 'HOT') returning id as stopped \gset
insert into leads (client_id, dataset_id, phone_number, first_name, contact_status)
values (:'acme', :'d1', '+447700936002', 'Listed', 'WARM') returning id as listed \gset
insert into leads (client_id, dataset_id, phone_number, first_name, contact_status)
values (:'acme', :'d1', '+447700936003', 'Fine', 'WARM') returning id as fine \gset
select private.opt_out_number(:'acme', '+447700936001', 'Replied "STOP"', 'inbound_keyword');
insert into suppressions (client_id, phone_number, reason, source)
values (:'acme', '+447700936002', 'asked on the phone', 'staff');

select ok(private.lead_is_opted_out(:'stopped'), 'a lead who texted STOP is opted out');
select ok(private.lead_is_opted_out(:'listed'), 'a lead whose number staff suppressed is opted out');
select ok(not private.lead_is_opted_out(:'fine'), 'any other lead is not');

-- bookings -------------------------------------------------------------------------------
select is(
  pg_temp.rpc_error(format(
    $$select private.record_booking(%L, 'uid-s', '2030-01-07 10:00Z', '2030-01-07 10:30Z', 'api')$$, :'stopped')),
  jsonb_build_object('code', 'CONFLICT', 'status', 409,
    'message', 'This lead has opted out; no call can be booked for them.',
    'details', jsonb_build_object('lead_id', :'stopped', 'reason', 'opted_out')),
  'staff cannot book an opted-out lead: 409 CONFLICT'
);
select is(
  pg_temp.rpc_error(format(
    $$select private.record_booking(%L, 'uid-l', '2030-01-07 10:00Z', '2030-01-07 10:30Z', 'ai')$$, :'listed')) ->> 'code',
  'CONFLICT', 'the AI cannot book a suppressed number'
);
select is((select count(*)::integer from bookings), 0, 'nothing was recorded');
select results_eq(
  $$select call_booked, contact_status::text, manual_mode from leads where id = '$$ || :'listed' || $$'$$,
  $$values (false, 'WARM', false)$$, 'the lead is untouched'
);
-- A booking the lead made on Cal.com themselves is a fact: recorded, the lead stays opted out.
select is(
  (private.record_booking(:'stopped', 'uid-w', '2030-01-07 11:00Z', '2030-01-07 11:30Z', 'webhook') ->> 'created')::boolean,
  true, 'a booking the lead made on Cal.com is recorded'
);
select results_eq(
  $$select call_booked, contact_status::text from leads where id = '$$ || :'stopped' || $$'$$,
  $$values (true, 'OPTED_OUT')$$, 'and the lead stays OPTED_OUT'
);

-- AI answers -----------------------------------------------------------------------------
select tests.create_message(:'listed', 'Tell me more', 'inbound') as listed_in \gset
select id as listed_conv from conversations where lead_id = :'listed' \gset
select is(private.ai_reply_blocker(:'listed_conv', :'listed_in'), 'opted_out',
  'the AI does not answer a suppressed number');
select is(private.ai_reply_begin(:'listed_conv', :'listed_in'), '{"action": "skip", "reason": "opted_out"}'::jsonb,
  'ai_reply_begin skips it before Claude is asked');
select is(private.ai_draft_begin(:'listed_conv') ->> 'reason', 'opted_out', 'nor drafts an answer for it');

-- manual sends ---------------------------------------------------------------------------
select tests.authenticate_as(:'rep');
select throws_ok(format($$select public.send_message(%L, 'Are you still there?')$$, :'listed'),
  null, null, 'a person cannot message a suppressed number');
select throws_ok(format($$select public.send_message(%L, 'Are you still there?')$$, :'stopped'),
  null, null, 'nor a lead who texted STOP');
select tests.clear_authentication();
select is((select count(*)::integer from messages where direction = 'outbound' and lead_id in (:'listed', :'stopped')),
  0, 'nothing was queued to either');

select * from finish();
rollback;
