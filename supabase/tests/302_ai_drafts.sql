-- AI drafts: request_ai_draft (one job per conversation state, cached draft, forced
-- regeneration, visibility), ai_draft_job tenancy, and ai_send approving a draft.
begin;
set local search_path = public, extensions;
set local client_min_messages = warning;
select plan(12);

select tests.create_client('Acme') as acme \gset
select tests.create_client('Other') as other \gset
select tests.create_user('admin@acme.test', :'acme', 'admin') as admin \gset
select tests.create_user('other@other.test', :'other', 'admin') as other_admin \gset
insert into datasets (client_id, name) values (:'acme', 'One') returning id as d1 \gset
insert into datasets (client_id, name) values (:'acme', 'Two') returning id as d2 \gset
select tests.create_user('restricted@acme.test', :'acme', 'sales_rep', 'active', false, array[:'d2'::uuid])
  as restricted \gset
insert into leads (client_id, dataset_id, phone_number, first_name) values (:'acme', :'d1', '+447700933001', 'Ann')
returning id as ann \gset
insert into conversations (client_id, dataset_id, lead_id) values (:'acme', :'d1', :'ann') returning id as cv \gset
insert into messages (client_id, dataset_id, conversation_id, lead_id, direction, message_category, status, content)
values (:'acme', :'d1', :'cv', :'ann', 'inbound', 'lead_reply', 'received', 'hello?') returning id as in1 \gset

select tests.authenticate_as(:'admin');
select private.request_ai_draft(:'ann', :'cv') as first \gset
select is(:'first'::jsonb ->> 'cached', 'false', 'no draft yet: a job is enqueued');
select is(
  private.request_ai_draft(:'ann', :'cv') ->> 'job_id', :'first'::jsonb ->> 'job_id',
  'a second request for the same state shares the job'
);
select isnt(
  private.request_ai_draft(:'ann', :'cv', true) ->> 'job_id', :'first'::jsonb ->> 'job_id',
  'force_regenerate gets a new job'
);
select is(
  private.ai_draft_job((:'first'::jsonb ->> 'job_id')::bigint) ->> 'status', 'queued',
  'the caller can follow the job'
);

-- the worker stores a draft for the current state
select tests.clear_authentication();
select private.ai_draft_commit(:'cv', 'Hi Ann, it''s Acme!',
  jsonb_build_object('confidence', 0.8, 'reasoning', 'why', 'lessons_applied', '[]'::jsonb,
    'based_on_message_id', :'in1')) ->> 'message_id' as draft \gset
select tests.authenticate_as(:'admin');
select is(
  private.request_ai_draft(:'ann', :'cv') -> 'generated_message' ->> 'content', 'Hi Ann, it''s Acme!',
  'the stored draft for the same state is returned without a new job'
);
select is(
  (select status::text from messages where id = :'draft'), 'draft', 'the draft is visible in the conversation'
);

-- visibility
select tests.clear_authentication();
select tests.authenticate_as(:'restricted');
select tests.throws_status(
  format($$select private.request_ai_draft(%L, %L)$$, :'ann', :'cv'), 404, null,
  'a member restricted to another dataset cannot draft here'
);
select tests.clear_authentication();
select tests.authenticate_as(:'other_admin');
select is(
  private.ai_draft_job((:'first'::jsonb ->> 'job_id')::bigint), null, 'another client cannot read the job'
);
select tests.throws_status(
  format($$select ai_send(%L, %L)$$, :'ann', :'draft'), 404, null, 'nor send the draft'
);

-- approving
select tests.clear_authentication();
select tests.authenticate_as(:'admin');
select is(
  ai_send(:'ann', :'draft') -> 'message' ->> 'status', 'pending', 'ai_send queues the approved draft'
);
select is(
  (select count(*)::integer from messages where conversation_id = :'cv' and status = 'draft'), 0,
  'the draft leaves the conversation'
);
select tests.throws_status(
  format($$select ai_send(%L, %L)$$, :'ann', :'draft'), 409, null, 'approving twice is a conflict'
);

select * from finish();
rollback;
