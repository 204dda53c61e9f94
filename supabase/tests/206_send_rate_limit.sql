-- The API contract's "message sending: 60 messages/hour per client" on the sending routes:
-- send_message and ai_send share one rolling-hour budget per client; the 61st is 429
-- RATE_LIMITED with Retry-After (seconds until a slot frees) and stores nothing. Campaign
-- (M1-M3) sends are budgeted by the sequencing tick, not by this limit, but the route's
-- sends count against the tick's client budget. Calls are positional on purpose.
begin;
select plan(26);

select tests.create_client('Tenant A') as a \gset
select tests.create_client('Tenant B') as b \gset
select tests.create_client('Tenant C') as c \gset
select tests.create_client('Tenant D') as d \gset
update public.clients set twilio_phone_number = '+4477009009' || (50 + n)
from (values (:'a'::uuid, 1), (:'b'::uuid, 2), (:'c'::uuid, 3), (:'d'::uuid, 4)) v (id, n) where clients.id = v.id;
select tests.create_user('admin@a.test', :'a', 'admin') as admin_a \gset
select tests.create_user('ro@a.test', :'a', 'read_only') as ro_a \gset
select tests.create_user('admin@b.test', :'b', 'admin') as admin_b \gset
select tests.create_user('admin@c.test', :'c', 'admin') as admin_c \gset
select tests.create_user('admin@d.test', :'d', 'admin') as admin_d \gset
select tests.create_dataset(:'a') as ds_a \gset
select tests.create_dataset(:'b') as ds_b \gset
select tests.create_dataset(:'c') as ds_c \gset
select tests.create_dataset(:'d') as ds_d \gset
select tests.create_lead(:'ds_a', 'Ann') as ann \gset
select tests.create_lead(:'ds_a', 'Bob') as bob \gset
select tests.create_lead(:'ds_b', 'Bea') as bea \gset
select tests.create_lead(:'ds_c', 'Cat') as cat \gset
select tests.create_conversation(:'bob') as bob_cv \gset

-- 60 route sends in the hour: 30 manual, 30 AI-approved ------------------------------------------
select tests.authenticate_as(:'admin_a');
select is(tests.succeeds_times(30, format($$select public.send_message(%L, 'Manual hello')$$, :'ann')), 30,
  '30 manual sends go');
select is(tests.succeeds_times(30, format($$select public.ai_send(%L, null, 'Edited AI hello')$$, :'bob')), 30,
  '30 AI-approved sends go: 60 in the hour');
select tests.clear_authentication();
select private.ai_store_draft(:'bob_cv', 'A draft waiting for approval', '{"confidence": 0.9}') as draft \gset

select tests.authenticate_as(:'admin_a');
select tests.error_of(format($$select public.send_message(%L, 'One too many')$$, :'ann')) as refused \gset
select is(:'refused'::jsonb ->> 'sqlstate', 'PGRST', 'the 61st manual send raises PostgREST''s custom error');
select is((:'refused'::jsonb -> 'http' ->> 'status')::int, 429, '... HTTP 429');
select is(:'refused'::jsonb -> 'body' ->> 'code', 'RATE_LIMITED', '... code RATE_LIMITED');
select ok(
  (:'refused'::jsonb -> 'http' -> 'headers' ->> 'Retry-After')::int between 1 and 3600,
  '... Retry-After is within the hour'
);
select is(
  :'refused'::jsonb -> 'body' -> 'details' ->> 'retry_after_seconds', :'refused'::jsonb -> 'http' -> 'headers' ->> 'Retry-After',
  '... and the details give the same retry time'
);
select is(:'refused'::jsonb -> 'body' -> 'details' -> 'limit_per_hour', '60'::jsonb, '... and the limit');
select tests.clear_authentication();
select is(
  (select jsonb_build_object('messages', count(*), 'queued', (select count(*) from private.jobs j where j.client_id = :'a'))
   from public.messages m where m.client_id = :'a' and m.status <> 'draft'),
  '{"messages": 60, "queued": 60}'::jsonb,
  'the refused send stored no message and queued no job'
);
select tests.authenticate_as(:'admin_a');

select is(
  tests.error_of(format($$select public.ai_send(%L, %L)$$, :'bob', :'draft')) -> 'http' ->> 'status', '429',
  'approving a draft is the same budget: the 61st is refused'
);
select is((select status::text from public.messages where id = :'draft'), 'draft',
  '... and the draft is still there to approve later');
select is(
  tests.error_of(format($$select public.ai_send(%L, null, 'Typed by hand')$$, :'bob')) -> 'body' ->> 'code', 'RATE_LIMITED',
  'ai_send with content is refused too'
);
select tests.clear_authentication();

-- Refusals name the real problem first: no rate-limit answer about another tenant's lead or a role.
select tests.authenticate_as(:'ro_a');
select ok(
  coalesce(tests.error_of(format($$select public.send_message(%L, 'hi')$$, :'ann')) -> 'body' ->> 'code', '')
    <> 'RATE_LIMITED',
  'a read-only member is refused for the role, not the budget'
);
select tests.clear_authentication();
select tests.authenticate_as(:'admin_b');
select ok(
  coalesce(tests.error_of(format($$select public.send_message(%L, 'hi')$$, :'ann')) -> 'body' ->> 'code', '')
    <> 'RATE_LIMITED',
  'another tenant''s lead is not found, whatever that tenant''s budget'
);
select is(tests.error_of(format($$select public.send_message(%L, 'Hello from B')$$, :'bea')), null,
  'another client is unaffected by A''s budget');
select tests.clear_authentication();

-- The retry time is when the oldest send of the hour leaves the rolling hour ---------------------
update private.hourly_budget_uses set used_at = now() - interval '50 minutes'
where bucket = 'message_sending' and client_id = :'a';
select tests.authenticate_as(:'admin_a');
select is(
  tests.error_of(format($$select public.send_message(%L, 'Still too many')$$, :'ann')) -> 'http' -> 'headers' ->> 'Retry-After',
  '600', 'sent 50 minutes ago: retry in 600 seconds'
);
select tests.clear_authentication();
update private.hourly_budget_uses set used_at = now() - interval '61 minutes'
where ctid = (select ctid from private.hourly_budget_uses where bucket = 'message_sending' and client_id = :'a' limit 1);
select tests.authenticate_as(:'admin_a');
select is(tests.error_of(format($$select public.send_message(%L, 'A slot freed')$$, :'ann')), null,
  'once a send is more than an hour old, one more send goes (rolling hour)');
select is(tests.error_of(format($$select public.send_message(%L, 'And no more')$$, :'ann')) -> 'http' ->> 'status', '429',
  '... and only one');
select tests.clear_authentication();

-- A send refused for another reason spends nothing ----------------------------------------------
insert into private.hourly_budget_uses (bucket, client_id, used_at)
select 'message_sending', :'c', now() - interval '5 minutes' from generate_series(1, 59);
select tests.authenticate_as(:'admin_c');
select isnt(tests.error_of(format($$select public.send_message(%L, '   ')$$, :'cat')), null, 'an empty message is refused');
select is(tests.error_of(format($$select public.send_message(%L, 'The 60th')$$, :'cat')), null,
  '... without spending the budget: the 60th send still goes');
select is(tests.error_of(format($$select public.send_message(%L, 'The 61st')$$, :'cat')) -> 'http' ->> 'status', '429',
  '... and the 61st does not');
select tests.clear_authentication();
update public.leads set opted_out = true where id = :'cat';
delete from private.hourly_budget_uses where client_id = :'c';
select tests.authenticate_as(:'admin_c');
select isnt(tests.error_of(format($$select public.send_message(%L, 'After STOP')$$, :'cat')), null,
  'a send to an opted-out lead is refused');
select tests.clear_authentication();
select is((select count(*)::int from private.hourly_budget_uses where client_id = :'c'), 0, '... and spends nothing');

-- Campaign sends and the route limit ------------------------------------------------------------
-- D's campaign has used D's whole sequence budget (60 M1s this hour).
insert into public.leads (client_id, dataset_id, first_name, phone_number)
select :'d', :'ds_d', 'Lead', '+447700950' || lpad(g::text, 3, '0') from generate_series(1, 61) g;
insert into public.messages (client_id, dataset_id, conversation_id, lead_id, direction, message_category, status,
  content, created_at, send_started_at, sent_at)
select l.client_id, l.dataset_id, tests.create_conversation(l.id), l.id, 'outbound', 'm1', 'sent', 'Hi',
  now() - interval '10 minutes', now() - interval '10 minutes', now() - interval '10 minutes'
from public.leads l where l.dataset_id = :'ds_d' and l.phone_number <> '+447700950061';
select tests.authenticate_as(:'admin_d');
select is(
  tests.error_of(format($$select public.send_message((select id from public.leads where phone_number = %L), 'A person writes')$$,
    '+447700950061')),
  null, 'campaign sends do not count against the route limit: a person can still write after 60 M1s'
);
select tests.clear_authentication();

-- A's 60 route sends this hour fill A's sequence budget (sms_per_hour 60): the tick queues no M1.
insert into public.campaigns (dataset_id, client_id, rate_limit_messages_per_minute, hours_start, hours_end, started_at)
values (:'ds_a', :'a', 10, 0, 24, now() - interval '1 day');
update public.datasets set campaign_status = 'active' where id = :'ds_a';
select tests.create_lead(:'ds_a', 'Fresh') as fresh \gset
select is((private.run_sequencing_tick(now(), :'ds_a') ->> 'queued')::int, 0,
  'route sends count against the client''s hourly sequence budget: the tick queues nothing for A');
update private.hourly_budget_uses set used_at = now() - interval '2 hours' where client_id = :'a';
update public.messages set created_at = now() - interval '2 hours' where client_id = :'a' and message_category = 'human_manual';
select ok((private.run_sequencing_tick(now(), :'ds_a') ->> 'm1')::int > 0,
  '... and once they are out of the rolling hour the campaign goes on');

select * from finish();
rollback;
