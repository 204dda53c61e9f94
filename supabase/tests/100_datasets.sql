-- Datasets: campaign status machine and dates on every write path, the RPCs in the API contract's shapes,
-- roles and tenancy.
begin;
set local search_path = public, extensions;
select plan(45);

select tests.create_client('Acme') as acme \gset
select tests.create_client('Other') as other \gset
select tests.create_user('admin@acme.test', :'acme', 'admin') as admin \gset
select tests.create_user('manager@acme.test', :'acme', 'manager') as manager \gset
select tests.create_user('rep@acme.test', :'acme', 'sales_rep') as rep \gset
select tests.create_user('ro@acme.test', :'acme', 'read_only') as ro \gset
select tests.create_user('suspended@acme.test', :'acme', 'admin', 'suspended') as suspended \gset
select tests.create_user('other@other.test', :'other', 'admin') as other_admin \gset

-- create ------------------------------------------------------------------------------------
select tests.clear_authentication(), tests.authenticate_as(:'manager');
select public.create_dataset('  Spring list ', 'old enquiries', '2026-12-01T09:00:00Z') as created \gset
select is(
  (select array_agg(k order by k) from jsonb_object_keys(:'created'::jsonb -> 'dataset') k),
  array['campaign_status', 'created_at', 'id', 'name'],
  'create_dataset returns the API contract shape'
);
select is(:'created'::jsonb #>> '{dataset,campaign_status}', 'draft', 'a new dataset is a draft');
select is(:'created'::jsonb #>> '{dataset,name}', 'Spring list', 'the name is trimmed');
select :'created'::jsonb #>> '{dataset,id}' as ds \gset
select tests.clear_authentication();
select is(
  (select client_id from datasets where id = :'ds'), :'acme'::uuid, 'the client comes from the caller'
);
select is((select created_by from datasets where id = :'ds'), :'manager'::uuid, 'created_by is the caller');

select tests.clear_authentication(), tests.authenticate_as(:'rep');
select tests.throws_status($$ select public.create_dataset('x') $$, 403, 'only admins and managers can create datasets',
  'a sales rep cannot create a dataset');
select tests.clear_authentication(), tests.authenticate_as(:'suspended');
select tests.throws_status($$ select public.create_dataset('x') $$, 403, null, 'a suspended member cannot create');
select tests.clear_authentication(), tests.authenticate_as(:'admin');
select tests.throws_status($$ select public.create_dataset('   ') $$, 400, 'name is required', 'a blank name is refused');
select tests.throws_status($$ select public.create_dataset(repeat('x', 201)) $$, 400, null, 'an over-long name is refused');
select throws_ok(
  $$ insert into datasets (name, campaign_status) values ('x', 'active') $$, '42501', null,
  'PostgREST cannot insert a dataset with a chosen status (column grant)'
);
select throws_ok(
  $$ insert into datasets (name, client_id) values ('x', '$$ || :'other' || $$') $$, '42501', null,
  'nor into another client'
);

-- get / list -------------------------------------------------------------------------------
select public.create_dataset('Alpha') #>> '{dataset,id}' as alpha \gset
select tests.clear_authentication();
update datasets set created_at = now() - interval '1 day' where id = :'alpha';
insert into leads (client_id, dataset_id, phone_number)
select :'acme', :'alpha', '+44770090' || lpad(i::text, 4, '0') from generate_series(1, 3) i;
insert into datasets (client_id, name, campaign_status) values (:'other', 'Theirs', 'draft') returning id as theirs \gset

select tests.clear_authentication(), tests.authenticate_as(:'rep');
select is(
  (select array_agg(k order by k) from jsonb_object_keys(public.get_dataset(:'ds') -> 'dataset') k),
  array['active_leads', 'campaign_end_date', 'campaign_start_date', 'campaign_status', 'converted_leads',
    'created_at', 'description', 'hot_leads', 'id', 'name', 'source', 'total_leads', 'updated_at',
    'uploaded_file_url'],
  'get_dataset returns the API contract detail shape'
);
select tests.throws_status(format('select public.get_dataset(%L)', :'theirs'), 404, null,
  'another client''s dataset is not found');
select tests.throws_status(format('select public.get_dataset(%L)', gen_random_uuid()), 404, null,
  'an unknown dataset is not found');
select is(
  (select array_agg(k order by k) from jsonb_object_keys(public.list_datasets() #> '{datasets,0}') k),
  array['campaign_status', 'converted_leads', 'created_at', 'description', 'hot_leads', 'id', 'name',
    'total_leads', 'updated_at'],
  'list_datasets returns the API contract list shape'
);
select is(
  (select array_agg(x ->> 'name') from jsonb_array_elements(public.list_datasets() -> 'datasets') x),
  array['Spring list', 'Alpha'], 'newest first by default, only the caller''s client'
);
select is(
  (select array_agg(x ->> 'name') from jsonb_array_elements(public.list_datasets(null, 'name', 'asc') -> 'datasets') x),
  array['Alpha', 'Spring list'], 'sorted by name ascending'
);
select is(
  (select array_agg(x ->> 'name') from jsonb_array_elements(public.list_datasets(null, 'leads_count', 'desc') -> 'datasets') x),
  array['Alpha', 'Spring list'], 'sorted by leads count descending'
);
select is(
  jsonb_array_length(public.list_datasets('active') -> 'datasets'), 0, 'status filter: no active dataset'
);
select tests.throws_status($$ select public.list_datasets(null, 'size') $$, 400, null, 'unknown sort is refused');
select tests.throws_status($$ select public.list_datasets(null, 'name', 'sideways') $$, 400, null, 'unknown order is refused');

-- a member restricted to one dataset sees only it
select tests.clear_authentication();
select tests.create_user('restricted@acme.test', :'acme', 'manager', 'active', false, array[:'alpha'::uuid]) as restricted \gset
select tests.clear_authentication(), tests.authenticate_as(:'restricted');
select is(
  (select array_agg(x ->> 'name') from jsonb_array_elements(public.list_datasets() -> 'datasets') x),
  array['Alpha'], 'a restricted member lists only the allowed dataset'
);
select tests.throws_status(format('select public.get_dataset(%L)', :'ds'), 404, null, 'and cannot get the others');
select tests.throws_status($$ select public.create_dataset('x') $$, 403, null,
  'a restricted manager cannot create datasets (they could not see them)');

-- update and the campaign state machine ---------------------------------------------------
select tests.clear_authentication(), tests.authenticate_as(:'manager');
select is(
  public.update_dataset(:'ds', '{"name": "Renamed", "description": null}') #>> '{dataset,name}', 'Renamed',
  'update_dataset patches the name'
);
select is((select description from datasets where id = :'ds'), null, 'and clears the description');
select tests.throws_status(format($$ select public.update_dataset(%L, '{"total_leads": 5}') $$, :'ds'), 400,
  'unknown or read-only field(s): total_leads', 'stats are not writable through update_dataset');
select tests.throws_status(format($$ select public.update_dataset(%L, '{"campaign_status": "running"}') $$, :'ds'), 400,
  null, 'an unknown status is refused');
select tests.throws_status(format($$ select public.update_dataset(%L, '{"campaign_status": "completed"}') $$, :'ds'), 400,
  'a campaign cannot go from draft to completed', 'draft cannot jump to completed');
select lives_ok(format($$ select public.update_dataset(%L, '{"campaign_status": "draft"}') $$, :'ds'),
  'same status is a no-op');
select lives_ok(format($$ select public.update_dataset(%L, '{"campaign_status": "active"}') $$, :'ds'),
  'draft -> active');
select tests.throws_status(format($$ update datasets set campaign_status = 'draft' where id = %L $$, :'ds'), 400,
  'a campaign cannot go from active to draft', 'the rule holds for a direct PATCH too');
select lives_ok(format($$ update datasets set campaign_status = 'paused' where id = %L $$, :'ds'),
  'active -> paused through PATCH');
select lives_ok(format($$ select public.update_dataset(%L, '{"campaign_status": "active"}') $$, :'ds'),
  'paused -> active');
select lives_ok(format($$ select public.update_dataset(%L, '{"campaign_status": "completed"}') $$, :'ds'),
  'active -> completed');
select tests.throws_status(format($$ select public.update_dataset(%L, '{"campaign_status": "active"}') $$, :'ds'), 400,
  'a campaign cannot go from completed to active', 'completed is final');
select tests.clear_authentication(), tests.authenticate_as_service_role();
select tests.throws_status(format($$ update datasets set campaign_status = 'paused' where id = %L $$, :'ds'), 400, null,
  'completed is final for the service role too');

select tests.clear_authentication(), tests.authenticate_as(:'manager');
select tests.throws_status(
  format($$ select public.update_dataset(%L, '{"campaign_start_date": "2026-12-10", "campaign_end_date": "2026-12-01"}') $$, :'alpha'),
  400, null, 'the end date cannot be before the start date'
);
select tests.throws_status(format($$ select public.update_dataset(%L, '{"campaign_end_date": "next tuesday"}') $$, :'alpha'),
  400, null, 'a malformed date is a 22023 naming the field');
select tests.throws_status(format($$ select public.update_dataset(%L, '{"name": "x"}') $$, :'theirs'), 404, null,
  'another client''s dataset cannot be updated');

select tests.clear_authentication(), tests.authenticate_as(:'rep');
select tests.throws_status(format($$ select public.update_dataset(%L, '{"name": "x"}') $$, :'alpha'), 403, null,
  'a sales rep cannot update a dataset');

-- delete ----------------------------------------------------------------------------------
select tests.clear_authentication(), tests.authenticate_as(:'manager');
select tests.throws_status(format('select public.delete_dataset(%L)', :'alpha'), 403, 'only admins can delete datasets',
  'a manager cannot delete');
select tests.clear_authentication(), tests.authenticate_as(:'admin');
select tests.throws_status(format('select public.delete_dataset(%L)', :'theirs'), 404, null,
  'an admin cannot delete another client''s dataset');
select is(public.delete_dataset(:'alpha') ->> 'success', 'true', 'an admin deletes a dataset');
select tests.clear_authentication();
select is((select count(*)::integer from leads where dataset_id = :'alpha'), 0, 'its leads went with it');

select * from finish();
rollback;
