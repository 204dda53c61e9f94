-- Inbound SMS through private.ingest_twilio_webhook: replies, duplicates, opt-out keywords and
-- OptOutType, opt back in, HELP, unknown senders and numbers, manual mode, hot-lead and
-- notification rules.
begin;
select plan(44);

select tests.create_client('Inbound client') as c \gset
update public.clients set twilio_phone_number = '+447700900900', twilio_messaging_service_sid = 'MG' || repeat('a', 32),
  settings = '{"help_text": "{company_name} here: call us on 0161 000 0000. Reply STOP to opt out."}' where id = :'c';
select tests.create_user('admin@in.test', :'c', 'admin') as admin \gset
select tests.create_user('rep@in.test', :'c', 'sales_rep', 'active', false) as rep \gset
insert into public.datasets (client_id, name) values (:'c', 'inbound') returning id as d \gset
insert into public.campaigns (dataset_id, client_id, started_at, ai_response_delay_seconds)
values (:'d', :'c', '2026-06-01 00:00+00', 30);
update public.datasets set campaign_status = 'active' where id = :'d';

create function tests.or_in(p_from text, p_body text, p_sid text, p_extra jsonb default '{}') returns jsonb
language sql as $$
  select private.ingest_twilio_webhook(jsonb_build_object(
    'MessageSid', p_sid, 'AccountSid', 'AC' || repeat('0', 32), 'From', p_from, 'To', '+447700900900',
    'Body', p_body, 'NumMedia', '0', 'SmsStatus', 'received') || p_extra)
$$;

-- A lead mid-sequence: M1 sent, M2 queued.
insert into public.leads (client_id, dataset_id, first_name, last_name, phone_number, contact_status, sequence_step, m1_sent_at)
values (:'c', :'d', 'Ann', 'Lee', '+447700900001', 'M1_SENT', 1, '2026-06-01 10:00+00') returning id as l1 \gset
select private.run_sequencing_tick('2026-06-10 10:00+00', :'d');
select is((select count(*)::integer from public.messages where lead_id = :'l1' and message_category = 'm2' and status = 'pending'), 1,
  'M2 is queued');

-- 1. a reply
select tests.or_in('+447700900001', 'Yes, still interested. Can you call me?', 'SMr1') as r1 \gset
select is(:'r1'::jsonb ->> 'action', 'ai_reply', 'a reply enqueues the AI');
select results_eq($$select direction::text, message_category::text, status::text, lead_id from public.messages where twilio_sid = 'SMr1'$$,
  $$values ('inbound', 'lead_reply', 'received', '$$ || :'l1' || $$'::uuid)$$, 'stored as the lead''s reply');
select results_eq($$select contact_status::text, latest_lead_reply, reply_received_at is not null from public.leads where id = '$$ || :'l1' || $$'$$,
  $$values ('REPLIED', 'Yes, still interested. Can you call me?', true)$$, 'the lead is REPLIED with its latest reply');
select is((select status::text from public.messages where lead_id = :'l1' and message_category = 'm2'), 'canceled',
  'the queued M2 is canceled: the sequence stops');
select is((select message_count from public.conversations where lead_id = :'l1'), 1, 'the conversation counts the reply');
select results_eq($$select payload ->> 'conversation_id', payload ->> 'inbound_message_id', run_at - now() from private.jobs where kind = 'ai.reply'$$,
  $$select (select id::text from public.conversations where lead_id = '$$ || :'l1' || $$'), '$$ || (:'r1'::jsonb ->> 'message_id') || $$', interval '30 seconds'$$,
  'one ai.reply job with the conversation and message, after ai_response_delay_seconds');
select is(private.run_sequencing_tick('2026-06-20 10:00+00', :'d') ->> 'queued', '0', 'no follow-up after a reply, even days later');

-- 2. Twilio retries: same MessageSid
select is(tests.or_in('+447700900001', 'Yes, still interested. Can you call me?', 'SMr1') ->> 'status', 'duplicate', 'a replay is a duplicate');
select is((select count(*)::integer from public.messages where twilio_sid = 'SMr1'), 1, 'one message');
select is((select count(*)::integer from private.jobs where kind = 'ai.reply'), 1, 'one AI job');

-- 3. STOP in its variants, at once, whatever is queued
insert into public.leads (client_id, dataset_id, first_name, phone_number) values
  (:'c', :'d', 'Bob', '+447700900002'), (:'c', :'d', 'Cat', '+447700900003'), (:'c', :'d', 'Dan', '+447700900004');
select private.run_sequencing_tick('2026-06-10 10:01+00', :'d');
select is(tests.or_in('+447700900002', '  Stop. ', 'SMs1') ->> 'action', 'opted_out', '" Stop. " opts out');
select results_eq($$select opted_out, contact_status::text from public.leads where phone_number = '+447700900002'$$,
  $$values (true, 'OPTED_OUT')$$, 'the lead is OPTED_OUT');
select results_eq($$select reason, source from public.suppressions where phone_number = '+447700900002'$$,
  $$values ('Replied "Stop."', 'inbound_keyword')$$, 'the number is suppressed for the client');
select is((select status::text || ':' || error_message from public.messages where to_number = '+447700900002' and direction = 'outbound'),
  'canceled:opted_out', 'its queued M1 is canceled as opted out');
select is(tests.or_in('+447700900003', 'unsubscribe', 'SMs2') ->> 'action', 'opted_out', 'UNSUBSCRIBE opts out');
select is(tests.or_in('+447700900004', 'Please take me off your list', 'SMs3', '{"OptOutType": "STOP"}') ->> 'action', 'opted_out',
  'Twilio''s OptOutType=STOP opts out whatever the wording');
select is((select source from public.suppressions where phone_number = '+447700900004'), 'twilio_opt_out', 'recorded as Twilio''s opt-out');
select is((select count(*)::integer from private.jobs where kind = 'ai.reply'), 1, 'no AI reply to an opt-out');
select tests.throws_status($$select private.queue_sms((select id from public.leads where phone_number = '+447700900002'), 'Sorry to see you go', 'ai_response')$$,
  403, null, 'nothing can be queued to an opted-out number');
select is(tests.or_in('+447700900002', 'What?', 'SMs4') ->> 'action', 'stored_opted_out', 'a later message is stored, not answered');

-- 4. START opts back in, without restarting the sequence
select is(tests.or_in('+447700900002', 'START', 'SMs5') ->> 'action', 'opted_in', 'START opts back in');
select results_eq($$select opted_out, contact_status::text from public.leads where phone_number = '+447700900002'$$,
  $$values (false, 'REPLIED')$$, 'the lead is REPLIED, not back in the sequence');
select is((select count(*)::integer from public.suppressions where phone_number = '+447700900002'), 0, 'suppression lifted');
select is(private.run_sequencing_tick('2026-06-10 11:00+00', :'d') ->> 'queued', '0', 'the tick does not resume it silently');
select is(tests.or_in('+447700900001', 'yes', 'SMs6') ->> 'action', 'ai_reply', '"yes" from a lead who never opted out is a reply');

-- 5. HELP
select is(tests.or_in('+447700900001', 'HELP', 'SMh1') ->> 'action', 'help', 'HELP');
select is((select content from public.messages where lead_id = :'l1' and message_category = 'system'),
  'Inbound client here: call us on 0161 000 0000. Reply STOP to opt out.', 'the client''s help text is queued');
select is(tests.or_in('+447700900001', 'help', 'SMh2', '{"OptOutType": "HELP"}') ->> 'action', 'help', 'HELP via Advanced Opt-Out');
select is((select count(*)::integer from public.messages where lead_id = :'l1' and message_category = 'system'), 1,
  'no second help text when Twilio already answered');

-- 6. unknown sender, unknown number, messaging service
select is(tests.or_in('+447700999999', 'Who is this?', 'SMu1') ->> 'action', 'unknown_sender', 'unknown sender');
select results_eq($$select client_id, lead_id, conversation_id from public.messages where twilio_sid = 'SMu1'$$,
  $$values ('$$ || :'c' || $$'::uuid, null::uuid, null::uuid)$$, 'stored for the client, with no lead');
select is(private.ingest_twilio_webhook('{"MessageSid": "SMx1", "From": "+447700999998", "To": "+15550001111", "Body": "hi"}') ->> 'status',
  'unmatched', 'a To number no client owns');
select is((select body from private.unmatched_inbound where message_sid = 'SMx1'), 'hi', 'kept in unmatched_inbound');
select is(private.ingest_twilio_webhook(jsonb_build_object('MessageSid', 'SMm1', 'From', '+447700900001', 'To', '+447000000000',
  'MessagingServiceSid', 'MG' || repeat('a', 32), 'Body', 'via the service')) ->> 'lead_id', :'l1', 'routed by messaging service');

-- 7. manual mode: staff notified, no AI
-- (the rep has no can_view_all_leads and no dataset list: it sees, and hears about, the leads
-- assigned to it)
update public.leads set manual_mode = true, assigned_to = :'rep' where id = :'l1';
select is(tests.or_in('+447700900001', 'Are you there?', 'SMmm1') ->> 'action', 'notified', 'manual mode: staff notified');
select is((select count(*)::integer from private.jobs where kind = 'ai.reply' and payload ->> 'inbound_message_id' =
  (select id::text from public.messages where twilio_sid = 'SMmm1')), 0, 'manual mode: no AI job');
select results_eq($$select user_id from public.notifications where data ->> 'kind' = 'reply_manual'$$,
  format('values (%L::uuid)', :'rep'), 'a new reply goes to the rep the lead is assigned to (not to every admin)');

-- 8. hot lead
update public.leads set lead_sentiment = 'HOT' where id = :'l1';
select is((select count(*)::integer from public.notifications where data ->> 'kind' = 'hot_lead'), 2, 'HOT sentiment notifies staff');
update public.leads set contact_status = 'HOT' where id = :'l1';
select is((select count(*)::integer from public.notifications where data ->> 'kind' = 'hot_lead'), 2, 'once');

-- 9. most recently active lead with that number
insert into public.datasets (client_id, name) values (:'c', 'second list') returning id as d2 \gset
insert into public.leads (client_id, dataset_id, first_name, phone_number) values (:'c', :'d2', 'Ann again', '+447700900001');
select is(tests.or_in('+447700900001', 'me again', 'SMa1') ->> 'lead_id', :'l1', 'the lead we have been talking to, not the newer import');

-- 10. notifications RLS: each user sees and marks only their own
select tests.authenticate_as(:'rep');
select is((select count(*)::integer from public.notifications where user_id <> :'rep'), 0, 'a user sees only their own notifications');
update public.notifications set read_at = now();
select tests.clear_authentication();
select tests.authenticate_as(:'admin');
select is((select count(*)::integer from public.notifications where read_at is not null), 0, 'another user''s read marks do not touch mine');
select throws_ok($$update public.notifications set title = 'x'$$, '42501', null, 'only read_at is writable');
select tests.clear_authentication();

select * from finish();
rollback;
