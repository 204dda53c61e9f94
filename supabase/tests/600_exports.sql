-- Exports: the rows of each export type follow RLS (restricted member, other client), cells
-- that a spreadsheet would run are neutralised, time ranges are the client's local days
-- across a DST change, request_export's refusals, who reads the exports record, the
-- worker's begin/finish/fail, and the purge (due files only, one job per quarter hour).
begin;
set local search_path = public, extensions;
set local client_min_messages = warning;
select plan(41);

select tests.create_client('Acme') as acme \gset
select tests.create_client('Other') as other \gset
update clients set timezone = 'America/New_York' where id = :'acme';
select tests.create_user('admin@acme.test', :'acme', 'admin') as admin \gset
select tests.create_user('manager@acme.test', :'acme', 'manager') as manager \gset
select tests.create_user('reader@acme.test', :'acme', 'read_only') as reader \gset
select tests.create_user('other@other.test', :'other', 'admin') as other_admin \gset
select tests.create_user('loner@nowhere.test', null) as loner \gset
insert into datasets (client_id, name) values (:'acme', 'One') returning id as d1 \gset
insert into datasets (client_id, name) values (:'acme', 'Two') returning id as d2 \gset
insert into datasets (client_id, name) values (:'other', 'Theirs') returning id as d3 \gset
select tests.create_user('restricted@acme.test', :'acme', 'sales_rep', 'active', false, array[:'d1'::uuid])
  as restricted \gset
insert into leads (client_id, dataset_id, phone_number, first_name, notes)
values (:'acme', :'d1', '+447700936001', 'Ann', '=HYPERLINK("http://evil.test")') returning id as ann \gset
insert into leads (client_id, dataset_id, phone_number, first_name)
values (:'acme', :'d2', '+447700936002', 'Bob') returning id as bob \gset
insert into leads (client_id, dataset_id, phone_number, first_name)
values (:'other', :'d3', '+447700936003', 'Cy') returning id as cy \gset
insert into lessons (client_id, scope, title) values (:'acme', 'client_specific', 'Ours'),
  (:'other', 'client_specific', 'Theirs'), (null, 'universal', 'Everyone''s');

-- Cells ---------------------------------------------------------------------------------
select is(private.export_text('=1+1'), '''=1+1', '= is neutralised');
select is(private.export_text('+SUM(A1)'), '''+SUM(A1)', '+ is neutralised');
select is(private.export_text('-2+3'), '''-2+3', '- is neutralised');
select is(private.export_text('@cmd'), '''@cmd', '@ is neutralised');
select is(private.export_text(e'\t=x'), e'''\t=x', 'a leading tab is neutralised');
select is(private.export_text(e'\r=x'), e'''\r=x', 'a leading carriage return is neutralised');
select is(private.export_text('   =x'), '''   =x', 'leading spaces do not hide a formula');
select is(private.export_text('+447911123456'), '+447911123456', 'a phone number is left alone');
select is(private.export_text('-12.5'), '-12.5', 'a plain number is left alone');
select is(private.export_text('a = b'), 'a = b', 'an = inside the text is harmless');
select is(private.export_text(null), null, 'null stays null');

-- Every free-text column of every export type follows that rule.
insert into datasets (client_id, name) values (:'acme', '=ds') returning id as dx \gset
insert into leads (client_id, dataset_id, phone_number, first_name, last_name, email, postcode,
  latest_lead_reply, notes)
values (:'acme', :'dx', '+447700936009', '=f', '+l', '=e@x.test', '-p', '@r', e'\t=n') returning id as lx \gset
insert into conversations (client_id, dataset_id, lead_id) values (:'acme', :'dx', :'lx') returning id as cx \gset
insert into messages (client_id, dataset_id, conversation_id, lead_id, direction, message_category,
  status, content, error_message)
values (:'acme', :'dx', :'cx', :'lx', 'outbound', 'human_manual', 'failed', '=c', '=m');
insert into lessons (client_id, scope, title, description, trigger, correct_response, incorrect_response,
  reasoning, tags)
values (:'acme', 'client_specific', '=t', '=d', '=g', '=c', '=i', '=r', array['=a', 'b']);
select results_eq(
  $$select dataset, first_name, last_name, email, postcode, latest_lead_reply, notes
    from private.export_leads('$$ || :'dx' || $$', null)$$,
  $$values ('''=ds', '''=f', '''+l', '''=e@x.test', '''-p', '''@r', e'''\t=n')$$,
  'leads: every text column is neutralised'
);
select results_eq(
  $$select dataset, first_name, last_name, content, error_message
    from private.export_conversations('$$ || :'dx' || $$', null)$$,
  $$values ('''=ds', '''=f', '''+l', '''=c', '''=m')$$,
  'conversations: every text column is neutralised'
);
select results_eq(
  $$select title, description, trigger, correct_response, incorrect_response, reasoning, tags
    from private.export_lessons(null) where title like '''%'$$,
  $$values ('''=t', '''=d', '''=g', '''=c', '''=i', '''=r', '''=a, b')$$,
  'lessons: every text column is neutralised'
);
delete from lessons where title = '=t';
delete from datasets where id = :'dx';

-- Time ranges in the client's local days (New York: DST ended 2026-11-01) -------------------
select is(private.export_since('all', 'America/New_York'), null, 'all: no lower bound');
select is(
  private.export_since('today', 'America/New_York'),
  (date_trunc('day', now() at time zone 'America/New_York')) at time zone 'America/New_York',
  'today: since local midnight'
);
select is(
  (private.export_since('month', 'America/New_York') at time zone 'America/New_York')::time,
  '00:00'::time, 'month starts at a local midnight whatever the DST offset'
);
select is(
  (now() at time zone 'America/New_York')::date - (private.export_since('week', 'America/New_York')
    at time zone 'America/New_York')::date,
  6, 'week: today and the six local days before it'
);

-- Rows follow RLS ------------------------------------------------------------------------
select tests.clear_authentication();
select tests.authenticate_as(:'admin');
select results_eq($$select first_name from private.export_leads(null, null) order by 1$$,
  $$values ('Ann'), ('Bob')$$, 'the admin exports its client''s leads only');
select is((select notes from private.export_leads(null, null) where first_name = 'Ann'),
  '''=HYPERLINK("http://evil.test")', 'exported notes are neutralised');
select results_eq($$select first_name from private.export_leads('$$ || :'d2' || $$', null)$$,
  $$values ('Bob')$$, 'one dataset');
select is((select count(*) from private.export_leads(null, now() + interval '1 minute'))::integer, 0,
  'nothing created since the future');
select results_eq($$select title from private.export_lessons(null) order by 1$$,
  $$values ('Everyone''s'), ('Ours')$$, 'lessons: own client''s and universal ones');
select tests.clear_authentication();
select tests.authenticate_as(:'restricted');
select results_eq($$select first_name from private.export_leads(null, null)$$,
  $$values ('Ann')$$, 'a restricted member exports its datasets'' leads only');
select is((select count(*) from private.export_leads(:'d2', null))::integer, 0,
  'and nothing of a dataset it may not see');
select tests.clear_authentication();
select tests.authenticate_as(:'other_admin');
select results_eq($$select first_name from private.export_leads(null, null)$$,
  $$values ('Cy')$$, 'another client exports its own leads only');

-- request_export ------------------------------------------------------------------------
select tests.clear_authentication();
select tests.authenticate_as(:'restricted');
select tests.throws_status($$select private.request_export('leads', '$$ || :'d2' || $$', null, 'csv')$$,
  404, 'dataset not found', 'an invisible dataset is not found');
select tests.throws_status($$select private.request_export('everything', null, null, 'csv')$$,
  400, null, 'an unknown export type is refused');
select tests.throws_status($$select private.request_export('leads', null, 'year', 'csv')$$,
  400, null, 'an unknown time range is refused');
select tests.throws_status($$select private.request_export('leads', null, null, 'pdf')$$,
  400, null, 'an unknown format is refused');
select tests.clear_authentication();
select tests.authenticate_as(:'loner');
select tests.throws_status($$select private.request_export('leads', null, null, 'csv')$$,
  403, null, 'a user without a membership is refused');
select tests.clear_authentication();
select tests.authenticate_as(:'manager');
select private.request_export('leads', :'d1', 'week', 'xlsx') ->> 'id' as e1 \gset
select tests.clear_authentication();
select results_eq(
  $$select requested_by, client_id, status::text, storage_path, dataset_name, time_range
    from exports where id = '$$ || :'e1' || $$'$$,
  $$values ('$$ || :'manager' || $$'::uuid, '$$ || :'acme' || $$'::uuid, 'pending',
    '$$ || :'acme' || '/' || :'e1' || $$.xlsx', 'One', 'week')$$,
  'the export is recorded: who, what, where'
);
select is(
  (select j.payload ->> 'export_id' from private.jobs j join exports e on e.job_id = j.id where e.id = :'e1'),
  :'e1', 'and its exports.build job is enqueued'
);

-- Who reads the record ------------------------------------------------------------------
select tests.clear_authentication();
select tests.authenticate_as(:'reader');
select is((select count(*) from exports)::integer, 0, 'a member does not see another member''s export');
select tests.clear_authentication();
select tests.authenticate_as(:'admin');
select is((select count(*) from exports)::integer, 1, 'an admin sees every export of its client');
select tests.clear_authentication();
select tests.authenticate_as(:'other_admin');
select is((select count(*) from exports)::integer, 0, 'another client''s admin sees none');

-- The worker's side and the purge -------------------------------------------------------
select tests.clear_authentication();
select is(private.begin_export(:'e1') ->> 'timezone', 'America/New_York', 'begin_export: the client''s time zone');
select is(private.finish_export(:'e1', 1, 100) ->> 'status', 'ready', 'finish_export: ready');
select is(private.begin_export(:'e1'), null, 'a second delivery of the job finds nothing to build');
select is(private.enqueue_exports_purge(), null, 'no purge job while nothing expired');
update exports set expires_at = now() - interval '1 second' where id = :'e1';
select ok(private.enqueue_exports_purge() = private.enqueue_exports_purge(),
  'one purge job per quarter hour when a file expired');

select * from finish();
rollback;
