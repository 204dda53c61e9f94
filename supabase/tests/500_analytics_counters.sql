-- Analytics counters kept by the statement-level triggers on messages, leads and bookings:
-- after every kind of write they equal a recount from the raw rows, and local days follow the
-- client's time zone across DST changes.
begin;
set local search_path = public, extensions;
set local client_min_messages = warning;
select plan(26);

select tests.create_client('London Ltd') as lon \gset
select tests.create_client('New York Inc') as nyc \gset
update clients set timezone = 'America/New_York' where id = :'nyc';
insert into datasets (client_id, name) values (:'lon', 'L one') returning id as l1 \gset
insert into datasets (client_id, name) values (:'lon', 'L two') returning id as l2 \gset
insert into datasets (client_id, name) values (:'nyc', 'N one') returning id as n1 \gset


-- Imports are one set-based insert (COPY into staging, then insert ... select): the same here,
-- every status x sentiment x flag combination, M1 times spread over 40 days.
insert into leads (client_id, dataset_id, phone_number, contact_status, lead_sentiment, archived, opted_out,
  manual_mode, m1_sent_at, m2_sent_at, reply_received_at, call_booked, sequence_step)
select c.client_id, c.dataset_id, '+4477' || lpad(i::text, 8, '0'),
  (enum_range(null::lead_status))[1 + i % 14],
  (array[null, 'POSITIVE', 'NEGATIVE', 'NEUTRAL', 'HOT', 'UNCLEAR']::lead_sentiment [])[1 + (i / 14) % 6],
  i % 11 = 0, i % 13 = 0, i % 17 = 0,
  case when i % 5 <> 0 then timestamptz '2026-02-01 00:00Z' + (i % 40) * interval '1 day' + (i % 24) * interval '1 hour' end,
  case when i % 5 = 1 then timestamptz '2026-03-20 10:00Z' end,
  case when i % 3 = 0 then timestamptz '2026-03-21 10:00Z' end,
  i % 19 = 0, (i % 4)::smallint
from generate_series(1, 3000) i
cross join lateral (
  select (array[:'lon', :'lon', :'nyc']::uuid [])[1 + i % 3] as client_id,
    (array[:'l1', :'l2', :'n1']::uuid [])[1 + i % 3] as dataset_id
) c;
select is(private.analytics_drift(), 0::bigint, 'bulk lead insert (an import): counters equal the recount');
select is(
  (select sum(leads) from analytics_lead_groups where dataset_id = :'l1'),
  (select count(*) from leads where dataset_id = :'l1')::numeric,
  'every lead of a dataset counted once'
);

-- Messages: every category x status, over the same days, in one statement.
insert into messages (client_id, dataset_id, conversation_id, lead_id, direction, message_category, status,
  content, sent_at, received_at, created_at)
select l.client_id, l.dataset_id, tests.create_conversation(l.id), l.id,
  case when k = 7 then 'inbound' else 'outbound' end::message_direction,
  (enum_range(null::message_category))[k],
  case when k = 7 then 'received' else (enum_range(null::message_status))[1 + (n % 8)] end::message_status,
  'msg',
  case when k <> 7 and n % 8 >= 4 then l.created_at - (n % 30) * interval '1 day' end,
  case when k = 7 then l.created_at - (n % 20) * interval '1 day' end,
  l.created_at - (n % 35) * interval '1 day' - (n % 24) * interval '1 hour'
from (select l.*, row_number() over (order by l.phone_number) as n from leads l) l
cross join generate_series(1, 7) k
where l.n % 2 = 0 and (k not in (1, 2, 3) or l.n % 4 = 0);
select ok((select count(*) from messages) > 5000, 'thousands of messages inserted in one statement');
select is(private.analytics_drift(), 0::bigint, 'bulk message insert: counters equal the recount');

-- Updates that move keys (status and time), and updates that move none.
update messages set status = 'sent', sent_at = created_at + interval '5 minutes'
where status in ('pending', 'sending') and direction = 'outbound';
select is(private.analytics_drift(), 0::bigint, 'message status and sent_at updates');
update messages set status = 'delivered', delivered_at = now() where status = 'sent' and content = 'msg';
select is(private.analytics_drift(), 0::bigint, 'message delivery updates');
select count(*) as rows_before from analytics_message_days \gset
update messages set content = 'edited', error_message = 'x' where status = 'delivered';
select is(private.analytics_drift(), 0::bigint, 'updates of uncounted columns');
select is((select count(*) from analytics_message_days), :'rows_before'::bigint,
  'an update of uncounted columns adds no counter rows');

update leads set contact_status = 'HOT', lead_sentiment = 'HOT' where phone_number like '%1';
update leads set reply_received_at = now(), contact_status = 'REPLIED' where phone_number like '%2';
update leads set m1_sent_at = now(), sequence_step = 1, contact_status = 'M1_SENT' where m1_sent_at is null;
update leads set m2_sent_at = now(), m3_sent_at = now() where phone_number like '%3';
update leads set archived = true, opted_out = true, manual_mode = true where phone_number like '%4';
update leads set call_booked = true, contact_status = 'CALL_BOOKED' where phone_number like '%5';
select is(private.analytics_drift(), 0::bigint, 'lead status, sentiment, flag and sequence updates');
update leads set notes = 'called', first_name = 'X' where phone_number like '%6';
select is(private.analytics_drift(), 0::bigint, 'lead updates of uncounted columns');

-- Deletes: messages, then leads (cascading to their messages and conversations).
delete from messages where message_category = 'system';
select is(private.analytics_drift(), 0::bigint, 'message deletes');
delete from leads where phone_number like '%7';
select is(private.analytics_drift(), 0::bigint, 'lead deletes cascading to messages');

-- Bookings made, cancelled, rescheduled, deleted.
insert into bookings (client_id, dataset_id, lead_id, cal_booking_uid, start_time, end_time, source, created_at)
select l.client_id, l.dataset_id, l.id, 'uid-' || l.phone_number, now() + interval '2 days',
  now() + interval '2 days 30 minutes', 'webhook', timestamptz '2026-03-01 23:30Z' + (row_number() over ()) * interval '7 hours'
from leads l where l.call_booked;
select ok((select count(*) from bookings) > 50, 'bookings inserted');
select is(private.analytics_drift(), 0::bigint, 'booking inserts');
update bookings set status = 'cancelled', cancelled_at = now() where cal_booking_uid like '%0';
update bookings set status = 'rescheduled' where cal_booking_uid like '%1';
select is(private.analytics_drift(), 0::bigint, 'booking status updates');
delete from bookings where cal_booking_uid like '%2';
select is(private.analytics_drift(), 0::bigint, 'booking deletes');

-- A dataset delete cascades to its leads, messages, bookings and counter rows.
delete from datasets where id = :'l2';
select is(private.analytics_drift(), 0::bigint, 'dataset delete');
select is(
  (select count(*) from analytics_message_days where dataset_id = :'l2')
  + (select count(*) from analytics_lead_groups where dataset_id = :'l2')
  + (select count(*) from analytics_booking_days where dataset_id = :'l2')
  + (select count(*) from analytics_lead_days where dataset_id = :'l2'),
  0::bigint, 'a deleted dataset leaves no counter rows'
);

-- Local days across DST changes.
insert into leads (client_id, dataset_id, phone_number) values (:'lon', :'l1', '+447911000001')
returning id as lon_lead \gset
insert into leads (client_id, dataset_id, phone_number) values (:'nyc', :'n1', '+12125550001')
returning id as nyc_lead \gset
delete from messages where message_category = 'human_manual';
insert into messages (client_id, dataset_id, conversation_id, lead_id, direction, message_category, status, content, sent_at)
values
  -- London: GMT until 2026-03-29 01:00Z, then BST (+1) until 2026-10-25 01:00Z.
  (:'lon', :'l1', tests.create_conversation(:'lon_lead'), :'lon_lead', 'outbound', 'human_manual', 'sent', 'a', '2026-03-29 00:30Z'),
  (:'lon', :'l1', tests.create_conversation(:'lon_lead'), :'lon_lead', 'outbound', 'human_manual', 'sent', 'b', '2026-03-29 23:30Z'),
  (:'lon', :'l1', tests.create_conversation(:'lon_lead'), :'lon_lead', 'outbound', 'human_manual', 'sent', 'c', '2026-10-24 23:30Z'),
  (:'lon', :'l1', tests.create_conversation(:'lon_lead'), :'lon_lead', 'outbound', 'human_manual', 'sent', 'd', '2026-10-25 23:30Z'),
  -- New York: EST (-5) until 2026-03-08 07:00Z, then EDT (-4).
  (:'nyc', :'n1', tests.create_conversation(:'nyc_lead'), :'nyc_lead', 'outbound', 'human_manual', 'sent', 'e', '2026-03-08 04:59Z'),
  (:'nyc', :'n1', tests.create_conversation(:'nyc_lead'), :'nyc_lead', 'outbound', 'human_manual', 'sent', 'f', '2026-03-08 05:00Z'),
  (:'nyc', :'n1', tests.create_conversation(:'nyc_lead'), :'nyc_lead', 'outbound', 'human_manual', 'sent', 'g', '2026-03-09 03:59Z'),
  (:'nyc', :'n1', tests.create_conversation(:'nyc_lead'), :'nyc_lead', 'outbound', 'human_manual', 'sent', 'h', '2026-03-09 04:00Z');
-- The two October messages land on the same local day (00:30 BST and 23:30 GMT): one row.
select is(
  array(select day::text || '=' || messages from analytics_message_days
    where dataset_id = :'l1' and message_category = 'human_manual' and messages <> 0 order by day),
  array['2026-03-29=1', '2026-03-30=1', '2026-10-25=2'],
  'London: 2026-10-25 (25 hours long) holds both its messages'
);
select is(
  array(select day::text || '=' || messages from analytics_message_days
    where dataset_id = :'n1' and message_category = 'human_manual' and messages <> 0 order by day),
  array['2026-03-07=1', '2026-03-08=2', '2026-03-09=1'],
  'New York: midnight is 05:00Z before the DST change and 04:00Z after'
);

-- A new time zone re-buckets the client's counters into its new local days.
update clients set timezone = 'Asia/Tokyo' where id = :'nyc';
select is(private.analytics_drift(), 0::bigint, 'a time zone change rebuilds the counters');
select is(
  array(select day::text || '=' || messages from analytics_message_days
    where dataset_id = :'n1' and message_category = 'human_manual' and messages <> 0 order by day),
  array['2026-03-08=2', '2026-03-09=2'],
  'Tokyo (+9): the same messages on Tokyo days'
);

-- The repair finds and fixes drift, and finds none when there is none.
select is(private.recount_analytics(null), 0, 'the repair finds nothing to fix');
update analytics_message_days set sent = sent + 5 where dataset_id = :'l1' and message_category = 'm1';
delete from analytics_lead_groups where dataset_id = :'n1' and contact_status = 'HOT';
select ok(private.recount_analytics(null) > 0, 'the repair reports the drifted rows');
select is(private.analytics_drift(), 0::bigint, 'after the repair the counters equal the recount');

-- Writes go through the triggers only: members read, never write.
select tests.create_user('admin@lon.test', :'lon', 'admin') as lon_admin \gset
select tests.authenticate_as(:'lon_admin');
select throws_ok(
  format('update analytics_message_days set sent = 0 where dataset_id = %L', :'l1'),
  '42501', null, 'members cannot write the counters'
);
select tests.clear_authentication();

select * from finish();
rollback;
