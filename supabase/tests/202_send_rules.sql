-- Send-time rules: prepare_send re-checks everything at the moment of sending, record_send_result
-- and status callbacks move a message forward only and classify Twilio errors.
-- T0 = Wed 10 June 2026 10:00 UTC (11:00 BST).
begin;
select plan(57);

select tests.create_client('Send client') as c \gset
update public.clients set twilio_phone_number = '+447700900900', settings = '{"number_pace_per_second": 0}' where id = :'c';
insert into public.datasets (client_id, name) values (:'c', 'send') returning id as d \gset
insert into public.campaigns (dataset_id, client_id, started_at) values (:'d', :'c', '2026-06-01 00:00+00');
update public.datasets set campaign_status = 'active' where id = :'d';
update public.campaigns set rate_limit_messages_per_minute = 100 where dataset_id = :'d';

create function tests.or_m1(p_dataset uuid, p_phone text, p_at timestamptz default '2026-06-10 10:00+00') returns uuid
language plpgsql as $$
declare v_lead uuid;
begin
  insert into public.leads (client_id, dataset_id, first_name, phone_number)
  select d.client_id, d.id, 'Ann', p_phone from public.datasets d where d.id = p_dataset returning id into v_lead;
  perform private.run_sequencing_tick(p_at, p_dataset);
  return (select m.id from public.messages m where m.lead_id = v_lead and m.message_category = 'm1');
end $$;

-- 1. the happy path, then never twice
select tests.or_m1(:'d', '+447700900001') as m1 \gset
select is(private.prepare_send(:'m1', 'w1', '2026-06-10 10:00+00') ->> 'action', 'send', 'a due M1 is released for sending');
select is((select status::text from public.messages where id = :'m1'), 'sending', 'the attempt is recorded before Twilio');
select is(private.prepare_send(:'m1', 'w2', '2026-06-10 10:00:05+00') ->> 'action', 'reconcile',
  'an attempt without a result must be reconciled, not re-sent');
select lives_ok($$select private.record_send_result('$$ || :'m1' || $$', 'SM001', 'queued', null, null, 1)$$, 'result stored');
select is((select contact_status::text from public.leads l join public.messages m on m.lead_id = l.id where m.id = :'m1'), 'M1_SENT',
  'the lead is M1_SENT');
select isnt((select m1_sent_at from public.leads l join public.messages m on m.lead_id = l.id where m.id = :'m1'), null,
  'm1_sent_at is stamped');
select is((select message_count from public.conversations c join public.messages m on m.conversation_id = c.id where m.id = :'m1'), 1,
  'the conversation counts the message');
select is(private.prepare_send(:'m1', 'w3', '2026-06-10 10:01+00') ->> 'reason', 'already_sent', 'a sent message is never sent again');

-- 2. status callbacks: out of order, deduplicated, never backwards
select is(private.ingest_twilio_webhook('{"MessageSid": "SM001", "MessageStatus": "delivered"}') ->> 'status', 'applied', 'delivered applied');
select is(private.ingest_twilio_webhook('{"MessageSid": "SM001", "MessageStatus": "sent"}') ->> 'status', 'applied', 'late sent accepted...');
select is((select status::text from public.messages where id = :'m1'), 'delivered', '...but delivered is not overwritten by sent');
select is(private.ingest_twilio_webhook('{"MessageSid": "SM001", "MessageStatus": "delivered"}') ->> 'status', 'duplicate',
  'a retried callback is a duplicate');
select isnt((select delivered_at from public.messages where id = :'m1'), null, 'delivered_at recorded');

select tests.or_m1(:'d', '+447700900002') as m2 \gset
select is(private.prepare_send(:'m2', 'w1', '2026-06-10 10:00:30+00') ->> 'action', 'send', 'second message sent');
select is(private.ingest_twilio_webhook('{"MessageSid": "SM002", "MessageStatus": "delivered"}') ->> 'status', 'stored',
  'a callback faster than the send result is kept');
select lives_ok($$select private.record_send_result('$$ || :'m2' || $$', 'SM002', 'queued')$$, 'result after callback');
select is((select status::text from public.messages where id = :'m2'), 'delivered', 'the early callback is applied then');

select tests.or_m1(:'d', '+447700900003') as m3 \gset
select is(private.prepare_send(:'m3', 'w1', '2026-06-10 10:00:40+00') ->> 'action', 'send', 'third message sent');
select lives_ok($$select private.record_send_result('$$ || :'m3' || $$', 'SM003', 'queued')$$, 'queued');
select lives_ok($$select private.ingest_twilio_webhook('{"MessageSid": "SM003", "MessageStatus": "undelivered", "ErrorCode": "30003"}')$$,
  'undelivered');
select lives_ok($$select private.ingest_twilio_webhook('{"MessageSid": "SM003", "MessageStatus": "sent"}')$$, 'a later segment''s sent');
select results_eq($$select status::text, error_code, failed_at is not null from public.messages where id = '$$ || :'m3' || $$'$$,
  $$values ('undelivered', 30003, true)$$, 'a failure is not hidden by a later status; code and time kept');

-- 3. error classification
select tests.or_m1(:'d', '+447700900004') as m4 \gset
select is(private.prepare_send(:'m4', 'w1', '2026-06-10 10:00:50+00') ->> 'action', 'send', 'fourth message sent');
select lives_ok($$select private.record_send_result('$$ || :'m4' || $$', null, 'failed', 21211, 'Invalid To Phone Number')$$,
  'invalid number result');
select results_eq($$select m.status::text, l.contact_status::text from public.messages m join public.leads l on l.id = m.lead_id
  where m.id = '$$ || :'m4' || $$'$$, $$values ('failed', 'UNDELIVERABLE')$$, '21211: message failed, lead UNDELIVERABLE');

select tests.or_m1(:'d', '+447700900005') as m5 \gset
select is(private.prepare_send(:'m5', 'w1', '2026-06-10 10:00:55+00') ->> 'action', 'send', 'fifth message sent');
select lives_ok($$select private.record_send_result('$$ || :'m5' || $$', null, 'failed', 21610, 'unsubscribed')$$, '21610 result');
select results_eq($$select l.opted_out, l.contact_status::text from public.leads l where phone_number = '+447700900005'$$,
  $$values (true, 'OPTED_OUT')$$, '21610: the lead is opted out');
select is((select source from public.suppressions where client_id = :'c' and phone_number = '+447700900005'), 'twilio_error',
  '21610: the number is on the suppression list');

-- 4. opt-out with messages already queued
select tests.or_m1(:'d', '+447700900006') as m6 \gset
select private.opt_out_number(:'c', '+447700900006', 'Replied "STOP"', 'inbound_keyword');
select is((select status::text from public.messages where id = :'m6'), 'canceled', 'opting out cancels the pending message');
select is(private.prepare_send(:'m6', 'w1', '2026-06-10 10:02+00') ->> 'action', 'skip', 'and prepare_send skips it');
select tests.or_m1(:'d', '+447700900007') as m7 \gset
insert into public.suppressions (client_id, phone_number, reason, source) values (:'c', '+447700900007', 'asked by phone', 'staff');
select is(private.prepare_send(:'m7', 'w1', '2026-06-10 10:02+00'), '{"action": "skip", "reason": "opted_out"}'::jsonb,
  'a number suppressed after queueing is skipped at send time');
select tests.throws_status($$select private.queue_sms((select id from public.leads where phone_number = '+447700900007'), 'Hi', 'human_manual')$$,
  403, null, 'queue_sms refuses a suppressed number');

-- 5. lead state at send time
select tests.or_m1(:'d', '+447700900008') as m8 \gset
update public.leads set archived = true where phone_number = '+447700900008';
select is(private.prepare_send(:'m8', 'w1', '2026-06-10 10:03+00') ->> 'reason', 'archived', 'archived after queueing: skipped');
select tests.or_m1(:'d', '+447700900009') as m9 \gset
update public.leads set manual_mode = true where phone_number = '+447700900009';
select is(private.prepare_send(:'m9', 'w1', '2026-06-10 10:03+00') ->> 'reason', 'manual_mode', 'manual mode: sequence skipped');
select private.queue_sms((select id from public.leads where phone_number = '+447700900009'), 'A note from a person', 'human_manual') as hm \gset
select is(private.prepare_send(:'hm', 'w1', '2026-06-10 10:03+00') ->> 'action', 'send', 'a person''s own message still goes');
select tests.or_m1(:'d', '+447700900010') as m10 \gset
update public.leads set contact_status = 'CALL_BOOKED', call_booked = true where phone_number = '+447700900010';
select is(private.prepare_send(:'m10', 'w1', '2026-06-10 10:03+00') ->> 'reason', 'booked', 'booked: skipped');
select tests.or_m1(:'d', '+447700900011') as m11 \gset
update public.leads set reply_received_at = '2026-06-10 10:01+00', contact_status = 'REPLIED' where phone_number = '+447700900011';
select is(private.prepare_send(:'m11', 'w1', '2026-06-10 10:03+00') ->> 'reason', 'superseded', 'replied after queueing: skipped');

-- 6. window re-checked at send time, DST-correct
select tests.or_m1(:'d', '+447700900012') as m12 \gset
select is(private.prepare_send(:'m12', 'w1', '2026-06-10 20:30+00'),
  '{"action": "defer", "until": "2026-06-11T08:00:00+00:00", "reason": "outside_window"}'::jsonb,
  '21:30 BST: deferred to 09:00 BST next morning');
select is(private.prepare_send(:'m12', 'w1', '2026-03-28 21:30+00') ->> 'until', '2026-03-29T08:00:00+00:00',
  'across the March change: 09:00 Sunday is 08:00 UTC');
select is(private.prepare_send(:'m12', 'w1', '2026-10-24 20:30+00') ->> 'until', '2026-10-25T09:00:00+00:00',
  'across the October change: 09:00 Sunday is 09:00 UTC');
select is((select status::text from public.messages where id = :'m12'), 'pending', 'a deferred message stays pending');

-- 7. client hourly limit and campaign per-minute rate at send time
update public.clients set settings = settings || '{"sms_per_hour": 3}' where id = :'c';
-- Already started in the last hour (from sections 1-5): several. The 3rd most recent + 1 h is the next slot.
select is(private.prepare_send(:'m12', 'w1', '2026-06-10 10:30+00') ->> 'reason', 'client_rate', 'client hourly limit reached: deferred');
select is((private.prepare_send(:'m12', 'w1', '2026-06-10 10:30+00') ->> 'until')::timestamptz,
  (select send_started_at + interval '1 hour' from public.messages where client_id = :'c' and send_started_at is not null
   order by send_started_at desc offset 2 limit 1), 'until = when the oldest of the last 3 leaves the rolling hour');
update public.clients set settings = settings || '{"sms_per_hour": 1000}' where id = :'c';
update public.campaigns set rate_limit_messages_per_minute = 1 where dataset_id = :'d';
select is(private.prepare_send(:'m12', 'w1', '2026-06-10 10:01:20+00'),
  '{"action": "defer", "until": "2026-06-10T10:01:55+00:00", "reason": "campaign_rate"}'::jsonb,
  'campaign at 1/min, the last M1 went at 10:00:55: the next at 10:01:55');
update public.campaigns set rate_limit_messages_per_minute = 100 where dataset_id = :'d';

-- 8. pause and resume: deferred while paused, sent once after resume
update public.datasets set campaign_status = 'paused' where id = :'d';
select is(private.prepare_send(:'m12', 'w1', '2026-06-10 11:00+00') ->> 'reason', 'paused', 'paused: deferred, not canceled');
select is((select status::text from public.messages where id = :'m12'), 'pending', 'still pending while paused');
update private.jobs set run_at = '2030-01-01' where idempotency_key = 'sms.send:' || :'m12';
update public.datasets set campaign_status = 'active' where id = :'d';
select ok((select run_at <= now() from private.jobs where idempotency_key = 'sms.send:' || :'m12'),
  'resume brings the held job forward');
select is(private.prepare_send(:'m12', 'w1', '2026-06-10 11:00+00') ->> 'action', 'send', 'sent after resume');
select lives_ok($$select private.record_send_result('$$ || :'m12' || $$', 'SM012', 'queued')$$, 'recorded');
select is(private.prepare_send(:'m12', 'w1', '2026-06-10 11:01+00') ->> 'reason', 'already_sent', '...exactly once');

-- 9. per-number pacing (1 message per second per long code by default; none for a messaging service)
select tests.create_client('Pace client') as pc \gset
update public.clients set twilio_phone_number = '+447700900901' where id = :'pc';
insert into public.datasets (client_id, name) values (:'pc', 'pace') returning id as pd \gset
insert into public.leads (client_id, dataset_id, phone_number) values (:'pc', :'pd', '+447700901001'), (:'pc', :'pd', '+447700901002');
select private.queue_sms((select id from public.leads where phone_number = '+447700901001'), 'one', 'human_manual') as p1 \gset
select private.queue_sms((select id from public.leads where phone_number = '+447700901002'), 'two', 'human_manual') as p2 \gset
select is(private.prepare_send(:'p1', 'w1', '2026-06-10 12:00:00+00') ->> 'action', 'send', 'first from the number goes');
select is(private.prepare_send(:'p2', 'w2', '2026-06-10 12:00:00.2+00'),
  '{"action": "defer", "until": "2026-06-10T12:00:01+00:00", "reason": "number_pace"}'::jsonb,
  'the second waits for the number''s next free second');
select is(private.prepare_send(:'p2', 'w2', '2026-06-10 12:00:01+00') ->> 'action', 'send', 'and goes then');

-- 10. a send Twilio did not take (429/5xx, or a reconcile that found nothing) goes back to pending
select lives_ok($$select private.record_send_result('$$ || :'p2' || $$', null, 'retry', 20429, 'Too Many Requests')$$,
  'retry recorded');
select results_eq($$select status::text, send_started_at is null from public.messages where id = '$$ || :'p2' || $$'$$,
  $$values ('pending', true)$$, 'back to pending, the attempt no longer counts');
select is(private.prepare_send(:'p2', 'w2', '2026-06-10 12:00:05+00') ->> 'action', 'send', 'sent on the next attempt');

select * from finish();
rollback;
