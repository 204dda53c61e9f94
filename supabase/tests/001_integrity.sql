-- Schema-level integrity that holds whatever the policies say: client_id is immutable,
-- rows cannot point into another tenant (composite foreign keys), system-maintained
-- columns are not writable by users, messages are read-only to users, anon gets nothing,
-- and service_role (workers, webhooks) sees and writes across tenants.
begin;
select plan(52);

select * from tests.create_world() \gset
-- A lead with no thread yet.
select tests.create_lead(:'ds_a2', 'Abe') as lead_a3 \gset

-- Column privileges (the catalogue) --------------------------------------------------------
-- Inserting client_id is allowed where RLS's with-check pins it to the caller's client
-- (bulk imports pass it explicitly); changing it never is.
select is_empty(
  $$
  select format('%s.%s %s', t.tbl, t.col, p.priv)
  from (values
    ('clients', 'id', 'u'), ('clients', 'twilio_phone_number', 'iu'),
    ('clients', 'twilio_messaging_service_sid', 'iu'),
    ('datasets', 'id', 'u'), ('datasets', 'client_id', 'u'), ('datasets', 'total_leads', 'iu'),
    ('datasets', 'active_leads', 'iu'), ('datasets', 'hot_leads', 'iu'),
    ('datasets', 'converted_leads', 'iu'), ('datasets', 'created_by', 'iu'),
    ('datasets', 'created_at', 'iu'), ('datasets', 'updated_at', 'iu'),
    ('campaigns', 'dataset_id', 'u'), ('campaigns', 'client_id', 'u'),
    ('leads', 'id', 'iu'), ('leads', 'client_id', 'u'), ('leads', 'dataset_id', 'u'),
    ('leads', 'phone_number', 'u'), ('leads', 'opted_out', 'iu'), ('leads', 'opted_out_at', 'iu'),
    ('leads', 'm1_sent_at', 'iu'), ('leads', 'm2_sent_at', 'iu'), ('leads', 'm3_sent_at', 'iu'),
    ('leads', 'reply_received_at', 'iu'), ('leads', 'latest_lead_reply', 'iu'),
    ('leads', 'call_booked', 'iu'), ('leads', 'call_booked_time', 'iu'),
    ('leads', 'cal_booking_id', 'iu'), ('leads', 'created_at', 'iu'), ('leads', 'updated_at', 'iu'),
    ('conversations', 'id', 'iu'), ('conversations', 'client_id', 'iu'),
    ('conversations', 'dataset_id', 'iu'), ('conversations', 'lead_id', 'iu'),
    ('conversations', 'message_count', 'iu'), ('conversations', 'last_message_at', 'iu')
  ) t (tbl, col, privs)
  cross join (values ('INSERT', 'i'), ('UPDATE', 'u')) p (priv, flag)
  where strpos(t.privs, p.flag) > 0
    and (has_column_privilege('authenticated', format('public.%I', t.tbl)::regclass, t.col, p.priv)
      or has_column_privilege('anon', format('public.%I', t.tbl)::regclass, t.col, p.priv))
  $$,
  'ids, client_id, telephony, stats, send/reply/booking/opt-out state and timestamps are not writable by users'
);
select is_empty(
  $$
  select p from (values ('INSERT'), ('UPDATE')) v (p)
  where has_any_column_privilege('authenticated', 'public.messages', p)
  union all
  select 'DELETE' where has_table_privilege('authenticated', 'public.messages', 'DELETE')
  $$,
  'authenticated holds no write privilege at all on messages'
);
select is_empty(
  $$
  select format('%s %s', t, p)
  from unnest(array['clients', 'client_members', 'datasets', 'campaigns', 'leads', 'conversations', 'messages']) t
  cross join unnest(array['SELECT', 'INSERT', 'UPDATE']) p
  where has_any_column_privilege('anon', format('public.%I', t)::regclass, p)
  union all
  select format('%s DELETE', t)
  from unnest(array['clients', 'client_members', 'datasets', 'campaigns', 'leads', 'conversations', 'messages']) t
  where has_table_privilege('anon', format('public.%I', t)::regclass, 'DELETE')
  $$,
  'anon holds no privilege on any foundation table'
);

-- Users: client_id, dataset_id, telephony and system state cannot be written ---------------
update public.clients set twilio_messaging_service_sid = 'MG' || repeat('b', 32), twilio_phone_number = '+447700800800'
where id = :'client_b';
select tests.authenticate_as(:'a_admin');

select throws_ok(
  format('update public.clients set twilio_messaging_service_sid = %L', 'MG' || repeat('b', 32)),
  '42501', null, 'clients: an admin cannot route its SMS through another client''s messaging service'
);
select throws_ok(
  format('update public.clients set twilio_phone_number = %L', '+447700800801'),
  '42501', null, 'clients: an admin cannot claim an inbound number'
);
with u as (update public.clients set primary_color = '#112233', settings = '{"opt_out_line": "Reply STOP"}' returning 1)
select is(count(*)::int, 1, 'clients: an admin still edits its branding and settings') from u;

select throws_ok(
  format('update public.datasets set client_id = %L where id = %L', :'client_b', :'ds_a1'),
  '42501', null, 'datasets: an admin cannot move a dataset to another client'
);
select throws_ok(
  format('update public.campaigns set client_id = %L where dataset_id = %L', :'client_b', :'ds_a1'),
  '42501', null, 'campaigns: an admin cannot move settings to another client'
);
select throws_ok(
  format('update public.leads set client_id = %L where id = %L', :'client_b', :'lead_a1'),
  '42501', null, 'leads: an admin cannot move a lead to another client'
);
select throws_ok(
  format('update public.leads set dataset_id = %L where id = %L', :'ds_b1', :'lead_a1'),
  '42501', null, 'leads: an admin cannot point a lead at another client''s dataset'
);
select throws_ok(
  format('update public.conversations set client_id = %L where id = %L', :'client_b', :'conv_a1'),
  '42501', null, 'conversations: an admin cannot move a thread to another client'
);
select throws_ok(
  format('insert into public.leads (client_id, dataset_id, phone_number) values (%L, %L, %L)',
    :'client_b', :'ds_b1', '+447700900020'),
  '42501', null, 'leads: a lead cannot be created in another client''s name'
);
select throws_ok(
  format('update public.datasets set total_leads = 1000 where id = %L', :'ds_a1'),
  '42501', null, 'datasets: stats columns are refused on update'
);
select throws_ok(
  $$insert into public.datasets (name, total_leads, hot_leads) values ('fake stats', 1000, 999)$$,
  '42501', null, 'datasets: stats columns are refused on insert'
);
select throws_ok(
  format('update public.leads set opted_out = false where id = %L', :'lead_a1'),
  '42501', null, 'leads: opt-out cannot be lifted by users'
);
select throws_ok(
  format('update public.leads set m1_sent_at = null where id = %L', :'lead_a1'),
  '42501', null, 'leads: send state cannot be rewritten by users'
);
select throws_ok(
  format('insert into public.leads (dataset_id, phone_number, opted_out, contact_status) values (%L, %L, false, %L)',
    :'ds_a1', '+447700900021', 'HOT'),
  '42501', null, 'leads: state columns are refused on insert'
);
select throws_ok(
  format('update public.conversations set message_count = 0 where id = %L', :'conv_a1'),
  '42501', null, 'conversations: counters are refused on update'
);
select tests.clear_authentication();
select is(
  (select total_leads from public.datasets where id = :'ds_a1'), 1,
  'the stats of A''s dataset are what the leads say'
);

-- service_role: bypasses RLS but not the schema's integrity -------------------------------
select is((select rolbypassrls from pg_roles where rolname = 'service_role'), true, 'service_role bypasses RLS');
select tests.authenticate_as_service_role();

select is(
  (select count(*)::int from public.leads where client_id in (:'client_a', :'client_b')), 4,
  'service_role reads the leads of every client'
);
select is(
  (select count(*)::int from public.messages where client_id in (:'client_a', :'client_b')), 4,
  'service_role reads the messages of every client'
);
select lives_ok(
  format($$insert into public.messages (client_id, dataset_id, conversation_id, lead_id, direction, message_category, status, content)
           values (%L, %L, %L, %L, 'outbound', 'ai_response', 'pending', 'Thanks!')$$,
    :'client_b', :'ds_b1', :'conv_b1', :'lead_b1'),
  'service_role writes messages'
);
with u as (update public.leads set notes = 'worker' where id in (:'lead_a1', :'lead_b1') returning 1)
select is(count(*)::int, 2, 'service_role updates leads of any client') from u;
select tests.throws_status(
  format('update public.leads set client_id = %L where id = %L', :'client_b', :'lead_a1'),
  403, 'a row cannot be moved to another client', 'service_role cannot change a lead''s client_id'
);
select tests.throws_status(
  format('update public.datasets set client_id = %L where id = %L', :'client_b', :'ds_a1'),
  403, 'a row cannot be moved to another client', 'service_role cannot change a dataset''s client_id'
);
select tests.throws_status(
  format('update public.campaigns set client_id = %L where dataset_id = %L', :'client_b', :'ds_a1'),
  403, 'a row cannot be moved to another client', 'service_role cannot change campaign settings'' client_id'
);
select tests.throws_status(
  format('update public.conversations set client_id = %L where id = %L', :'client_b', :'conv_a1'),
  403, 'a row cannot be moved to another client', 'service_role cannot change a thread''s client_id'
);
select tests.throws_status(
  format('update public.messages set client_id = %L where id = %L', :'client_b', :'msg_a1'),
  403, 'a row cannot be moved to another client', 'service_role cannot change a message''s client_id'
);
select tests.throws_status(
  format('update public.client_members set client_id = %L where user_id = %L', :'client_b', :'a_rep'),
  403, 'a row cannot be moved to another client', 'service_role cannot change a membership''s client_id'
);
select throws_ok(
  format('update public.leads set dataset_id = %L where id = %L', :'ds_b1', :'lead_a1'),
  '23503', null, 'service_role cannot point A''s lead at B''s dataset'
);
select throws_ok(
  format('insert into public.leads (client_id, dataset_id, phone_number) values (%L, %L, %L)',
    :'client_b', :'ds_a1', '+447700900022'),
  '23503', null, 'service_role cannot create a lead of B inside A''s dataset'
);
select throws_ok(
  format('insert into public.campaigns (client_id, dataset_id) values (%L, %L)', :'client_b', :'ds_a2'),
  '23503', null, 'service_role cannot create B''s settings for A''s dataset'
);
select throws_ok(
  format('insert into public.conversations (client_id, dataset_id, lead_id) values (%L, %L, %L)',
    :'client_b', :'ds_b1', :'lead_a3'),
  '23503', null, 'service_role cannot open a thread of B with A''s lead'
);
select throws_ok(
  format('insert into public.conversations (client_id, dataset_id, lead_id) values (%L, %L, %L)',
    :'client_a', :'ds_b1', :'lead_a3'),
  '23503', null, 'service_role cannot file A''s thread under B''s dataset'
);
select throws_ok(
  format($$insert into public.messages (client_id, dataset_id, conversation_id, lead_id, direction, message_category, status, content)
           values (%L, %L, %L, %L, 'outbound', 'system', 'pending', 'x')$$,
    :'client_b', :'ds_b1', :'conv_a1', :'lead_a1'),
  '23503', null, 'service_role cannot file a message of B on A''s lead and thread'
);
select throws_ok(
  format($$insert into public.messages (client_id, dataset_id, direction, message_category, status, content)
           values (%L, %L, 'inbound', 'lead_reply', 'received', 'x')$$,
    :'client_a', :'ds_b1'),
  '23503', null, 'service_role cannot file A''s message under B''s dataset'
);
select lives_ok(
  format('insert into public.conversations (client_id, dataset_id, lead_id) values (%L, %L, %L)',
    :'client_a', :'ds_a2', :'lead_a3'),
  'service_role opens threads'
);
with d as (delete from public.leads where id = :'lead_b1' returning 1)
select is(count(*)::int, 1, 'service_role deletes leads') from d;
select lives_ok($$insert into public.clients (name) values ('Provisioned by the platform')$$, 'service_role creates clients');
with d as (delete from public.clients where name = 'Provisioned by the platform' returning 1)
select is(count(*)::int, 1, 'service_role deletes clients') from d;

-- anon: nothing at all --------------------------------------------------------------------
select tests.clear_authentication();
select tests.authenticate_as_anon();

select throws_ok('select * from public.clients', '42501', null, 'anon: select clients refused');
select throws_ok('select * from public.client_members', '42501', null, 'anon: select client_members refused');
select throws_ok('select * from public.datasets', '42501', null, 'anon: select datasets refused');
select throws_ok('select * from public.campaigns', '42501', null, 'anon: select campaigns refused');
select throws_ok('select * from public.leads', '42501', null, 'anon: select leads refused');
select throws_ok('select * from public.conversations', '42501', null, 'anon: select conversations refused');
select throws_ok('select * from public.messages', '42501', null, 'anon: select messages refused');
select throws_ok(
  format('insert into public.leads (dataset_id, phone_number) values (%L, %L)', :'ds_a1', '+447700900023'),
  '42501', null, 'anon: insert leads refused'
);
select throws_ok($$update public.leads set notes = 'anon'$$, '42501', null, 'anon: update leads refused');
select throws_ok('delete from public.datasets', '42501', null, 'anon: delete datasets refused');
select throws_ok('select private.current_client_id()', '42501', null, 'anon: the RLS helpers are out of reach');

select * from finish();
rollback;
