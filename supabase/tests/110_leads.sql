-- Leads RPCs: list filters, sort, pagination and errors; get with conversation and insights;
-- update rules; archive and manual-mode toggles with their timestamps; roles and tenancy.
begin;
set local search_path = public, extensions;
set local client_min_messages = warning;
select plan(56);

select tests.create_client('Acme') as acme \gset
select tests.create_client('Other') as other \gset
select tests.create_user('admin@acme.test', :'acme', 'admin') as admin \gset
select tests.create_user('rep@acme.test', :'acme', 'sales_rep') as rep \gset
select tests.create_user('ro@acme.test', :'acme', 'read_only') as ro \gset
select tests.create_user('gone@acme.test', :'acme', 'sales_rep', 'suspended') as gone \gset
select tests.create_user('other@other.test', :'other', 'admin') as other_admin \gset
insert into datasets (client_id, name) values (:'acme', 'One') returning id as d1 \gset
insert into datasets (client_id, name) values (:'acme', 'Two') returning id as d2 \gset
insert into datasets (client_id, name) values (:'other', 'Theirs') returning id as d3 \gset
select tests.create_user('restricted@acme.test', :'acme', 'sales_rep', 'active', false, array[:'d2'::uuid])
  as restricted \gset

insert into leads (client_id, dataset_id, phone_number, first_name, last_name, email, contact_status,
  lead_sentiment, reply_received_at, created_at)
values
  (:'acme', :'d1', '+447700900001', 'Ann', 'Zeta', 'ann@example.com', 'HOT', 'POSITIVE', now() - interval '1 hour', now() - interval '5 day'),
  (:'acme', :'d1', '+447700900002', 'bob', 'young', null, 'READY', null, null, now() - interval '4 day'),
  (:'acme', :'d1', '+447700900003', 'Cy', 'Xu', 'cy@example.com', 'WARM', 'NEUTRAL', now() - interval '2 hour', now() - interval '3 day'),
  (:'acme', :'d2', '+447700900004', 'Dee', 'Abbot', null, 'READY', null, null, now() - interval '2 day'),
  (:'acme', :'d2', '+447700900005', null, null, null, 'COLD', 'NEGATIVE', now() - interval '3 hour', now() - interval '1 day'),
  (:'other', :'d3', '+447700900006', 'Ann', 'Zeta', 'ann@example.com', 'HOT', 'POSITIVE', null, now());
insert into leads (client_id, dataset_id, phone_number, first_name, created_at)
select :'acme', :'d2', '+4478000' || lpad(i::text, 5, '0'), 'Bulk', now() - interval '10 day' - i * interval '1 minute'
from generate_series(1, 120) i;
select id as ann from leads where client_id = :'acme' and first_name = 'Ann' \gset
select id as theirs from leads where client_id = :'other' \gset

create function pg_temp.names(p_result jsonb) returns text []
language sql as $$
  select coalesce(array_agg(coalesce(x ->> 'first_name', '-') order by o), '{}')
  from jsonb_array_elements(p_result -> 'leads') with ordinality as t (x, o)
$$;

-- list: shape, defaults, pagination --------------------------------------------------------
select tests.authenticate_as(:'rep');
select is(
  (select array_agg(k order by k) from jsonb_object_keys(public.list_leads() #> '{leads,0}') k),
  array['archived', 'call_booked', 'call_booked_time', 'contact_status', 'created_at', 'email', 'first_name',
    'id', 'last_name', 'latest_lead_reply', 'lead_sentiment', 'manual_mode', 'phone_number', 'postcode',
    'reply_received_at'],
  'list_leads returns the API contract lead fields'
);
select is(public.list_leads() -> 'pagination', '{"page": 1, "limit": 50, "total": 125, "pages": 3}'::jsonb,
  'default page 1 of 50, totals of the caller''s client only');
select is(jsonb_array_length(public.list_leads() -> 'leads'), 50, 'a page holds limit leads');
select is(pg_temp.names(public.list_leads("limit" => 5)), array['-', 'Dee', 'Cy', 'bob', 'Ann'],
  'newest first by default');
select is(jsonb_array_length(public.list_leads(page => 3) -> 'leads'), 25, 'the last page holds the rest');
select is(public.list_leads(page => 9) -> 'leads', '[]'::jsonb, 'a page past the end is empty');
select is(public.list_leads("limit" => 100) #>> '{pagination,pages}', '2', 'limit 100 is allowed');
select tests.throws_status($$ select public.list_leads("limit" => 101) $$, 400, 'limit must be between 1 and 100 (got 101)',
  'limit over 100 is refused');
select tests.throws_status($$ select public.list_leads("limit" => 0) $$, 400, null, 'limit 0 is refused');
select tests.throws_status($$ select public.list_leads(page => 0) $$, 400, 'page must be 1 or more (got 0)',
  'page 0 is refused');
select tests.throws_status($$ select public.list_leads(sort => 'phone') $$, 400, null, 'unknown sort is refused');
select tests.throws_status($$ select public.list_leads("order" => 'up') $$, 400, null, 'unknown order is refused');
select tests.throws_status($$ select public.list_leads(search => repeat('a', 201)) $$, 400, null,
  'an over-long search is refused');

-- list: filters and sorts ------------------------------------------------------------------
select is(public.list_leads(dataset_id => :'d1') #>> '{pagination,total}', '3', 'dataset filter');
select is(public.list_leads(dataset_id => :'d3') #>> '{pagination,total}', '0',
  'another client''s dataset lists nothing');
select is(pg_temp.names(public.list_leads(status => 'READY', sort => 'created', "order" => 'asc', "limit" => 3)),
  array['Bulk', 'Bulk', 'Bulk'], 'status filter, oldest first');
select is(public.list_leads(status => 'READY') #>> '{pagination,total}', '122', 'status filter total');
select is(pg_temp.names(public.list_leads(sentiment => 'NEUTRAL')), array['Cy'], 'sentiment filter');
select is(
  pg_temp.names(public.list_leads(dataset_id => :'d1', sort => 'name', "order" => 'asc')),
  array['Cy', 'bob', 'Ann'], 'sort by last name, case-insensitive'
);
select is(
  pg_temp.names(public.list_leads(sort => 'reply_date', "order" => 'desc', "limit" => 4)),
  array['Ann', 'Cy', '-', 'Dee'], 'sort by reply date, newest reply first, then those without a reply, newest first'
);
select is(
  pg_temp.names(public.list_leads(dataset_id => :'d1', sort => 'status', "order" => 'asc')),
  array['bob', 'Ann', 'Cy'], 'sort by status in pipeline order'
);

select tests.clear_authentication(), tests.authenticate_as(:'restricted');
select is(public.list_leads() #>> '{pagination,total}', '122', 'a restricted member counts only allowed datasets');
select is(public.list_leads(dataset_id => :'d1') #>> '{pagination,total}', '0', 'and lists nothing elsewhere');
select tests.throws_status(format('select public.get_lead(%L)', :'ann'), 404, null, 'nor gets a lead elsewhere');

select tests.clear_authentication(), tests.authenticate_as(:'gone');
select tests.throws_status($$ select public.list_leads() $$, 403, null, 'a suspended member cannot list leads');

-- get ----------------------------------------------------------------------------------------
select tests.clear_authentication();
insert into conversations (client_id, dataset_id, lead_id, message_count, last_message_at, sentiment)
values (:'acme', :'d1', :'ann', 3, now(), 'POSITIVE') returning id as conv \gset
insert into sophie_insights (client_id, dataset_id, lead_id, severity, category, title, created_at)
values (:'acme', :'d1', :'ann', 'warning', 'tone', 'Too pushy', now() - interval '1 hour'),
  (:'acme', :'d1', :'ann', 'critical', 'compliance', 'Missing opt-out line', now());
select tests.authenticate_as(:'ro');
select public.get_lead(:'ann') as got \gset
select ok(
  (select array_agg(column_name::text) from information_schema.columns
   where table_schema = 'public' and table_name = 'leads' and column_name <> 'search_text')
  <@ array(select jsonb_object_keys(:'got'::jsonb -> 'lead')),
  'get_lead includes every lead column'
);
select ok(not (:'got'::jsonb -> 'lead') ? 'search_text', 'but not the internal search column');
select is(:'got'::jsonb #> '{lead,conversation}',
  jsonb_build_object('id', :'conv'::uuid, 'message_count', 3, 'last_message_at',
    (select last_message_at from conversations where id = :'conv'), 'status', 'active', 'sentiment', 'POSITIVE'),
  'with the conversation summary');
select is(
  (select array_agg(x ->> 'title') from jsonb_array_elements(:'got'::jsonb #> '{lead,sophie_insights}') x),
  array['Missing opt-out line', 'Too pushy'], 'and the insights, newest first'
);
select is(
  (select array_agg(k order by k) from jsonb_object_keys(:'got'::jsonb #> '{lead,sophie_insights,0}') k),
  array['created_at', 'id', 'severity', 'status', 'title'], 'insights in the API contract shape'
);
select is(
  public.get_lead((select id from leads where first_name = 'bob')) #> '{lead}' -> 'conversation', 'null'::jsonb,
  'a lead without a conversation has conversation null'
);
select is(
  public.get_lead((select id from leads where first_name = 'bob')) #> '{lead,sophie_insights}', '[]'::jsonb,
  'and no insights'
);
select tests.throws_status(format('select public.get_lead(%L)', :'theirs'), 404, null,
  'another client''s lead is not found');

-- update -------------------------------------------------------------------------------------
select tests.throws_status(format($$ select public.update_lead(%L, '{"notes": "x"}') $$, :'ann'), 403,
  'read-only members cannot change leads', 'a read-only member cannot update');
select tests.throws_status(format('select public.toggle_lead_archive(%L)', :'ann'), 403, null, 'nor archive');
select tests.throws_status(format('select public.set_lead_manual_mode(%L, true)', :'ann'), 403, null,
  'nor switch manual mode');

select tests.clear_authentication(), tests.authenticate_as(:'rep');
select ok(
  public.update_lead(:'ann', jsonb_build_object('first_name', ' Anne ', 'email', 'ANNE@Example.com',
    'contact_status', 'WARM', 'lead_sentiment', null, 'notes', 'prefers evenings', 'assigned_to', :'rep'))
  -> 'lead' @> jsonb_build_object('first_name', 'Anne', 'email', 'anne@example.com', 'contact_status', 'WARM',
    'lead_sentiment', null, 'notes', 'prefers evenings', 'assigned_to', :'rep', 'last_name', 'Zeta'),
  'update_lead applies the allowed fields, trimmed and validated, and leaves the rest'
);
select tests.throws_status(format($$ select public.update_lead(%L, '{"phone_number": "+447700900999"}') $$, :'ann'), 400,
  'unknown or read-only field(s): phone_number', 'the phone number is not updatable');
select tests.throws_status(format($$ select public.update_lead(%L, '{"contact_status": "LUKEWARM"}') $$, :'ann'), 400,
  null, 'an unknown status is refused');
select tests.throws_status(format($$ select public.update_lead(%L, '{"contact_status": null}') $$, :'ann'), 400,
  null, 'the status cannot be null');
select tests.throws_status(format($$ select public.update_lead(%L, '{"lead_sentiment": "ECSTATIC"}') $$, :'ann'), 400,
  null, 'an unknown sentiment is refused');
select tests.throws_status(format($$ select public.update_lead(%L, '{"archived": "yes"}') $$, :'ann'), 400,
  null, 'flags must be booleans');
select tests.throws_status(format($$ select public.update_lead(%L, '{"email": "not-an-email"}') $$, :'ann'), 400,
  null, 'a malformed email is refused');
select tests.throws_status(format($$ select public.update_lead(%L, '[1]') $$, :'ann'), 400, null,
  'the patch must be an object');
select tests.throws_status(format($$ select public.update_lead(%L, '{"assigned_to": %s}') $$, :'ann', to_jsonb(:'other_admin'::text)),
  400, 'assigned_to must be an active member of the lead''s client', 'no assigning to another client''s user');
select tests.throws_status(format($$ select public.update_lead(%L, '{"assigned_to": %s}') $$, :'ann', to_jsonb(:'gone'::text)),
  400, null, 'nor to a suspended member');
select tests.throws_status(format('update leads set assigned_to = %L where id = %L', :'other_admin', :'ann'), 400, null,
  'the assignee rule holds for a direct PATCH too');
select tests.throws_status(format($$ select public.update_lead(%L, '{"notes": "x"}') $$, :'theirs'), 404, null,
  'another client''s lead cannot be updated');

-- toggles and their timestamps ---------------------------------------------------------------
select public.toggle_lead_archive(:'ann') as arch \gset
select is(
  (select array_agg(k order by k) from jsonb_object_keys(:'arch'::jsonb) k),
  array['archived', 'archived_at', 'lead_id'], 'archive returns the API contract shape'
);
select ok((:'arch'::jsonb ->> 'archived')::boolean and (:'arch'::jsonb ->> 'archived_at') is not null,
  'archive sets archived_at');
select is(public.toggle_lead_archive(:'ann') -> 'archived_at', 'null'::jsonb, 'unarchive clears archived_at');
select is(
  (select array_agg(k order by k) from jsonb_object_keys(public.set_lead_manual_mode(:'ann', true)) k),
  array['lead_id', 'manual_mode', 'manual_mode_activated_at'], 'manual mode returns the API contract shape'
);
select isnt((select manual_mode_activated_at from leads where id = :'ann'), null, 'manual mode on is stamped');
select is(public.set_lead_manual_mode(:'ann', false) -> 'manual_mode_activated_at', 'null'::jsonb,
  'manual mode off clears the stamp');
select tests.throws_status(format('select public.set_lead_manual_mode(%L, null)', :'ann'), 400, null,
  'enabled is required');
update leads set archived = true where id = :'ann';
select isnt((select archived_at from leads where id = :'ann'), null, 'a direct PATCH stamps archived_at too');

select * from finish();
rollback;
