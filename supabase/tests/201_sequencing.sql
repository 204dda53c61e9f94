-- Sequencing tick: M1/M2/M3 timing by moving stored timestamps, eligibility, the schedule
-- window in the lead's zone, both rate limits, idempotency within a minute.
-- Times are fixed: T0 = Wed 10 June 2026 10:00 UTC (11:00 BST in London, 06:00 in New York).
begin;
select plan(28);

create function tests.or_dataset(p_client uuid, p_name text, p_rate integer default 100) returns uuid
language plpgsql as $$
declare v uuid;
begin
  insert into public.datasets (client_id, name) values (p_client, p_name) returning id into v;
  insert into public.campaigns (dataset_id, client_id, rate_limit_messages_per_minute, started_at)
  values (v, p_client, p_rate, '2026-06-01 00:00+00');
  update public.datasets set campaign_status = 'active' where id = v;
  return v;
end $$;

create function tests.or_lead(p_dataset uuid, p_phone text, p_extra jsonb default '{}') returns uuid
language plpgsql as $$
declare v uuid;
begin
  insert into public.leads (client_id, dataset_id, first_name, phone_number, created_at)
  select d.client_id, d.id, 'Lead', p_phone, '2026-05-01 00:00+00'::timestamptz + (right(p_phone, 3) || ' seconds')::interval
  from public.datasets d where d.id = p_dataset returning id into v;
  if p_extra <> '{}' then
    update public.leads l set
      contact_status = coalesce((p_extra ->> 'contact_status')::public.lead_status, l.contact_status),
      archived = coalesce((p_extra ->> 'archived')::boolean, l.archived),
      opted_out = coalesce((p_extra ->> 'opted_out')::boolean, l.opted_out),
      manual_mode = coalesce((p_extra ->> 'manual_mode')::boolean, l.manual_mode),
      timezone = coalesce(p_extra ->> 'timezone', l.timezone),
      sequence_step = coalesce((p_extra ->> 'sequence_step')::smallint, l.sequence_step),
      m1_sent_at = coalesce((p_extra ->> 'm1_sent_at')::timestamptz, l.m1_sent_at),
      m2_sent_at = coalesce((p_extra ->> 'm2_sent_at')::timestamptz, l.m2_sent_at),
      reply_received_at = coalesce((p_extra ->> 'reply_received_at')::timestamptz, l.reply_received_at)
    where l.id = v;
  end if;
  return v;
end $$;

select tests.create_client('Seq client') as c \gset
update public.clients set twilio_phone_number = '+447700900900', settings = '{"sms_per_hour": 1000}' where id = :'c';

-- 1. M1 at the campaign's per-minute rate, spread over the minute, idempotent within the minute
select tests.or_dataset(:'c', 'rate 2', 2) as d1 \gset
select tests.or_lead(:'d1', '+447700900' || g) from generate_series(101, 105) g;

select is((private.run_sequencing_tick('2026-06-10 10:00:00+00') ->> 'm1')::integer, 2, 'first tick queues rate_limit (2) M1s');
select is((private.run_sequencing_tick('2026-06-10 10:00:20+00') ->> 'queued')::integer, 0,
  'a second tick in the same minute queues nothing more');
select is((select count(*)::integer from public.messages where dataset_id = :'d1' and status = 'pending' and message_category = 'm1'),
  2, 'two pending M1 messages');
select results_eq(
  $$select j.run_at - '2026-06-10 10:00:00+00'::timestamptz from private.jobs j
    join public.messages m on j.idempotency_key = 'sms.send:' || m.id where m.dataset_id = '$$ || :'d1' || $$' order by 1$$,
  $$values (interval '0'), (interval '30 seconds')$$, 'sms.send jobs are spread over the minute');
select is((private.run_sequencing_tick('2026-06-10 10:01:00+00') ->> 'm1')::integer, 2, 'the next minute: 2 more');
select is((private.run_sequencing_tick('2026-06-10 10:02:00+00') ->> 'm1')::integer, 1, 'then the last one');
select is((private.run_sequencing_tick('2026-06-10 10:03:00+00') ->> 'queued')::integer, 0,
  'queued-but-not-sent leads are never queued again');
select is((select count(*)::integer from public.leads where dataset_id = :'d1' and sequence_step = 1), 5,
  'every lead is at step 1');
select is((select count(*)::integer from public.messages where dataset_id = :'d1'), 5, 'one M1 per lead');
select ok((select bool_and(content like E'%\nReply STOP to opt out') from public.messages where dataset_id = :'d1'),
  'the first message carries the opt-out line');

-- 2. who never gets a sequence message
select tests.or_dataset(:'c', 'eligibility') as d2 \gset
select tests.or_lead(:'d2', '+447700900201');
select tests.or_lead(:'d2', '+447700900202', '{"archived": true}');
select tests.or_lead(:'d2', '+447700900203', '{"opted_out": true}');
select tests.or_lead(:'d2', '+447700900204', '{"manual_mode": true}');
select tests.or_lead(:'d2', '+447700900205', '{"contact_status": "CALL_BOOKED"}');
select tests.or_lead(:'d2', '+447700900206', '{"contact_status": "CONVERTED"}');
select tests.or_lead(:'d2', '+447700900207', '{"contact_status": "NOT_INTERESTED"}');
select tests.or_lead(:'d2', '+447700900208', '{"contact_status": "UNDELIVERABLE"}');
select tests.or_lead(:'d2', '+447700900209');
insert into public.suppressions (client_id, phone_number, reason, source) values (:'c', '+447700900209', 'test', 'staff');
select tests.or_lead(:'d2', '+447700900210', '{"timezone": "America/New_York"}');
select is((private.run_sequencing_tick('2026-06-10 10:05:00+00') ->> 'm1')::integer, 1,
  'only the eligible lead in its window is queued');
select is((select l.phone_number from public.messages m join public.leads l on l.id = m.lead_id where m.dataset_id = :'d2'),
  '+447700900201', 'archived, opted-out, manual, booked, converted, not interested, undeliverable, suppressed: none');
select is((private.run_sequencing_tick('2026-06-10 13:05:00+00') ->> 'm1')::integer, 1,
  'the New York lead gets M1 once it is 09:05 in New York');

-- 3. M1 delay from the campaign start
select tests.or_dataset(:'c', 'delay') as d3 \gset
update public.campaigns set started_at = '2026-06-10 09:00+00', m1_delay_hours = 2 where dataset_id = :'d3';
select tests.or_lead(:'d3', '+447700900301');
select is((private.run_sequencing_tick('2026-06-10 10:10:00+00') ->> 'queued')::integer, 0, 'M1 waits for m1_delay_hours');
select is((private.run_sequencing_tick('2026-06-10 11:00:00+00') ->> 'm1')::integer, 1, 'M1 goes once the delay has passed');

-- 4. M2 and M3 timing, and no follow-up after a reply
select tests.or_dataset(:'c', 'follow-ups') as d4 \gset
select tests.or_lead(:'d4', '+447700900401', '{"sequence_step": 1, "contact_status": "M1_SENT", "m1_sent_at": "2026-06-08 10:30+00"}') as l_m2 \gset
select tests.or_lead(:'d4', '+447700900402', '{"sequence_step": 1, "contact_status": "M1_SENT", "m1_sent_at": "2026-06-08 10:30+00", "reply_received_at": "2026-06-09 10:00+00"}');
select tests.or_lead(:'d4', '+447700900403', '{"sequence_step": 1, "contact_status": "REPLIED", "m1_sent_at": "2026-06-08 10:30+00", "reply_received_at": "2026-06-09 10:00+00"}');
select tests.or_lead(:'d4', '+447700900404', '{"sequence_step": 1, "contact_status": "M1_SENT", "m1_sent_at": "2026-06-08 10:30+00", "reply_received_at": "2026-06-01 10:00+00"}') as l_old_reply \gset
select tests.or_lead(:'d4', '+447700900405', '{"sequence_step": 2, "contact_status": "M2_SENT", "m1_sent_at": "2026-06-01 10:00+00", "m2_sent_at": "2026-06-06 10:31:30+00"}') as l_m3 \gset
select tests.or_lead(:'d4', '+447700900406', '{"sequence_step": 3, "contact_status": "M3_SENT", "m1_sent_at": "2026-05-01 10:00+00", "m2_sent_at": "2026-05-03 10:00+00"}');

select is((private.run_sequencing_tick('2026-06-10 10:20:00+00') ->> 'queued')::integer, 0,
  'M2 is not sent before m1_sent_at + 48 h, M3 not before m2_sent_at + 96 h');
select is((private.run_sequencing_tick('2026-06-10 10:31:00+00') ->> 'm2')::integer, 2,
  'M2 once 48 h have passed: the silent lead and the one whose only reply predates M1');
select set_eq(
  $$select lead_id from public.messages where dataset_id = '$$ || :'d4' || $$' and message_category = 'm2'$$,
  array[:'l_m2'::uuid, :'l_old_reply'::uuid], 'no M2 for a lead who replied after M1 (whatever its status)');
select is((private.run_sequencing_tick('2026-06-10 10:32:00+00') ->> 'm3')::integer, 1, 'M3 once 96 h after M2 have passed');
select is((select lead_id from public.messages where dataset_id = :'d4' and message_category = 'm3'), :'l_m3'::uuid, 'M3 to the right lead');
select ok((select content like 'Hi Lead, just following up%' from public.messages where lead_id = :'l_m2' and message_category = 'm2'),
  'M2 is the built-in follow-up with the first name merged');

-- 5. a paused campaign queues nothing
select tests.or_dataset(:'c', 'paused') as d5 \gset
select tests.or_lead(:'d5', '+447700900501');
update public.datasets set campaign_status = 'paused' where id = :'d5';
select is((private.run_sequencing_tick('2026-06-10 10:40:00+00') ->> 'queued')::integer, 0, 'paused: nothing queued');
select isnt((select paused_at from public.campaigns where dataset_id = :'d5'), null, 'pausing stamps paused_at');

-- 6. client hourly budget across campaigns (rolling hour, counting everything queued)
select tests.create_client('Budget client') as c2 \gset
update public.clients set settings = '{"sms_per_hour": 3}' where id = :'c2';
select tests.or_dataset(:'c2', 'b1', 10) as b1 \gset
select tests.or_dataset(:'c2', 'b2', 10) as b2 \gset
select tests.or_lead(:'b1', '+447700900' || g) from generate_series(601, 605) g;
select tests.or_lead(:'b2', '+447700900' || g) from generate_series(701, 705) g;
select is((private.run_sequencing_tick('2026-06-10 10:00:00+00') ->> 'queued')::integer, 3,
  'two campaigns at 10/min share the client''s 3/hour');
select is((private.run_sequencing_tick('2026-06-10 10:30:00+00') ->> 'queued')::integer, 0, 'nothing more within the hour');
select is((private.run_sequencing_tick('2026-06-10 11:00:01+00') ->> 'queued')::integer, 3, 'the budget is back an hour later');
select is((select count(distinct dataset_id)::integer from public.messages where client_id = :'c2'), 2,
  'both campaigns got a share');

-- 7. the window: a tick at 22:00 London time queues nothing
select tests.or_dataset(:'c', 'night') as d7 \gset
select tests.or_lead(:'d7', '+447700900801');
select is((private.run_sequencing_tick('2026-06-10 21:00:00+00') ->> 'queued')::integer, 0, '22:00 BST is outside 9-21');

select * from finish();
rollback;
