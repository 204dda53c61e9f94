-- Suspended and invited members (and users with no membership) see and write nothing;
-- a member restricted to some datasets sees and changes only those.
begin;
select plan(35);

select * from tests.create_world() \gset
-- ds_a2 gets campaign settings too, and ds_a3 none, for the restricted manager below.
select tests.create_campaign(:'ds_a2', 'A two template') \gset
select tests.create_dataset(:'client_a', 'A three') as ds_a3 \gset

-- suspended and invited (both admins: the strongest role, shut out by status alone) --------
select tests.authenticate_as(:'a_suspended');
select is_empty('select * from tests.tables_with_visible_rows()', 'suspended: 0 rows in every table of public');
select throws_ok($$insert into public.datasets (name) values ('s')$$, '42501', null, 'suspended: insert datasets refused');
select throws_ok(
  format('insert into public.leads (dataset_id, phone_number) values (%L, %L)', :'ds_a1', '+447700900010'),
  '42501', null, 'suspended: insert leads refused'
);
select throws_ok(
  format('insert into public.client_members (client_id, user_id, email) values (%L, %L, %L)',
    :'client_a', :'loner', 'loner@example.test'),
  '42501', null, 'suspended: insert client_members refused'
);
with u as (update public.client_members set status = 'active' returning 1)
select is(count(*)::int, 0, 'suspended: cannot reactivate itself') from u;
with u as (update public.clients set name = 'x' returning 1)
select is(count(*)::int, 0, 'suspended: update clients changes nothing') from u;
with u as (update public.leads set notes = 'x' returning 1)
select is(count(*)::int, 0, 'suspended: update leads changes nothing') from u;
with u as (update public.datasets set name = 'x' returning 1)
select is(count(*)::int, 0, 'suspended: update datasets changes nothing') from u;
with u as (update public.campaigns set m1_template = 'x' returning 1)
select is(count(*)::int, 0, 'suspended: update campaigns changes nothing') from u;
with u as (update public.conversations set status = 'closed' returning 1)
select is(count(*)::int, 0, 'suspended: update conversations changes nothing') from u;
with d as (delete from public.leads returning 1)
select is(count(*)::int, 0, 'suspended: delete leads removes nothing') from d;
with d as (delete from public.datasets returning 1)
select is(count(*)::int, 0, 'suspended: delete datasets removes nothing') from d;

select tests.clear_authentication();
select tests.authenticate_as(:'a_invited');
select is_empty('select * from tests.tables_with_visible_rows()', 'invited: 0 rows in every table of public');
select throws_ok($$insert into public.datasets (name) values ('i')$$, '42501', null, 'invited: insert datasets refused');
with u as (update public.client_members set status = 'active' returning 1)
select is(count(*)::int, 0, 'invited: cannot activate itself') from u;
with u as (update public.leads set notes = 'x' returning 1)
select is(count(*)::int, 0, 'invited: update leads changes nothing') from u;
with d as (delete from public.datasets returning 1)
select is(count(*)::int, 0, 'invited: delete datasets removes nothing') from d;

select tests.clear_authentication();
select tests.authenticate_as(:'loner');
select is_empty('select * from tests.tables_with_visible_rows()', 'a signed-in user with no membership sees 0 rows everywhere');

-- restricted sales rep: allowed_dataset_ids = {ds_a1}, can_view_all_leads = false ----------
select tests.clear_authentication();
select tests.authenticate_as(:'a_restricted');

select results_eq('select id from public.datasets', format('values (%L::uuid)', :'ds_a1'), 'restricted: sees only its dataset');
select results_eq('select dataset_id from public.campaigns', format('values (%L::uuid)', :'ds_a1'), 'restricted: sees only its dataset''s campaign settings');
select results_eq('select id from public.leads', format('values (%L::uuid)', :'lead_a1'), 'restricted: sees only its dataset''s leads');
select results_eq('select id from public.conversations', format('values (%L::uuid)', :'conv_a1'), 'restricted: sees only its dataset''s threads');
select results_eq(
  'select id from public.messages', format('values (%L::uuid)', :'msg_a1'),
  'restricted: sees only its dataset''s messages (not other datasets'', not unknown senders'')'
);
with u as (update public.leads set notes = 'x' where id = :'lead_a2' returning 1)
select is(count(*)::int, 0, 'restricted: update a lead of another dataset changes nothing') from u;
update public.leads set notes = 'restricted was here';
update public.conversations set status = 'needs_human';
select throws_ok(
  format('insert into public.leads (dataset_id, phone_number) values (%L, %L)', :'ds_a2', '+447700900011'),
  '42501', null, 'restricted: insert a lead into another dataset refused'
);
select lives_ok(
  format('insert into public.leads (dataset_id, phone_number) values (%L, %L)', :'ds_a1', '+447700900012'),
  'restricted: insert a lead into its own dataset works'
);

-- restricted manager: allowed_dataset_ids = {ds_a1} ----------------------------------------
select tests.clear_authentication();
select tests.authenticate_as(:'a_restricted_mgr');

select results_eq('select id from public.datasets', format('values (%L::uuid)', :'ds_a1'), 'restricted manager: sees only its dataset');
with u as (update public.datasets set name = 'x' where id = :'ds_a2' returning 1)
select is(count(*)::int, 0, 'restricted manager: update another dataset changes nothing') from u;
with u as (update public.campaigns set m1_template = 'x' where dataset_id = :'ds_a2' returning 1)
select is(count(*)::int, 0, 'restricted manager: update another dataset''s campaign settings changes nothing') from u;
-- No WHERE and no RETURNING: only the UPDATE policies' USING clauses stand guard here.
update public.datasets set description = 'restricted manager was here';
update public.campaigns set m1_template = 'restricted manager was here';
select throws_ok(
  format('insert into public.campaigns (dataset_id) values (%L)', :'ds_a3'),
  '42501', null, 'restricted manager: creating settings for a dataset it cannot see is refused'
);

-- Afterwards, as postgres ----------------------------------------------------------------
select tests.clear_authentication();
select results_eq(
  format($$select id, notes from public.leads where id in (%L, %L) order by first_name desc$$, :'lead_a1', :'lead_a2'),
  format($$values (%L::uuid, 'restricted was here'), (%L::uuid, null)$$, :'lead_a1', :'lead_a2'),
  'an unfiltered update by the restricted rep changed its dataset''s lead only'
);
select results_eq(
  format($$select status::text from public.conversations where id in (%L, %L) order by id = %L desc$$, :'conv_a1', :'conv_a2', :'conv_a1'),
  $$values ('needs_human'), ('active')$$,
  'an unfiltered update by the restricted rep changed its dataset''s thread only'
);
select results_eq(
  format($$select description from public.datasets where id in (%L, %L) order by id = %L desc$$, :'ds_a1', :'ds_a2', :'ds_a1'),
  $$values ('restricted manager was here'), (null)$$,
  'an unfiltered update by the restricted manager changed its own dataset only'
);
select results_eq(
  format($$select m1_template from public.campaigns where dataset_id in (%L, %L) order by dataset_id = %L desc$$, :'ds_a1', :'ds_a2', :'ds_a1'),
  $$values ('restricted manager was here'), ('A two template')$$,
  'an unfiltered update by the restricted manager changed its own dataset''s campaign settings only'
);
select is(
  (select count(*)::int from public.campaigns where dataset_id = :'ds_a3'), 0,
  'no campaign settings were created for the dataset the restricted manager cannot see'
);

select * from finish();
rollback;
