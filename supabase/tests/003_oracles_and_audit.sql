-- No existence oracles: a refusal reads the same whether the thing exists elsewhere (another
-- client's user, dataset, lead, insight) or does not exist at all. And audit columns are the
-- server's: prompt_edits.edited_by/edited_at cannot be written by users; lessons'
-- source_insight_id is a real (same-client) reference.
begin;
select plan(24);

select tests.create_client('Acme') as acme \gset
select tests.create_client('Globex') as globex \gset
select tests.create_user('admin@acme.oracle', :'acme') as acme_admin \gset
select tests.create_user('rep@acme.oracle', :'acme', 'sales_rep') as acme_rep \gset
select tests.create_user('viewer@acme.oracle', :'acme', 'read_only') as acme_viewer \gset
select tests.create_user('admin2@acme.oracle', :'acme') as acme_admin2 \gset
select tests.create_user('admin@globex.oracle', :'globex') as globex_admin \gset
select gen_random_uuid() as nobody \gset
select tests.create_dataset(:'acme') as acme_ds \gset
select tests.create_dataset(:'globex') as globex_ds \gset
select tests.create_campaign(:'acme_ds');
select tests.create_lead(:'acme_ds', 'Ann', '+447700900111') as acme_lead \gset

-- Assignee: a caller RLS refuses learns nothing about memberships ------------------------------
select tests.authenticate_as(:'acme_viewer');
select throws_ok(
  format('insert into public.leads (dataset_id, phone_number, assigned_to) values (%L, %L, %L)',
    :'acme_ds', '+447700900201', :'acme_rep'),
  '42501', 'new row violates row-level security policy for table "leads"',
  'a read-only member assigning to an active member of the client: RLS refuses'
);
select throws_ok(
  format('insert into public.leads (dataset_id, phone_number, assigned_to) values (%L, %L, %L)',
    :'acme_ds', '+447700900201', :'globex_admin'),
  '42501', 'new row violates row-level security policy for table "leads"',
  'the same refusal for a user of another client'
);
select throws_ok(
  format('insert into public.leads (dataset_id, phone_number, assigned_to) values (%L, %L, %L)',
    :'acme_ds', '+447700900201', :'nobody'),
  '42501', 'new row violates row-level security policy for table "leads"',
  'and for a user who does not exist'
);
select tests.clear_authentication();

-- Another client's admin (the lead would be theirs: client_id is the caller's) is told only
-- about their own client, the same for an Acme member and for nobody.
select tests.authenticate_as(:'globex_admin');
select tests.throws_status(
  format('insert into public.leads (dataset_id, phone_number, assigned_to) values (%L, %L, %L)',
    :'acme_ds', '+447700900202', :'acme_rep'),
  400, 'assigned_to must be an active member of the lead''s client',
  'another client''s admin, into Acme''s dataset, assigning to an Acme member'
);
select tests.throws_status(
  format('insert into public.leads (dataset_id, phone_number, assigned_to) values (%L, %L, %L)',
    :'acme_ds', '+447700900202', :'nobody'),
  400, 'assigned_to must be an active member of the lead''s client',
  'the same answer for an assignee who does not exist'
);
select tests.clear_authentication();

-- A writer of the client gets the rule's answer, the same for "elsewhere" and "nowhere".
select tests.authenticate_as(:'acme_rep');
select tests.throws_status(
  format('update public.leads set assigned_to = %L where id = %L', :'globex_admin', :'acme_lead'),
  400, 'assigned_to must be an active member of the lead''s client',
  'a writer assigning to another client''s user: 400'
);
select tests.throws_status(
  format('update public.leads set assigned_to = %L where id = %L', :'nobody', :'acme_lead'),
  400, 'assigned_to must be an active member of the lead''s client',
  'the same 400 for a user who does not exist (not the foreign key''s 23503)'
);
select lives_ok(
  format('update public.leads set assigned_to = %L where id = %L', :'acme_admin', :'acme_lead'),
  'assigning to an active colleague works'
);
select tests.clear_authentication();

-- Another client's dataset answers as a missing one ----------------------------------------------
select tests.authenticate_as(:'globex_admin');
select throws_ok(
  format('insert into public.campaigns (dataset_id) values (%L)', :'acme_ds'),
  '42501', 'new row violates row-level security policy for table "campaigns"',
  'settings for another client''s dataset (which has settings): refused by RLS, not 23505'
);
select throws_ok(
  format('insert into public.campaigns (dataset_id) values (%L)', gen_random_uuid()),
  '42501', 'new row violates row-level security policy for table "campaigns"',
  'the same refusal for a dataset that does not exist'
);
select throws_ok(
  format('insert into public.leads (dataset_id, phone_number) values (%L, %L)', :'acme_ds', '+447700900111'),
  '42501', 'new row violates row-level security policy for table "leads"',
  'a lead into another client''s dataset with a number on its list: RLS, not 23505'
);
select throws_ok(
  format('insert into public.leads (dataset_id, phone_number) values (%L, %L)', :'acme_ds', '+447700900112'),
  '42501', 'new row violates row-level security policy for table "leads"',
  'the same with a number not on it'
);
select throws_ok(
  format('insert into public.leads (dataset_id, phone_number) values (%L, %L)', gen_random_uuid(), '+447700900112'),
  '42501', 'new row violates row-level security policy for table "leads"',
  'and with a dataset that does not exist'
);
select lives_ok(
  format('insert into public.campaigns (dataset_id) values (%L)', :'globex_ds'),
  'settings for one''s own dataset still work'
);
select tests.clear_authentication();

-- prompt_edits: edited_by / edited_at are the server's -------------------------------------------
select tests.authenticate_as(:'acme_admin');
select public.update_prompt('reply', 'Be kind.');
select is(
  (select edited_by from public.prompt_edits where client_id = :'acme' and prompt_type = 'reply'),
  :'acme_admin'::uuid, 'update_prompt records the editor'
);
select throws_ok(
  format('update public.prompt_edits set edited_by = %L where client_id = %L', :'acme_admin2', :'acme'),
  '42501', null, 'edited_by cannot be set by a user'
);
select throws_ok(
  format('update public.prompt_edits set edited_at = %L where client_id = %L', '2000-01-01', :'acme'),
  '42501', null, 'nor edited_at'
);
select throws_ok(
  format($$insert into public.prompt_edits (client_id, prompt_type, system_prompt, edited_by)
    values (%L, 'm1', 'x', %L)$$, :'acme', :'acme_admin2'),
  '42501', null, 'nor given on insert'
);
select tests.clear_authentication();
select tests.authenticate_as(:'acme_admin2');
update public.prompt_edits set system_prompt = 'Be very kind.' where client_id = :'acme' and prompt_type = 'reply';
select is(
  (select edited_by from public.prompt_edits where client_id = :'acme' and prompt_type = 'reply'),
  :'acme_admin2'::uuid, 'a direct edit is stamped with its author'
);
select tests.clear_authentication();
-- Even the service role's explicit values are replaced: the stamp is the writer and now().
update public.prompt_edits set edited_by = :'acme_admin', edited_at = '2000-01-01'
where client_id = :'acme' and prompt_type = 'reply';
select ok(
  (select edited_at > '2000-01-02' and edited_by is distinct from :'acme_admin'::uuid
   from public.prompt_edits where client_id = :'acme' and prompt_type = 'reply'),
  'the trigger overrides supplied audit values'
);

-- lessons.source_insight_id: a real, same-client reference ---------------------------------------
insert into public.sophie_insights (client_id, severity, category, title)
values (:'acme', 'warning', 'tone', 'Too pushy') returning id as acme_insight \gset
insert into public.sophie_insights (client_id, severity, category, title)
values (:'globex', 'warning', 'tone', 'Too slow') returning id as globex_insight \gset

select tests.authenticate_as(:'acme_admin');
select throws_ok(
  format('insert into public.lessons (title, source_insight_id) values (%L, %L)', 'Slow down', :'globex_insight'),
  '23503', 'insert or update on table "lessons" violates foreign key constraint "lessons_source_insight_id_client_id_fkey"',
  'a lesson cannot point at another client''s insight'
);
select throws_ok(
  format('insert into public.lessons (title, source_insight_id) values (%L, %L)', 'Slow down', gen_random_uuid()),
  '23503', 'insert or update on table "lessons" violates foreign key constraint "lessons_source_insight_id_client_id_fkey"',
  'nor at one that does not exist (the same answer)'
);
insert into public.lessons (title, source_insight_id) values ('Slow down', :'acme_insight') returning id as lesson \gset
select tests.clear_authentication();
delete from public.sophie_insights where id = :'acme_insight';
select is(
  (select source_insight_id from public.lessons where id = :'lesson'), null,
  'deleting the insight keeps the lesson and clears the link'
);
select throws_ok(
  format($$insert into public.lessons (scope, client_id, title, source_insight_id)
    values ('universal', null, 'x', %L)$$, :'globex_insight'),
  '23514', null, 'a universal lesson names no client''s insight'
);

select * from finish();
rollback;
