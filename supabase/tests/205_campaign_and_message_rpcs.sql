-- Campaign RPCs (start/pause/resume), send_message and get_conversation as PostgREST calls
-- them: API contract shapes, validation, roles and tenant isolation; suppressions RLS.
begin;
select plan(41);

select tests.create_client('Tenant A') as a \gset
select tests.create_client('Tenant B') as b \gset
update public.clients set twilio_phone_number = '+447700900950' where id = :'a';
select tests.create_user('admin@a.test', :'a', 'admin') as admin \gset
select tests.create_user('manager@a.test', :'a', 'manager') as manager \gset
select tests.create_user('rep@a.test', :'a', 'sales_rep') as rep \gset
select tests.create_user('ro@a.test', :'a', 'read_only') as ro \gset
select tests.create_user('admin@b.test', :'b', 'admin') as other \gset
insert into public.datasets (client_id, name) values (:'a', 'Old list') returning id as d \gset
insert into public.datasets (client_id, name) values (:'a', 'Empty') returning id as empty \gset
insert into public.datasets (client_id, name) values (:'a', 'Hidden from the rep') returning id as hidden \gset
select tests.create_user('rep2@a.test', :'a', 'sales_rep', 'active', false, array[:'hidden'::uuid]) as rep2 \gset
insert into public.leads (client_id, dataset_id, first_name, phone_number, created_at)
select :'a', :'d', case when g > 1 then 'Lead' || g end, '+44770090' || (1000 + g), now() - make_interval(mins => 10 - g)
from generate_series(1, 5) g;

-- start ----------------------------------------------------------------------------------
select tests.authenticate_as(:'rep');
select tests.throws_status($$select public.start_campaign('$$ || :'d' || $$')$$, 403, null, 'a sales rep cannot start a campaign');
select tests.clear_authentication();
select tests.authenticate_as(:'ro');
select tests.throws_status($$select public.start_campaign('$$ || :'d' || $$')$$, 403, null, 'read-only cannot start a campaign');
select tests.clear_authentication();
select tests.authenticate_as(:'other');
select tests.throws_status($$select public.start_campaign('$$ || :'d' || $$')$$, 404, null, 'another tenant gets not found');
select tests.throws_status($$select public.pause_campaign('$$ || :'d' || $$')$$, 404, null, 'another tenant cannot pause');
select tests.clear_authentication();

select tests.authenticate_as(:'admin');
select tests.throws_status($$select public.start_campaign('$$ || :'d' || $$', '{"rate_limit_messages_per_minute": 0}')$$, 400, null,
  'rate below 1 is refused');
select tests.throws_status($$select public.start_campaign('$$ || :'d' || $$', '{"schedule": {"hours_start": 22, "hours_end": 8}}')$$, 400,
  null, 'a window that ends before it starts is refused');
select tests.throws_status($$select public.start_campaign('$$ || :'d' || $$', '{"schedule": {"days": ["funday"]}}')$$, 400, null,
  'unknown days are refused');
select tests.throws_status($$select public.start_campaign('$$ || :'d' || $$', '{"rate_limit": 5}')$$, 400, null,
  'unknown settings are refused (typos do not pass silently)');
select tests.throws_status($$select public.start_campaign('$$ || :'empty' || $$')$$, 400, 'dataset has no leads: import a list before starting the campaign',
  'a dataset without leads cannot start');
select tests.throws_status($$select public.start_campaign(gen_random_uuid())$$, 404, null, 'unknown dataset');

select public.start_campaign(:'d', '{"rate_limit_messages_per_minute": 2, "m2_delay_hours": 24,
  "schedule": {"hours_start": 0, "hours_end": 24, "days": ["Monday", "tue", "wed", "thu", "fri", "sat", "sun"]},
  "templates": {"m1": "Hey {first_name|friend}, {company_name} here. Still looking?"}}') as started \gset
select is((select array_agg(k order by k) from jsonb_object_keys(:'started'::jsonb -> 'campaign') k),
  array['dataset_id', 'estimated_completion', 'messages_queued', 'status', 'total_leads'], 'the API contract''s campaign shape');
select results_eq($$select c ->> 'status', (c ->> 'total_leads')::integer, (c ->> 'messages_queued')::integer
  from (select '$$ || :'started' || $$'::jsonb -> 'campaign' as c) x$$,
  $$values ('active', 5, 2)$$, 'active, 5 leads, the first minute''s 2 M1s queued now');
select ok((:'started'::jsonb -> 'campaign' ->> 'estimated_completion')::timestamptz > now() + interval '24 hours',
  'estimated completion includes the follow-up delays');
select tests.clear_authentication();
select is((select campaign_status::text from public.datasets where id = :'d'), 'active', 'dataset active');
select results_eq($$select rate_limit_messages_per_minute, m2_delay_hours, hours_start, hours_end, days, started_at is not null
  from public.campaigns where dataset_id = '$$ || :'d' || $$'$$,
  $$values (2, 24::numeric, 0::smallint, 24::smallint, array['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], true)$$,
  'settings stored');
select is((select content from public.messages m join public.leads l on l.id = m.lead_id where l.first_name is null),
  E'Hey friend, Tenant A here. Still looking?\nReply STOP to opt out', 'template with fallback and the opt-out line');

-- pause / resume ---------------------------------------------------------------------------
select tests.authenticate_as(:'rep');
select tests.throws_status($$select public.pause_campaign('$$ || :'d' || $$')$$, 403, null, 'a sales rep cannot pause');
select tests.clear_authentication();
select tests.authenticate_as(:'manager');
select is(public.pause_campaign(:'d') -> 'campaign' ->> 'status', 'paused', 'a manager pauses');
select is(public.pause_campaign(:'d') -> 'campaign' ->> 'messages_pending', '2', 'pausing twice is harmless; queued M1s kept pending');
select tests.clear_authentication();
select is((select private.prepare_send(m.id, 'w') ->> 'reason' from public.messages m where m.dataset_id = :'d' limit 1), 'paused',
  'a queued message is held while paused');
select tests.authenticate_as(:'manager');
select is(public.resume_campaign(:'d') -> 'campaign' ->> 'status', 'active', 'resumed');
select tests.clear_authentication();
select tests.throws_status($$select public.resume_campaign('$$ || :'empty' || $$')$$, 403, null, 'no caller, no campaign');
select tests.authenticate_as(:'admin');
select tests.throws_status($$select public.resume_campaign('$$ || :'empty' || $$')$$, 400, null, 'a draft campaign cannot be resumed');
select tests.throws_status($$select public.pause_campaign('$$ || :'empty' || $$')$$, 400, null, 'a draft campaign cannot be paused');
select tests.clear_authentication();

-- estimate: sending time is spent inside the window only
select is(private.walk_send_window('2026-06-10 19:00+00', 3, 'Europe/London', 9, 21, array['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']),
  '2026-06-11 10:00+00'::timestamptz, '3 h from 20:00 BST: 1 h tonight, 2 h from 09:00 tomorrow');
select is(private.walk_send_window('2026-06-12 12:00+00', 12, 'Europe/London', 9, 21, array['mon', 'tue', 'wed', 'thu', 'fri']),
  '2026-06-15 12:00+00'::timestamptz, 'Friday 13:00 BST + 12 h, weekdays only: Monday 13:00 BST');

-- send_message -----------------------------------------------------------------------------
select id as lead_id from public.leads where phone_number = '+447700901002' \gset
select tests.authenticate_as(:'rep');
select public.send_message(:'lead_id', 'Hi, it''s Sam from Tenant A') as sent \gset
select is((select array_agg(k order by k) from jsonb_object_keys(:'sent'::jsonb -> 'message') k),
  array['content', 'id', 'sent_at', 'status', 'twilio_sid'], 'the API contract''s message shape');
select is(:'sent'::jsonb -> 'message' ->> 'status', 'pending', 'pending until the worker sends it');
select tests.throws_status($$select public.send_message('$$ || :'lead_id' || $$', '   ')$$, 400, null, 'empty content');
select tests.throws_status($$select public.send_message('$$ || :'lead_id' || $$', 'hi', 'ai_response')$$, 400, null,
  'only human_manual through this route');
select tests.clear_authentication();
select is((select sent_by from public.messages where id = (:'sent'::jsonb -> 'message' ->> 'id')::uuid), :'rep'::uuid, 'sent_by is the rep');
select is((select count(*)::integer from private.jobs where idempotency_key = 'sms.send:' || (:'sent'::jsonb -> 'message' ->> 'id')), 1,
  'an sms.send job is queued');
select private.opt_out_number(:'a', '+447700901004', 'Replied "STOP"', 'inbound_keyword');
select tests.authenticate_as(:'rep');
select tests.throws_status($$select public.send_message((select id from public.leads where phone_number = '+447700901004'), 'Are you sure?')$$,
  403, null, 'a person cannot message an opted-out number');
select tests.clear_authentication();
select tests.authenticate_as(:'ro');
select tests.throws_status($$select public.send_message('$$ || :'lead_id' || $$', 'hi')$$, 403, null, 'read-only cannot send');
select tests.clear_authentication();
select tests.authenticate_as(:'rep2');
select tests.throws_status($$select public.send_message('$$ || :'lead_id' || $$', 'hi')$$, 404, null, 'a rep restricted to another dataset: not found');
select tests.clear_authentication();
select tests.authenticate_as(:'other');
select tests.throws_status($$select public.send_message('$$ || :'lead_id' || $$', 'hi')$$, 404, null, 'another tenant: not found');

-- get_conversation -------------------------------------------------------------------------
select tests.throws_status($$select public.get_conversation((select id from public.conversations limit 1))$$, 404, null,
  'another tenant cannot read the conversation');
select tests.clear_authentication();
select id as conv from public.conversations where lead_id = :'lead_id' \gset
select tests.authenticate_as(:'ro');
select is((select array_agg(k order by k) from jsonb_object_keys(public.get_conversation(:'conv')) k),
  array['conversation', 'lead', 'messages'], 'read-only reads the conversation in the API contract''s shape');
select is(jsonb_array_length(public.get_conversation(:'conv') -> 'messages'), 2, 'M1 and the manual message');

-- suppressions: staff may add; others read only
select throws_ok($$insert into public.suppressions (phone_number, reason) values ('+447700901005', 'asked')$$, '42501', null,
  'read-only cannot add a suppression');
select tests.clear_authentication();
select tests.authenticate_as(:'manager');
select lives_ok($$insert into public.suppressions (phone_number, reason) values ('+447700901005', 'asked on the phone')$$,
  'a manager adds a suppression');
select tests.clear_authentication();

select * from finish();
rollback;
