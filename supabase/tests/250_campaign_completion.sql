-- Campaign completion: NO_RESPONSE exactly when the grace period after M3 ends, and the
-- dataset completed (with campaign_end_date, owner notified) exactly when no lead can receive
-- anything more.
begin;
select plan(23);

select tests.create_client('Completion client') as c \gset
select tests.create_user('admin@done.test', :'c', 'admin') as admin \gset
select tests.create_user('owner@done.test', :'c', 'manager') as owner \gset
select tests.create_user('viewer@done.test', :'c', 'read_only') as viewer \gset
insert into public.datasets (client_id, name, created_by) values (:'c', 'Winter list', :'owner') returning id as d \gset
insert into public.datasets (client_id, name) values (:'c', 'Orphan list') returning id as d2 \gset
insert into public.campaigns (dataset_id, client_id) values (:'d', :'c'), (:'d2', :'c');
update public.datasets set campaign_status = 'active' where id in (:'d', :'d2');
select now() as t0 \gset

-- Winter list: one lead waiting out its grace after M3, one that replied, one opted out, one archived.
insert into public.leads (client_id, dataset_id, first_name, phone_number, contact_status, sequence_step, m1_sent_at, m2_sent_at,
  m3_sent_at)
values (:'c', :'d', 'Quiet', '+447700800001', 'M3_SENT', 3, :'t0'::timestamptz - interval '10 days',
  :'t0'::timestamptz - interval '8 days', :'t0'::timestamptz - interval '71 hours') returning id as quiet \gset
insert into public.leads (client_id, dataset_id, first_name, phone_number, contact_status, reply_received_at)
values (:'c', :'d', 'Chatty', '+447700800002', 'WARM', :'t0'::timestamptz - interval '5 days');
insert into public.leads (client_id, dataset_id, first_name, phone_number, contact_status, opted_out)
values (:'c', :'d', 'Stopped', '+447700800003', 'OPTED_OUT', true);
insert into public.leads (client_id, dataset_id, first_name, phone_number, archived)
values (:'c', :'d', 'Archived', '+447700800004', true);
-- Orphan list (no owner): a READY lead keeps it open until it is suppressed.
insert into public.leads (client_id, dataset_id, first_name, phone_number) values (:'c', :'d2', 'Ready', '+447700800005')
  returning id as ready \gset

select is(private.run_campaign_completion(:'t0'::timestamptz + interval '59 minutes') ->> 'no_response', '0',
  'a minute before the 72 h grace ends: nothing');
select is((select contact_status::text from public.leads where id = :'quiet'), 'M3_SENT', 'still M3_SENT');
select is((select campaign_status::text from public.datasets where id = :'d'), 'active', 'the campaign is still active');

select is(private.run_campaign_completion(:'t0'::timestamptz + interval '1 hour')::jsonb - 'at',
  '{"no_response": 1, "completed": 1, "notified": 1}'::jsonb, 'at 72 h exactly: NO_RESPONSE and completed');
select is((select contact_status::text from public.leads where id = :'quiet'), 'NO_RESPONSE', 'the lead is NO_RESPONSE');
select results_eq(format($$select campaign_status::text, campaign_end_date from public.datasets where id = %L$$, :'d'),
  format($$values ('completed', %L::timestamptz)$$, :'t0'::timestamptz + interval '1 hour'),
  'the dataset is completed with campaign_end_date');
select results_eq($$select user_id, title from public.notifications where event = 'campaign_completed'$$,
  format($$values (%L::uuid, 'Campaign completed: Winter list')$$, :'owner'), 'its owner (only) is told');
select is((select data from public.notifications where event = 'campaign_completed') - 'dataset_id',
  '{"kind": "campaign_completed", "total": 4, "replied": 1, "booked": 0, "no_response": 1}'::jsonb, 'with the figures');
select is((select campaign_status::text from public.datasets where id = :'d2'), 'active', 'a READY lead keeps its campaign open');
select is(private.run_campaign_completion(:'t0'::timestamptz + interval '2 hours') ->> 'notified', '0',
  'a second run notifies nobody again');

-- a reply after M3 (status not yet moved) is never NO_RESPONSE; a shorter grace is honoured
insert into public.datasets (client_id, name, created_by) values (:'c', 'Short grace', :'owner') returning id as d3 \gset
insert into public.campaigns (dataset_id, client_id, no_response_grace_hours) values (:'d3', :'c', 24);
update public.datasets set campaign_status = 'active' where id = :'d3';
insert into public.leads (client_id, dataset_id, first_name, phone_number, contact_status, sequence_step, m3_sent_at, reply_received_at)
values (:'c', :'d3', 'Late', '+447700800006', 'M3_SENT', 3, :'t0'::timestamptz - interval '30 hours',
  :'t0'::timestamptz - interval '1 hour') returning id as late \gset
insert into public.leads (client_id, dataset_id, first_name, phone_number, contact_status, sequence_step, m3_sent_at)
values (:'c', :'d3', 'Short', '+447700800007', 'M3_SENT', 3, :'t0'::timestamptz - interval '23 hours') returning id as short \gset
select private.run_campaign_completion(:'t0'::timestamptz + interval '59 minutes');
select is((select contact_status::text from public.leads where id = :'short'), 'M3_SENT', '24 h grace: not before');
select private.run_campaign_completion(:'t0'::timestamptz + interval '1 hour');
select is((select contact_status::text from public.leads where id = :'short'), 'NO_RESPONSE', '24 h grace: at 24 h');
select is((select contact_status::text from public.leads where id = :'late'), 'M3_SENT', 'replied after M3: never NO_RESPONSE');
select is((select campaign_status::text from public.datasets where id = :'d3'), 'active', 'and it keeps the campaign open');

-- a paused campaign is never completed; the orphan list completes once its last lead is suppressed
update public.datasets set campaign_status = 'paused' where id = :'d3';
update public.leads set contact_status = 'REPLIED' where id = :'late';
select private.run_campaign_completion(:'t0'::timestamptz + interval '2 hours');
select is((select campaign_status::text from public.datasets where id = :'d3'), 'paused', 'paused: left alone');
insert into public.suppressions (client_id, phone_number, reason) values (:'c', '+447700800005', 'staff');
select is(private.run_campaign_completion(:'t0'::timestamptz + interval '2 hours') ->> 'completed', '1',
  'a suppressed number cannot receive anything: the orphan list completes');
select results_eq($$select user_id from public.notifications where event = 'campaign_completed' and data ->> 'dataset_id' = '$$ || :'d2' || $$'$$,
  format('values (%L::uuid)', :'admin'), 'no owner: the admins are told');
select ok(not exists (select from public.notifications where user_id = :'viewer'), 'read_only: not told');

-- a backlog drains p_batch leads a tick, oldest first
insert into public.datasets (client_id, name) values (:'c', 'Backlog') returning id as d4 \gset
insert into public.campaigns (dataset_id, client_id) values (:'d4', :'c');
update public.datasets set campaign_status = 'active' where id = :'d4';
insert into public.leads (client_id, dataset_id, first_name, phone_number, contact_status, sequence_step, m3_sent_at)
select :'c', :'d4', 'Old ' || g, '+4477008001' || g, 'M3_SENT', 3, :'t0'::timestamptz - interval '100 hours' - g * interval '1 hour'
from generate_series(1, 3) g;
select is((private.run_campaign_completion(:'t0'::timestamptz + interval '2 hours', 2) ->> 'no_response')::int, 2, 'two a tick');
select is((select first_name from public.leads where dataset_id = :'d4' and contact_status = 'M3_SENT'), 'Old 1',
  'the oldest went first');
select is((select campaign_status::text from public.datasets where id = :'d4'), 'active', 'not completed while one is left');
select is(private.run_campaign_completion(:'t0'::timestamptz + interval '2 hours', 2) ->> 'completed', '1',
  'the next tick finishes the backlog and completes it');

-- the grace period is a campaign setting staff can change
select tests.authenticate_as(:'owner');
update public.campaigns set no_response_grace_hours = 48 where dataset_id = :'d3';
select tests.clear_authentication();
select is((select no_response_grace_hours from public.campaigns where dataset_id = :'d3'), 48::numeric,
  'a manager sets the grace period');

select * from finish();
rollback;
