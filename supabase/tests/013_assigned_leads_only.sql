-- A member without can_view_all_leads and without a dataset list fails closed: it sees only
-- the leads assigned to it (leads.assigned_to), their conversations, messages and bookings,
-- and the datasets those leads belong to. Admins, and members with can_view_all_leads,
-- still see everything. RPCs (list_leads, get_lead, get_conversation, send_message) agree.
begin;
select plan(32);

select * from tests.create_world() \gset
select tests.create_lead(:'ds_a1', 'Amy') as lead_a1b \gset
select tests.create_message(:'lead_a1b', 'Hello Amy') as msg_a1b \gset
select c.id as conv_a1b from public.conversations c where c.lead_id = :'lead_a1b' \gset
select tests.create_user('a.assigned@example.test', :'client_a', 'sales_rep', p_can_view_all_leads => false)
  as a_assigned \gset
select tests.create_user('a.assigned.mgr@example.test', :'client_a', 'manager', p_can_view_all_leads => false)
  as a_assigned_mgr \gset
select tests.create_user('a.nothing@example.test', :'client_a', 'sales_rep', p_can_view_all_leads => false)
  as a_nothing \gset
select tests.create_user('a.admin2@example.test', :'client_a', 'admin', p_can_view_all_leads => false)
  as a_admin2 \gset
update public.leads set assigned_to = :'a_assigned' where id = :'lead_a1';
insert into public.lead_imports (client_id, dataset_id, imported_by, source, column_mapping, total_rows,
  successful, failed, duplicates, started_at)
values (:'client_a', :'ds_a1', :'a_admin', 'api', '{}', 2, 2, 0, 0, now());
insert into public.csv_uploads (client_id, dataset_id, uploaded_by, filename, file_url, size_bytes, encoding,
  delimiter, rows_detected, columns)
values (:'client_a', :'ds_a1', :'a_admin', 'x.csv', 'u', 1, 'utf-8', ',', 2, '[]');
insert into public.sophie_insights (client_id, dataset_id, lead_id, severity, category, title)
values (:'client_a', :'ds_a1', :'lead_a1', 'info', 'tone', 'About Ann'),
  (:'client_a', :'ds_a1', :'lead_a1b', 'info', 'tone', 'About Amy'),
  (:'client_a', :'ds_a1', null, 'info', 'tone', 'About the list');
update public.leads set assigned_to = :'a_assigned_mgr' where id = :'lead_a2';

-- the assigned-only sales rep ---------------------------------------------------------------
select tests.authenticate_as(:'a_assigned');
select results_eq('select id from public.datasets', format('values (%L::uuid)', :'ds_a1'),
  'assigned-only: sees only the dataset of its assigned lead');
select results_eq('select id from public.leads', format('values (%L::uuid)', :'lead_a1'),
  'assigned-only: sees only its assigned lead, not the other leads of that dataset');
select results_eq('select id from public.conversations', format('values (%L::uuid)', :'conv_a1'),
  'assigned-only: sees only its lead''s conversation');
select results_eq('select id from public.messages', format('values (%L::uuid)', :'msg_a1'),
  'assigned-only: sees only its lead''s messages');
select results_eq('select dataset_id from public.campaigns', format('values (%L::uuid)', :'ds_a1'),
  'assigned-only: sees the campaign settings of that dataset only');
select is_empty('select id from public.lead_imports',
  'assigned-only: does not see others'' imports of that dataset (their errors name other leads)');
select is_empty('select id from public.csv_uploads', 'assigned-only: does not see others'' uploads of that dataset');
select results_eq('select title from public.sophie_insights order by title', $$values ('About Ann'), ('About the list')$$,
  'assigned-only: sees insights about its lead and its dataset, not about another lead');
select is((public.list_leads() -> 'pagination' ->> 'total')::int, 1, 'assigned-only: list_leads counts 1 lead');
select is((public.list_leads(:'ds_a1') -> 'pagination' ->> 'total')::int, 1,
  'assigned-only: list_leads of the dataset counts its assigned lead only (not the dataset counter)');
select is(public.list_leads(:'ds_a1') -> 'leads' -> 0 ->> 'id', :'lead_a1',
  'assigned-only: list_leads lists its assigned lead');
select is((public.list_leads(null, null, null, 'Amy') -> 'pagination' ->> 'total')::int, 0,
  'assigned-only: a search does not find an unassigned lead');
select lives_ok(format('select public.get_lead(%L)', :'lead_a1'), 'assigned-only: get_lead of its lead works');
select throws_ok(format('select public.get_lead(%L)', :'lead_a1b'), null, null,
  'assigned-only: get_lead of an unassigned lead of the same dataset is refused');
select throws_ok(format('select public.get_conversation(%L)', :'conv_a1b'), null, null,
  'assigned-only: get_conversation of an unassigned lead is refused');
select throws_ok(format('select public.send_message(%L, %L)', :'lead_a1b', 'hi'), null, null,
  'assigned-only: send_message to an unassigned lead is refused');
update public.leads set notes = 'assigned was here';
update public.conversations set status = 'needs_human';

-- the assigned-only manager, and a member with nothing assigned ------------------------------
select tests.clear_authentication();
select tests.authenticate_as(:'a_assigned_mgr');
select results_eq('select id from public.datasets', format('values (%L::uuid)', :'ds_a2'),
  'assigned-only manager: sees only the dataset of its assigned lead');
select results_eq('select id from public.leads', format('values (%L::uuid)', :'lead_a2'),
  'assigned-only manager: sees only its assigned lead');
select tests.clear_authentication();
select tests.authenticate_as(:'a_nothing');
select is_empty('select id from public.datasets', 'nothing assigned: sees no dataset');
select is_empty('select id from public.leads', 'nothing assigned: sees no lead');
select is_empty('select id from public.messages', 'nothing assigned: sees no message');
select is((public.list_leads() -> 'pagination' ->> 'total')::int, 0, 'nothing assigned: list_leads is empty');

-- admins always, and members with can_view_all_leads, see everything -------------------------
select tests.clear_authentication();
select tests.authenticate_as(:'a_admin2');
select is((select count(*)::int from public.datasets), 2, 'admin without can_view_all_leads: sees every dataset');
select is((select count(*)::int from public.leads), 3, 'admin without can_view_all_leads: sees every lead');
select is((select count(*)::int from public.sophie_insights), 3, 'admin without can_view_all_leads: sees every insight');
select tests.clear_authentication();
select tests.authenticate_as(:'a_rep');
select is((select count(*)::int from public.leads), 3, 'rep with can_view_all_leads: sees every lead');
select is((select count(*)::int from public.messages), 4, 'rep with can_view_all_leads: sees every message');
select is((public.list_leads() -> 'pagination' ->> 'total')::int, 3, 'rep with can_view_all_leads: list_leads counts all');

-- afterwards, as postgres: the unfiltered updates touched the assigned rows only ------------
select tests.clear_authentication();
select results_eq(
  format($$select id from public.leads where notes = 'assigned was here'$$),
  format('values (%L::uuid)', :'lead_a1'),
  'an unfiltered update by the assigned-only rep changed its assigned lead only'
);
select results_eq(
  $$select id from public.conversations where status = 'needs_human'$$,
  format('values (%L::uuid)', :'conv_a1'),
  'an unfiltered update by the assigned-only rep changed its lead''s conversation only'
);

-- notifications about a dataset's lead reach an assigned-only member for its own leads only
select private.notify_staff(:'client_a', 'About Amy', 'm', 'normal', null,
  jsonb_build_object('lead_id', :'lead_a1b'), :'ds_a1');
select private.notify_staff(:'client_a', 'About Ann', 'm', 'normal', null,
  jsonb_build_object('lead_id', :'lead_a1'), :'ds_a1');
select results_eq(
  format('select title from public.notifications where user_id = %L', :'a_assigned'),
  $$values ('About Ann')$$,
  'assigned-only: notified about its assigned lead, not about another lead of the dataset'
);
select is(
  (select count(*)::int from public.notifications where user_id = :'a_rep'), 2,
  'rep with can_view_all_leads: notified about both'
);

select * from finish();
rollback;
