-- sophie_insights: members read their client's insights of datasets they may see; only
-- trusted roles write; the table is on the realtime publication.
begin;
set local search_path = public, extensions;
set local client_min_messages = warning;
select plan(14);

select tests.create_client('Acme') as acme \gset
select tests.create_client('Other') as other \gset
select tests.create_user('admin@acme.test', :'acme', 'admin') as admin \gset
select tests.create_user('ro@acme.test', :'acme', 'read_only') as ro \gset
select tests.create_user('other@other.test', :'other', 'admin') as other_admin \gset
insert into datasets (client_id, name) values (:'acme', 'One') returning id as d1 \gset
insert into datasets (client_id, name) values (:'acme', 'Two') returning id as d2 \gset
insert into datasets (client_id, name) values (:'other', 'Theirs') returning id as d3 \gset
select tests.create_user('restricted@acme.test', :'acme', 'sales_rep', 'active', false, array[:'d1'::uuid])
  as restricted \gset
insert into leads (client_id, dataset_id, phone_number) values (:'acme', :'d1', '+447700900001')
returning id as lead1 \gset

insert into sophie_insights (client_id, dataset_id, lead_id, severity, category, title) values
  (:'acme', :'d1', :'lead1', 'warning', 'tone', 'in one'),
  (:'acme', :'d2', null, 'info', 'strategy', 'in two'),
  (:'acme', null, null, 'suggestion', 'timing', 'client-wide'),
  (:'other', :'d3', null, 'critical', 'compliance', 'theirs');

select ok(
  (select relrowsecurity from pg_class where oid = 'public.sophie_insights'::regclass), 'RLS is on'
);
select ok(
  exists (select from pg_publication_tables where pubname = 'supabase_realtime' and tablename = 'sophie_insights'),
  'insights are on the realtime publication'
);
select ok(
  exists (select from pg_indexes where tablename = 'sophie_insights' and indexdef like '%(lead_id)%'),
  'insights are indexed by lead'
);

select tests.authenticate_as(:'ro');
select is(
  (select array_agg(title order by title) from sophie_insights), array['client-wide', 'in one', 'in two'],
  'a member reads every insight of their client'
);
select throws_ok(
  format($$ insert into sophie_insights (client_id, severity, category, title) values (%L, 'info', 'tone', 'x') $$, :'acme'),
  '42501', null, 'members cannot create insights'
);
select tests.clear_authentication(), tests.authenticate_as(:'admin');
select throws_ok($$ update sophie_insights set status = 'dismissed' $$, '42501', null,
  'even admins cannot write insights directly yet');
select throws_ok($$ delete from sophie_insights $$, '42501', null, 'nor delete them');

select tests.clear_authentication(), tests.authenticate_as(:'restricted');
select is(
  (select array_agg(title order by title) from sophie_insights), array['client-wide', 'in one'],
  'a restricted member reads only allowed datasets'' insights and client-wide ones'
);

select tests.clear_authentication(), tests.authenticate_as(:'other_admin');
select is((select array_agg(title) from sophie_insights), array['theirs'], 'another client sees only its own');

select tests.clear_authentication(), tests.authenticate_as_service_role();
select lives_ok(
  format($$ insert into sophie_insights (client_id, dataset_id, severity, category, title) values (%L, %L, 'urgent', 'booking', 'svc') $$,
    :'acme', :'d1'),
  'the service role writes insights'
);
select tests.clear_authentication();

select throws_ok(
  format($$ insert into sophie_insights (client_id, severity, category, title) values (%L, 'info', 'gossip', 'x') $$, :'acme'),
  '23514', null, 'the category is checked'
);
select throws_ok(
  format($$ insert into sophie_insights (client_id, dataset_id, severity, category, title) values (%L, %L, 'info', 'tone', 'x') $$,
    :'acme', :'d3'),
  '23503', null, 'an insight cannot point into another client''s dataset'
);
delete from leads where id = :'lead1';
select is((select count(*)::integer from sophie_insights where title = 'in one'), 0,
  'a lead''s insights go with the lead');
delete from datasets where id = :'d2';
select is((select count(*)::integer from sophie_insights where title = 'in two'), 0,
  'a dataset''s insights go with the dataset');

select * from finish();
rollback;
