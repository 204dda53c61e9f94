-- Roles inside one client: what admin, manager, sales_rep and read_only may do to each table.
begin;
select plan(62);

select * from tests.create_world() \gset

-- read_only: reads everything of its client, writes nothing --------------------------------
select tests.authenticate_as(:'a_ro');

select is((select count(*)::int from public.clients), 1, 'read_only: select clients sees its own client');
select is((select count(*)::int from public.client_members), 1, 'read_only: select client_members sees only itself');
select is((select count(*)::int from public.datasets), 2, 'read_only: select datasets sees the client''s datasets');
select is((select count(*)::int from public.campaigns), 1, 'read_only: select campaigns sees the client''s settings');
select is((select count(*)::int from public.leads), 2, 'read_only: select leads sees the client''s leads');
select is((select count(*)::int from public.conversations), 2, 'read_only: select conversations sees the client''s threads');
select is((select count(*)::int from public.messages), 3, 'read_only: select messages sees the client''s messages (with unknown senders)');

with u as (update public.clients set name = 'x' returning 1)
select is(count(*)::int, 0, 'read_only: update clients changes nothing') from u;
select throws_ok(
  format('insert into public.client_members (client_id, user_id, email) values (%L, %L, %L)',
    :'client_a', :'loner', 'loner@example.test'),
  '42501', null, 'read_only: insert client_members refused'
);
with u as (update public.client_members set first_name = 'x' returning 1)
select is(count(*)::int, 0, 'read_only: update client_members changes nothing') from u;
select throws_ok($$insert into public.datasets (name) values ('ro')$$, '42501', null, 'read_only: insert datasets refused');
with u as (update public.datasets set name = 'x' returning 1)
select is(count(*)::int, 0, 'read_only: update datasets changes nothing') from u;
with d as (delete from public.datasets returning 1)
select is(count(*)::int, 0, 'read_only: delete datasets removes nothing') from d;
select throws_ok(
  format('insert into public.campaigns (dataset_id) values (%L)', :'ds_a2'),
  '42501', null, 'read_only: insert campaigns refused'
);
with u as (update public.campaigns set m1_template = 'x' returning 1)
select is(count(*)::int, 0, 'read_only: update campaigns changes nothing') from u;
select throws_ok(
  format('insert into public.leads (dataset_id, phone_number) values (%L, %L)', :'ds_a1', '+447700900001'),
  '42501', null, 'read_only: insert leads refused'
);
with u as (update public.leads set notes = 'x' returning 1)
select is(count(*)::int, 0, 'read_only: update leads changes nothing') from u;
with d as (delete from public.leads returning 1)
select is(count(*)::int, 0, 'read_only: delete leads removes nothing') from d;
with u as (update public.conversations set status = 'closed' returning 1)
select is(count(*)::int, 0, 'read_only: update conversations changes nothing') from u;
select throws_ok('delete from public.messages', '42501', null, 'read_only: delete messages refused');

-- sales_rep: works leads and threads, no datasets, no settings, no deletes ------------------
select tests.clear_authentication();
select tests.authenticate_as(:'a_rep');

select is((select count(*)::int from public.client_members), 1, 'sales_rep: select client_members sees only itself');
with u as (update public.clients set name = 'x' returning 1)
select is(count(*)::int, 0, 'sales_rep: update clients changes nothing') from u;
select throws_ok($$insert into public.datasets (name) values ('rep')$$, '42501', null, 'sales_rep: insert datasets refused');
with u as (update public.datasets set name = 'x' returning 1)
select is(count(*)::int, 0, 'sales_rep: update datasets changes nothing') from u;
with d as (delete from public.datasets returning 1)
select is(count(*)::int, 0, 'sales_rep: delete datasets removes nothing') from d;
select throws_ok(
  format('insert into public.campaigns (dataset_id) values (%L)', :'ds_a2'),
  '42501', null, 'sales_rep: insert campaigns refused'
);
with u as (update public.campaigns set m1_template = 'x' returning 1)
select is(count(*)::int, 0, 'sales_rep: update campaigns changes nothing') from u;
select lives_ok(
  format('insert into public.leads (dataset_id, phone_number, first_name) values (%L, %L, %L)',
    :'ds_a1', '+447700900002', 'Rep lead'),
  'sales_rep: insert leads works'
);
with u as (update public.leads set notes = 'called' where id = :'lead_a1' returning 1)
select is(count(*)::int, 1, 'sales_rep: update leads works') from u;
with d as (delete from public.leads returning 1)
select is(count(*)::int, 0, 'sales_rep: delete leads removes nothing') from d;
with u as (update public.conversations set status = 'needs_human' where id = :'conv_a1' returning 1)
select is(count(*)::int, 1, 'sales_rep: update conversations works') from u;
select throws_ok(
  format($$insert into public.messages (client_id, lead_id, conversation_id, direction, message_category, status, content)
           values (%L, %L, %L, 'outbound', 'human_manual', 'pending', 'hi')$$,
    :'client_a', :'lead_a1', :'conv_a1'),
  '42501', null, 'sales_rep: insert messages refused (sending goes through the send path)'
);

-- manager: datasets and campaign settings, but no deletes ----------------------------------
select tests.clear_authentication();
select tests.authenticate_as(:'a_manager');

with u as (update public.clients set name = 'x' returning 1)
select is(count(*)::int, 0, 'manager: update clients changes nothing') from u;
select throws_ok(
  format('insert into public.client_members (client_id, user_id, email) values (%L, %L, %L)',
    :'client_a', :'loner', 'loner@example.test'),
  '42501', null, 'manager without can_manage_users: insert client_members refused'
);
select lives_ok($$insert into public.datasets (name) values ('Manager list')$$, 'manager: insert datasets works');
select is(
  (select client_id from public.datasets where name = 'Manager list'), :'client_a'::uuid,
  'manager: a new dataset lands in the manager''s own client'
);
with u as (update public.datasets set description = 'spring' where id = :'ds_a1' returning 1)
select is(count(*)::int, 1, 'manager: update datasets works') from u;
with d as (delete from public.datasets returning 1)
select is(count(*)::int, 0, 'manager: delete datasets removes nothing (admins only)') from d;
select lives_ok(
  format('insert into public.campaigns (dataset_id, m1_template) values (%L, %L)', :'ds_a2', 'Hi'),
  'manager: insert campaigns works'
);
with u as (update public.campaigns set m2_template = 'Still there?' where dataset_id = :'ds_a1' returning 1)
select is(count(*)::int, 1, 'manager: update campaigns works') from u;
select throws_ok(
  format('delete from public.campaigns where dataset_id = %L', :'ds_a1'),
  '42501', null, 'manager: delete campaigns refused'
);
select lives_ok(
  format('insert into public.leads (dataset_id, phone_number) values (%L, %L)', :'ds_a2', '+447700900003'),
  'manager: insert leads works'
);
with u as (update public.leads set archived = true where id = :'lead_a2' returning 1)
select is(count(*)::int, 1, 'manager: update leads works') from u;
with d as (delete from public.leads returning 1)
select is(count(*)::int, 0, 'manager: delete leads removes nothing (admins only)') from d;
select throws_ok(
  format('delete from public.conversations where id = %L', :'conv_a1'),
  '42501', null, 'manager: delete conversations refused'
);

-- admin: everything its client allows -----------------------------------------------------
select tests.clear_authentication();
select tests.authenticate_as(:'a_admin');

select is((select count(*)::int from public.client_members), 9, 'admin: select client_members sees every member');
with u as (update public.clients set name = 'Client A Ltd' returning 1)
select is(count(*)::int, 1, 'admin: update clients works (own client only)') from u;
select throws_ok('delete from public.clients', '42501', null, 'admin: delete clients refused');
select lives_ok(
  format('insert into public.client_members (client_id, user_id, email, role) values (%L, %L, %L, %L)',
    :'client_a', :'loner', 'loner@example.test', 'sales_rep'),
  'admin: insert client_members (invite) works'
);
with u as (update public.client_members set status = 'suspended' where user_id = :'a_rep' returning 1)
select is(count(*)::int, 1, 'admin: update client_members (suspend) works') from u;
select throws_ok(
  format('delete from public.client_members where user_id = %L', :'a_rep'),
  '42501', null, 'admin: delete client_members refused (suspend instead)'
);
select lives_ok($$insert into public.datasets (name) values ('Admin list')$$, 'admin: insert datasets works');
with u as (update public.datasets set name = 'A first' where id = :'ds_a1' returning 1)
select is(count(*)::int, 1, 'admin: update datasets works') from u;
with u as (update public.campaigns set hours_start = 10 where dataset_id = :'ds_a1' returning 1)
select is(count(*)::int, 1, 'admin: update campaigns works') from u;
with u as (update public.conversations set ai_mode = 'suggest' where id = :'conv_a2' returning 1)
select is(count(*)::int, 1, 'admin: update conversations works') from u;
select throws_ok(
  format('update public.messages set content = %L where id = %L', 'edited', :'msg_a1'),
  '42501', null, 'admin: update messages refused'
);
select throws_ok(
  format('delete from public.messages where id = %L', :'msg_a1'),
  '42501', null, 'admin: delete messages refused'
);
with d as (delete from public.leads where id = :'lead_a1' returning 1)
select is(count(*)::int, 1, 'admin: delete leads works') from d;
with d as (delete from public.datasets where id = :'ds_a2' returning 1)
select is(count(*)::int, 1, 'admin: delete datasets works') from d;

select tests.clear_authentication();
select is(
  (select count(*)::int from public.leads where dataset_id = :'ds_a2'), 0,
  'deleting a dataset removed its leads'
);
select is(
  (select count(*)::int from public.messages where id in (:'msg_a1', :'msg_a2')), 0,
  'deleting leads and datasets removed their messages'
);
select is(
  (select count(*)::int from public.datasets where client_id = :'client_b'), 1,
  'B''s dataset was never touched by A''s admin'
);

select * from finish();
rollback;
