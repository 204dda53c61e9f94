-- The lessons library RPCs: list (filters, full-text search, tags, sort), create with clear
-- validation, update, delete = archive; times_applied / success_rate from real outcomes in the
-- attribution window (private.lesson_stats); tenant walls.
begin;
set local search_path = public, extensions;
set local client_min_messages = warning;
select plan(35);

select tests.create_client('Acme') as acme \gset
select tests.create_client('Other') as other \gset
select tests.create_user('admin@acme.test', :'acme', 'admin') as admin \gset
select tests.create_user('editor@acme.test', :'acme', 'sales_rep', 'active', true, null, true) as editor \gset
select tests.create_user('rep@acme.test', :'acme', 'sales_rep') as rep \gset
select tests.create_user('other@other.test', :'other', 'admin') as other_admin \gset
select tests.create_dataset(:'acme', 'One') as d1 \gset

insert into lessons (client_id, scope, title, priority) values (null, 'universal', 'Never quote prices', 9)
returning id as universal \gset
insert into lessons (client_id, title, reasoning) values (:'other', 'Other client lesson', 'secret sauce')
returning id as theirs \gset

-- Create -----------------------------------------------------------------------------------
select tests.authenticate_as(:'rep');
select tests.throws_status($$select create_lesson('tone', 'client_specific', 'T', 'x', 'y', 5)$$, 403, null,
  'a member without lesson editing cannot create lessons');
select tests.clear_authentication();
select tests.authenticate_as(:'editor');
select tests.throws_status($$select create_lesson('tone', 'client_specific', 'T', 'x', 'y', 11)$$, 400,
  'priority must be a whole number from 1 to 10 (got 11)', 'priority outside 1-10 is a 400 that says so');
select tests.throws_status($$select create_lesson('vibes', 'client_specific', 'T', 'x', 'y', 5)$$, 400, null,
  'an unknown lesson type is a 400');
select is(
  tests.error_of($$select create_lesson('vibes', 'client_specific', 'T', 'x', 'y', 5)$$) -> 'body' ->> 'message',
  'lesson_type must be one of objection_handling, dos_donts, tone, compliance, timing, booking, other (got "vibes")',
  '... naming the allowed types'
);
select tests.throws_status($$select create_lesson('tone', 'universal', 'T', 'x', 'y', 5)$$, 403, null,
  'a universal lesson by a client user is refused');
select tests.throws_status($$select create_lesson('tone', 'client_specific', '  ', 'x', 'y', 5)$$, 400, null,
  'a blank title is a 400');
select tests.throws_status($$select create_lesson('tone', 'client_specific', 'T', 'x', 'y', 5,
  example_conversation => '{"messages": [{"from": "bot", "content": "hi"}]}')$$, 400, null,
  'a malformed example conversation is a 400');
select create_lesson('objection_handling', 'client_specific', 'Price objection', 'The lead says it is too expensive',
  'Customers respond to payment plans spread over twelve months', 8,
  description => 'Handle price pushback', correct_response => 'Mention the payment plan',
  tags => array['Price', 'objections'],
  example_conversation => '{"messages": [{"from": "lead", "content": "Too dear"}, {"from": "ai", "content": "We do monthly plans", "annotation": "good"}]}') as created \gset
select is(:'created'::jsonb -> 'lesson' ->> 'status', 'active', 'create answers {lesson} (active)');
select is(:'created'::jsonb -> 'lesson' -> 'tags', '["objections", "price"]'::jsonb, '... tags normalised');
select create_lesson('tone', 'client_specific', 'Be warm', 'Any reply', 'Warmth converts', 3, tags => array['tone']) as warm \gset
select create_lesson('timing', 'client_specific', 'Evenings', 'Scheduling', 'People answer after work', 6,
  tags => array['timing', 'price']) as evenings \gset
select :'created'::jsonb -> 'lesson' ->> 'id' as price_id, :'warm'::jsonb -> 'lesson' ->> 'id' as warm_id,
  :'evenings'::jsonb -> 'lesson' ->> 'id' as evenings_id \gset
select tests.clear_authentication();

-- List -------------------------------------------------------------------------------------
select tests.authenticate_as(:'rep');
select is(
  (select array_agg(l ->> 'title' order by l ->> 'title') from jsonb_array_elements(list_lessons() -> 'lessons') l),
  array['Be warm', 'Evenings', 'Never quote prices', 'Price objection'],
  'a member lists their client''s lessons and universal ones, never another client''s'
);
select is(
  (select array_agg(k order by k) from jsonb_object_keys(list_lessons() -> 'lessons' -> 0) k) @>
  array['correct_response', 'created_at', 'description', 'id', 'lesson_type', 'priority', 'scope', 'status',
    'success_rate', 'tags', 'times_applied', 'title', 'trigger'],
  true, 'each lesson has the API contract''s fields'
);
select is(
  (select array_agg(l ->> 'title') from jsonb_array_elements(list_lessons(search => 'payment months') -> 'lessons') l),
  array['Price objection'], 'full-text search finds a lesson by words of its reasoning (stemmed)'
);
select is(jsonb_array_length(list_lessons(search => 'secret sauce') -> 'lessons'), 0, '... never another client''s');
select is(
  (select array_agg(l ->> 'title') from jsonb_array_elements(list_lessons(tags => array['price', 'timing']) -> 'lessons') l),
  array['Evenings'], 'tags filter keeps lessons carrying all the tags'
);
select is(
  (select array_agg(l ->> 'title') from jsonb_array_elements(list_lessons(lesson_type => 'tone') -> 'lessons') l),
  array['Be warm'], 'filter by type'
);
select is(
  (select array_agg(l ->> 'title') from jsonb_array_elements(list_lessons(scope => 'universal') -> 'lessons') l),
  array['Never quote prices'], 'filter by scope'
);
select is(
  (select array_agg(l ->> 'title' order by n) from jsonb_array_elements(list_lessons(sort => 'priority') -> 'lessons') with ordinality x(l, n)),
  array['Never quote prices', 'Price objection', 'Evenings', 'Be warm'], 'sort by priority, highest first'
);
select tests.throws_status($$select list_lessons(sort => 'random')$$, 400, null, 'an unknown sort is a 400');
select ok(
  (select count(*) from pg_indexes where tablename = 'lessons' and indexdef ilike '%gin (search_vector)%') = 1,
  'the full-text vector is indexed (GIN)'
);
select tests.clear_authentication();

-- Update and delete (= archive) ---------------------------------------------------------------
select tests.authenticate_as(:'editor');
select is(update_lesson(:'warm_id', '{"priority": 4, "reasoning": "Warmth wins trust"}') -> 'lesson' ->> 'priority', '4',
  'update changes the given fields');
select tests.throws_status(format($$select update_lesson(%L, '{"priority": 0}')$$, :'warm_id'), 400, null,
  'update validates like create');
select tests.throws_status(format($$select update_lesson(%L, '{"colour": "red"}')$$, :'warm_id'), 400, null,
  'update refuses unknown fields');
select tests.throws_status(format($$select update_lesson(%L, '{"priority": 4}')$$, :'universal'), 403, null,
  'a universal lesson cannot be changed by a client');
select tests.throws_status(format($$select update_lesson(%L, '{"priority": 4}')$$, :'theirs'), 404, null,
  'another client''s lesson is not found');
select tests.throws_status(format($$select delete_lesson(%L)$$, :'theirs'), 404, null, '... nor can it be archived');
select is(delete_lesson(:'warm_id') -> 'lesson' ->> 'status', 'archived', 'DELETE archives the lesson');
select tests.clear_authentication();
select results_eq(format($$select status::text, archived_at is not null from lessons where id = %L$$, :'warm_id'),
  $$values ('archived'::text, true)$$, '... the row is kept, archived');
select tests.authenticate_as(:'rep');
select is(jsonb_array_length(list_lessons(lesson_type => 'tone') -> 'lessons'), 0, 'archived lessons leave the default list');
select is(jsonb_array_length(list_lessons(status => 'archived') -> 'lessons'), 1, '... and are listed when asked for');
select tests.throws_status(format($$select delete_lesson(%L)$$, :'price_id'), 403, null, 'a member without lesson editing cannot archive');
select tests.clear_authentication();

-- times_applied and success_rate from real outcomes ---------------------------------------------
select tests.authenticate_as(:'admin');
select make_prompt_live('reply') -> 'prompt' ->> 'id' as prompt_id \gset
select tests.clear_authentication();
select tests.create_lead(:'d1', 'Inside') as inside \gset
select tests.create_lead(:'d1', 'Outside') as outside \gset
select tests.create_lead(:'d1', 'Never') as never \gset
insert into messages (client_id, dataset_id, conversation_id, lead_id, direction, message_category, status, content,
  sent_at, ai_generated, ai_metadata)
select l.client_id, l.dataset_id, tests.create_conversation(l.id), l.id, 'outbound', 'ai_response', 'sent', 'AI text',
  now() - x.age, true, jsonb_build_object('prompt_version_id', :'prompt_id')
from leads l join (values (:'inside'::uuid, interval '2 days'), (:'outside'::uuid, interval '10 days'),
  (:'never'::uuid, interval '1 day')) x(id, age) on x.id = l.id;
update leads set contact_status = 'CALL_BOOKED' where id in (:'inside', :'outside');
select results_eq(
  format($$select times_applied, times_successful, success_rate from private.lesson_stats(%L) where lesson_id = %L$$, :'acme', :'price_id'),
  $$values (3, 1, 0.3333::numeric)$$,
  'a lesson counts every AI message sent with a prompt that included it; a booking inside the 7-day window is a success, one outside is not'
);
update clients set settings = settings || '{"attribution_window_days": 14}' where id = :'acme';
select is((select times_successful from private.lesson_stats(:'acme') where lesson_id = :'price_id'), 2,
  'the window is the client''s attribution_window_days setting');
select tests.authenticate_as(:'rep');
select is(
  (select l -> 'times_applied' from jsonb_array_elements(list_lessons() -> 'lessons') l where l ->> 'id' = :'price_id'),
  '3'::jsonb, 'the library shows times_applied from real outcomes'
);
select tests.clear_authentication();
select tests.authenticate_as(:'editor');
select create_lesson('booking', 'client_specific', 'Newest, never applied', 'x', 'y', 10) is not null as made \gset
select tests.clear_authentication();
select tests.authenticate_as(:'rep');
select is(
  (select l ->> 'title' from jsonb_array_elements(list_lessons(sort => 'times_applied') -> 'lessons') with ordinality x(l, n)
   order by n desc limit 1),
  'Newest, never applied', 'sort by times_applied puts a never-applied lesson last, though it is the newest'
);
select is((select count(*)::int from private.lesson_stats(:'other')), 0, 'a member cannot read another client''s lesson statistics');
select tests.clear_authentication();

select * from finish();
rollback;
