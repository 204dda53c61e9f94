-- Prompts: default versions per client, get_prompt (API contract shape, performance), update_prompt
-- (admin only, unpublished), make_prompt_live (admin or can_push_to_live; versions, lessons
-- order, diff, history), tenancy.
begin;
set local search_path = public, extensions;
set local client_min_messages = warning;
select plan(27);

select tests.create_client('Acme') as acme \gset
select tests.create_client('Other') as other \gset
select tests.create_user('admin@acme.test', :'acme', 'admin') as admin \gset
select tests.create_user('pusher@acme.test', :'acme', 'manager', 'active', true, null, false, true) as pusher \gset
select tests.create_user('rep@acme.test', :'acme', 'sales_rep') as rep \gset
select tests.create_user('other@other.test', :'other', 'admin') as other_admin \gset

-- defaults --------------------------------------------------------------------------------
select results_eq(
  format($$select prompt_type::text, version, is_active, pushed_to_live from prompts where client_id = %L
    order by prompt_type$$, :'acme'),
  $$values ('m1', 1, true, true), ('m2', 1, true, true), ('m3', 1, true, true), ('master', 1, true, true),
    ('reply', 1, true, true)$$,
  'a new client gets version 1 of every prompt type, live'
);
select ok(
  (select system_prompt like '%record_reply%' and user_prompt_template like '%{{latest_message}}%'
   from prompts where client_id = :'acme' and prompt_type = 'reply'),
  'the default reply prompt explains the tool and has the template placeholders'
);

-- get_prompt ------------------------------------------------------------------------------
select tests.authenticate_as(:'rep');
select is(
  (select array_agg(k order by k) from jsonb_object_keys(get_prompt('reply') -> 'prompt') k),
  array['created_at', 'id', 'includes_lessons', 'is_active', 'lessons_context', 'name', 'prompt_type',
    'pushed_to_live', 'system_prompt', 'user_prompt_template', 'version'],
  'get_prompt returns the API contract''s prompt fields'
);
select is(
  get_prompt('reply') -> 'performance', '{"conversations_using": 0, "success_rate": 0}'::jsonb,
  'performance starts empty'
);
select is((get_prompt('reply') ->> 'lessons_included')::integer, 0, 'no lessons yet');
select tests.throws_status($$select get_prompt('nope')$$, 400, null, 'an unknown type is a validation error');

-- update_prompt ---------------------------------------------------------------------------
select tests.throws_status(
  $$select update_prompt('reply', 'Rep edit')$$, 403, null, 'a sales rep cannot edit prompts'
);
select tests.clear_authentication();
select tests.authenticate_as(:'pusher');
select tests.throws_status(
  $$select update_prompt('reply', 'Pusher edit')$$, 403, null,
  'can_push_to_live does not allow editing (admin only)'
);
select tests.clear_authentication();
select tests.authenticate_as(:'admin');
select is(
  update_prompt('reply', 'Edited system prompt') -> 'prompt_edit' ->> 'is_live', 'false',
  'an admin''s edit is stored unpublished'
);
select is(
  (get_prompt('reply') -> 'prompt' ->> 'version')::integer, 1, 'the live version is unchanged by an edit'
);
select tests.throws_status($$select update_prompt('reply', '  ')$$, 400, null, 'an empty system prompt is refused');

-- lessons to inject: client-specific first, then universal, each by priority ----------------
select tests.clear_authentication();
insert into lessons (client_id, scope, title, priority) values (null, 'universal', 'U9', 9) returning id as u9 \gset
insert into lessons (client_id, title, priority) values (:'acme', 'C3', 3) returning id as c3 \gset
insert into lessons (client_id, title, priority) values (:'acme', 'C7', 7) returning id as c7 \gset
insert into lessons (client_id, title, priority, status) values (:'acme', 'Testing', 10, 'testing');
insert into lessons (client_id, title, priority) values (:'other', 'Theirs', 10);

-- make_prompt_live ------------------------------------------------------------------------
select tests.authenticate_as(:'rep');
select tests.throws_status($$select make_prompt_live('reply')$$, 403, null, 'a sales rep cannot make a prompt live');
select tests.clear_authentication();
select tests.authenticate_as(:'pusher');
select make_prompt_live('reply') as live \gset
select is((:'live'::jsonb -> 'prompt' ->> 'version')::integer, 2, 'can_push_to_live makes version 2 live');
select is(
  :'live'::jsonb -> 'changes_from_previous',
  jsonb_build_object('lessons_added', jsonb_build_array(:'c7', :'c3', :'u9'), 'lessons_removed', '[]'::jsonb,
    'base_prompt_changed', true),
  'the diff lists the injected lessons in prompt order and the changed base'
);
select is((:'live'::jsonb -> 'prompt' ->> 'lessons_included')::integer, 3, 'three active lessons included');
select ok(
  (select lessons_context like '%C7%C3%U9%' and lessons_context not like '%Testing%'
     and lessons_context not like '%Theirs%' and system_prompt = 'Edited system prompt'
   from prompts where client_id = :'acme' and prompt_type = 'reply' and is_active),
  'the new version has the edit and the lessons text in order (testing and other clients'' lessons left out)'
);
select is(
  (select count(*)::integer from prompt_edits where client_id = :'acme'), 0, 'the edit was consumed'
);
select results_eq(
  format($$select version, is_active, pushed_to_live from prompts
    where client_id = %L and prompt_type = 'reply' order by version$$, :'acme'),
  $$values (1, false, true), (2, true, true)$$,
  'version 1 stays in history, version 2 is the one active'
);

select tests.clear_authentication();
update lessons set status = 'archived' where id = :'c3';
insert into lessons (client_id, title, priority) values (:'acme', 'C5', 5) returning id as c5 \gset
select tests.authenticate_as(:'admin');
select make_prompt_live('reply') as live3 \gset
select is(
  :'live3'::jsonb -> 'changes_from_previous',
  jsonb_build_object('lessons_added', jsonb_build_array(:'c5'), 'lessons_removed', jsonb_build_array(:'c3'),
    'base_prompt_changed', false),
  'without an edit the base is unchanged; archived lessons are removed, new ones added'
);
select is((get_prompt('reply') -> 'prompt' ->> 'version')::integer, 3, 'get_prompt shows version 3');
select is((get_prompt('reply') ->> 'lessons_included')::integer, 3, 'with its lesson count');
select is(
  (get_prompt('master') -> 'prompt' ->> 'version')::integer, 1, 'other prompt types are untouched'
);

-- performance -----------------------------------------------------------------------------
select tests.clear_authentication();
insert into datasets (client_id, name) values (:'acme', 'List') returning id as ds \gset
insert into leads (client_id, dataset_id, phone_number) values (:'acme', :'ds', '+447700931001') returning id as l1 \gset
insert into leads (client_id, dataset_id, phone_number, call_booked) values (:'acme', :'ds', '+447700931002', true)
returning id as l2 \gset
insert into conversations (client_id, dataset_id, lead_id) values (:'acme', :'ds', :'l1') returning id as cv1 \gset
insert into conversations (client_id, dataset_id, lead_id) values (:'acme', :'ds', :'l2') returning id as cv2 \gset
insert into messages (client_id, dataset_id, conversation_id, lead_id, direction, message_category, status, content,
  ai_generated, ai_metadata)
select :'acme', :'ds', c, l, 'outbound', 'ai_response', 'sent', 'hi', true,
  jsonb_build_object('prompt_version_id', (select id from prompts where client_id = :'acme' and prompt_type = 'reply'
    and is_active))
from (values (:'cv1'::uuid, :'l1'::uuid), (:'cv2'::uuid, :'l2'::uuid), (:'cv2'::uuid, :'l2'::uuid)) v (c, l);
select tests.authenticate_as(:'rep');
select is(
  get_prompt('reply') -> 'performance', '{"conversations_using": 2, "success_rate": 0.5000}'::jsonb,
  'performance counts conversations answered with the version and the share that booked'
);

-- tenancy ---------------------------------------------------------------------------------
select tests.clear_authentication();
select tests.authenticate_as(:'other_admin');
select is((get_prompt('reply') -> 'prompt' ->> 'version')::integer, 1, 'the other client has its own prompts');
select is(
  (select count(*)::integer from prompts where client_id = :'acme'), 0, 'and cannot read Acme''s'
);
select throws_ok(
  format($$insert into prompts (client_id, prompt_type, name, system_prompt, version) values (%L, 'reply', 'x', 'x', 9)$$,
    :'acme'),
  '42501', null, 'versions are written only by make_prompt_live'
);
select tests.clear_authentication();
select tests.authenticate_as(:'admin');
select throws_ok(
  $$update prompts set system_prompt = 'rewritten history' where version = 1$$,
  '42501', null, 'a version is immutable'
);

select * from finish();
rollback;
