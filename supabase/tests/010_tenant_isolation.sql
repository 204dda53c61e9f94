-- Tenant isolation: an admin of client B (the strongest tenant role) reads and writes
-- nothing of client A, whatever the table and the operation.
begin;
select plan(38);

select * from tests.create_world() \gset

-- select ----------------------------------------------------------------------------------
select tests.authenticate_as(:'b_admin');

select set_has(
  'select * from tests.tables_with_visible_rows()',
  $$values ('clients'), ('client_members'), ('datasets'), ('campaigns'), ('leads'),
           ('conversations'), ('messages')$$,
  'B''s admin sees B''s own rows in every foundation table (positive control)'
);
select is_empty(
  format('select * from tests.tables_with_visible_rows(%L)', :'client_a'),
  'B''s admin sees no row of client A in any table of schema public'
);
select is((select count(*)::int from public.clients where id = :'client_a'), 0, 'select clients: A is invisible to B');
select is((select count(*)::int from public.client_members where client_id = :'client_a'), 0, 'select client_members: A''s members are invisible to B');
select is((select count(*)::int from public.datasets where id in (:'ds_a1', :'ds_a2')), 0, 'select datasets: A''s datasets are invisible to B');
select is((select count(*)::int from public.campaigns where dataset_id = :'ds_a1'), 0, 'select campaigns: A''s campaign settings are invisible to B');
select is((select count(*)::int from public.leads where id in (:'lead_a1', :'lead_a2')), 0, 'select leads: A''s leads are invisible to B');
select is((select count(*)::int from public.conversations where id = :'conv_a1'), 0, 'select conversations: A''s threads are invisible to B');
select is((select count(*)::int from public.messages where id in (:'msg_a1', :'msg_a_orphan')), 0, 'select messages: A''s messages are invisible to B');

-- update (by id: 0 rows) ------------------------------------------------------------------
with u as (update public.clients set name = 'pwned' where id = :'client_a' returning 1)
select is(count(*)::int, 0, 'update clients: B''s admin changes 0 rows of A') from u;
with u as (
  update public.client_members set role = 'read_only' where user_id = :'a_admin' returning 1
)
select is(count(*)::int, 0, 'update client_members: B''s admin changes 0 members of A') from u;
with u as (update public.datasets set name = 'pwned' where id = :'ds_a1' returning 1)
select is(count(*)::int, 0, 'update datasets: B''s admin changes 0 datasets of A') from u;
with u as (update public.campaigns set m1_template = 'pwned' where dataset_id = :'ds_a1' returning 1)
select is(count(*)::int, 0, 'update campaigns: B''s admin changes 0 campaign settings of A') from u;
with u as (update public.leads set notes = 'pwned' where id = :'lead_a1' returning 1)
select is(count(*)::int, 0, 'update leads: B''s admin changes 0 leads of A') from u;
with u as (update public.conversations set status = 'closed' where id = :'conv_a1' returning 1)
select is(count(*)::int, 0, 'update conversations: B''s admin changes 0 threads of A') from u;
select throws_ok(
  format('update public.messages set content = %L where id = %L', 'pwned', :'msg_a1'),
  '42501', null, 'update messages: refused outright (users never write messages)'
);

-- Updates without a WHERE (PostgREST PATCH with no filter): only the USING clauses guard.
update public.clients set name = 'B renamed';
update public.client_members set first_name = 'pwned';
update public.datasets set description = 'pwned';
update public.campaigns set m2_template = 'pwned';
update public.leads set notes = 'pwned';
update public.conversations set ai_mode = 'off';

-- insert with A's ids ---------------------------------------------------------------------
select throws_ok(
  format('insert into public.clients (id, name) values (gen_random_uuid(), %L)', 'Mine'),
  '42501', null, 'insert clients: refused to users'
);
select throws_ok(
  format('insert into public.client_members (client_id, user_id, email, role) values (%L, %L, %L, %L)',
    :'client_a', :'loner', 'loner@example.test', 'admin'),
  '42501', null, 'insert client_members: B''s admin cannot add a member to A'
);
select throws_ok(
  format('insert into public.datasets (client_id, name) values (%L, %L)', :'client_a', 'planted'),
  '42501', null, 'insert datasets: a dataset in A''s name is refused'
);
select throws_ok(
  format('insert into public.campaigns (dataset_id) values (%L)', :'ds_a2'),
  '42501', null, 'insert campaigns: settings for A''s dataset are refused (RLS, before the keys)'
);
select throws_ok(
  format('insert into public.leads (dataset_id, phone_number) values (%L, %L)', :'ds_a1', '+447700900123'),
  '42501', null, 'insert leads: a lead in A''s dataset is refused (RLS, before the keys)'
);
select throws_ok(
  format('insert into public.conversations (client_id, dataset_id, lead_id) values (%L, %L, %L)',
    :'client_a', :'ds_a1', :'lead_a1'),
  '42501', null, 'insert conversations: refused to users'
);
select throws_ok(
  format($$insert into public.messages (client_id, lead_id, conversation_id, direction, message_category, status, content)
           values (%L, %L, %L, 'outbound', 'human_manual', 'pending', 'hi')$$,
    :'client_a', :'lead_a1', :'conv_a1'),
  '42501', null, 'insert messages: refused to users'
);

-- delete ----------------------------------------------------------------------------------
select throws_ok(
  format('delete from public.clients where id = %L', :'client_a'),
  '42501', null, 'delete clients: refused to users'
);
select throws_ok(
  format('delete from public.client_members where user_id = %L', :'a_admin'),
  '42501', null, 'delete client_members: refused to users (suspend instead)'
);
with d as (delete from public.datasets where id = :'ds_a1' returning 1)
select is(count(*)::int, 0, 'delete datasets: B''s admin deletes 0 datasets of A') from d;
select throws_ok(
  format('delete from public.campaigns where dataset_id = %L', :'ds_a1'),
  '42501', null, 'delete campaigns: refused to users (they go with their dataset)'
);
with d as (delete from public.leads where id = :'lead_a1' returning 1)
select is(count(*)::int, 0, 'delete leads: B''s admin deletes 0 leads of A') from d;
select throws_ok(
  format('delete from public.conversations where id = %L', :'conv_a1'),
  '42501', null, 'delete conversations: refused to users'
);
select throws_ok(
  format('delete from public.messages where id = %L', :'msg_a1'),
  '42501', null, 'delete messages: refused to users'
);
-- Unfiltered deletes reach B's own rows only.
delete from public.leads;
delete from public.datasets;

-- What A's data looks like afterwards (read as postgres) ----------------------------------
select tests.clear_authentication();

select is((select name from public.clients where id = :'client_a'), 'Client A', 'A''s client row is untouched');
select is(
  (select count(*)::int from public.client_members where client_id = :'client_a' and first_name = 'pwned'),
  0, 'A''s members are untouched'
);
select is(
  (select role::text from public.client_members where user_id = :'a_admin'), 'admin',
  'A''s admin is still an admin'
);
select results_eq(
  format('select count(*)::int, count(description)::int from public.datasets where client_id = %L', :'client_a'),
  $$values (2, 0)$$,
  'A''s datasets all exist and are untouched'
);
select is(
  (select count(*)::int from public.campaigns where client_id = :'client_a' and m2_template = 'pwned'),
  0, 'A''s campaign settings are untouched'
);
select results_eq(
  format('select count(*)::int, count(notes)::int from public.leads where client_id = %L', :'client_a'),
  $$values (2, 0)$$,
  'A''s leads all exist and are untouched'
);
select is(
  (select count(*)::int from public.conversations where client_id = :'client_a' and ai_mode is not null),
  0, 'A''s conversations are untouched'
);
select is(
  (select count(*)::int from public.leads where client_id = :'client_b'), 0,
  'positive control: B''s unfiltered delete did remove B''s own leads'
);

select * from finish();
rollback;
