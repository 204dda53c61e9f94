-- Sophie's work queue: the automatic review of every outbound message (once), the analyze
-- RPCs (access, budget), the per-client budget that defers and never drops, the 15-minute
-- batch tick, pattern statistics and the daily tick; and the realtime feed's policy.
begin;
set local search_path = public, extensions;
set local client_min_messages = warning;
select plan(37);

select tests.create_client('Acme') as acme \gset
select tests.create_client('Other') as other \gset
select tests.create_user('admin@acme.test', :'acme', 'admin') as admin \gset
select tests.create_user('ro@acme.test', :'acme', 'read_only') as ro \gset
select tests.create_user('other@other.test', :'other', 'admin') as other_admin \gset
select tests.create_dataset(:'acme', 'One') as d1 \gset
select tests.create_dataset(:'acme', 'Two') as d2 \gset
select tests.create_dataset(:'other', 'Theirs') as d3 \gset
select tests.create_user('restricted@acme.test', :'acme', 'sales_rep', 'active', false, array[:'d1'::uuid]) as restricted \gset
select tests.create_lead(:'d1', 'Sam') as lead1 \gset
select tests.create_lead(:'d2', 'Alex') as lead2 \gset
select tests.create_lead(:'d3', 'Theo') as lead3 \gset
select tests.create_conversation(:'lead1') as conv1 \gset
select tests.create_conversation(:'lead2') as conv2 \gset
select tests.create_conversation(:'lead3') as conv3 \gset

-- Automatic review ---------------------------------------------------------------------------
insert into messages (client_id, dataset_id, conversation_id, lead_id, direction, message_category, status, content)
values (:'acme', :'d1', :'conv1', :'lead1', 'outbound', 'human_manual', 'pending', 'Hi Sam')
returning id as out1 \gset
select is((select count(*)::int from private.jobs where kind = 'sophie.analyze' and payload ->> 'message_id' = :'out1'), 0,
  'a message not yet sent is not reviewed');
update messages set status = 'sent', sent_at = now() where id = :'out1';
select is((select count(*)::int from private.jobs where kind = 'sophie.analyze' and payload ->> 'message_id' = :'out1'), 1,
  'an outbound message that went out gets one review job');
update messages set status = 'delivered' where id = :'out1';
select is((select count(*)::int from private.jobs where kind = 'sophie.analyze' and payload ->> 'message_id' = :'out1'), 1,
  '... delivery does not queue a second one: analysed once');
select tests.create_message(:'lead1', 'Yes please', 'inbound') as in1 \gset
select is((select count(*)::int from private.jobs where kind = 'sophie.analyze' and payload ->> 'message_id' = :'in1'), 0,
  'inbound messages are not reviewed');
select id as auto_job from private.jobs where kind = 'sophie.analyze' and payload ->> 'message_id' = :'out1' \gset

-- Budget: beyond 1,000 per hour the work waits -------------------------------------------------
insert into private.hourly_budget_uses (bucket, client_id) select 'sophie_analysis', :'acme' from generate_series(1, 1000);
select private.sophie_analyze_begin(:'auto_job', (select payload from private.jobs where id = :'auto_job')) as begun \gset
select is(:'begun'::jsonb ->> 'action', 'defer', 'with the hourly budget spent, an automatic review is deferred, not dropped');
select ok((:'begun'::jsonb ->> 'until')::timestamptz > now(), '... until a unit of budget frees');
delete from private.hourly_budget_uses where client_id = :'acme';
select private.sophie_analyze_begin(:'auto_job', (select payload from private.jobs where id = :'auto_job')) as begun \gset
select is(:'begun'::jsonb ->> 'action', 'analyze', 'with budget back, it runs');
select is((select count(*)::int from private.hourly_budget_uses where client_id = :'acme'), 1, '... spending one unit');
select private.sophie_analyze_begin(:'auto_job', (select payload from private.jobs where id = :'auto_job')) as begun \gset
select is((select count(*)::int from private.hourly_budget_uses where client_id = :'acme'), 1, 'a retry of the same job spends no second unit');
select ok(:'begun'::jsonb -> 'context' -> 'messages' @> jsonb_build_array(jsonb_build_object('id', :'out1')),
  'the context holds the thread up to the message');
select ok(:'begun'::jsonb -> 'context' ? 'teachings' and :'begun'::jsonb -> 'context' -> 'client' ? 'opt_out_line',
  '... the teachings and the compliance settings');
select private.sophie_store_analysis(jsonb_build_object('message_id', :'out1'), '{"quality_score": 1, "findings": []}', '{}');
select is(private.sophie_analyze_begin(:'auto_job', (select payload from private.jobs where id = :'auto_job')) ->> 'reason',
  'already_analysed', 'an automatic review of an analysed message is skipped');

-- Analyze RPCs ---------------------------------------------------------------------------------
select tests.create_message(:'lead3', 'Hi Theo') as theirs_msg \gset
select tests.authenticate_as(:'admin');
select private.analyze_message(:'out1') as requested \gset
select ok((:'requested'::jsonb ->> 'job_id')::bigint > 0, 'analyze_message enqueues a job and returns its id');
select is(private.sophie_job_json((:'requested'::jsonb ->> 'job_id')::bigint) ->> 'status', 'queued', '... which the caller can follow');
select ok(analyze_conversation(:'conv1') ? 'job_id', 'analyze_conversation does the same for a thread');
select tests.throws_status(format('select analyze_message(%L)', :'theirs_msg'), 404, null, 'another client''s message is not found');
select tests.throws_status(format('select analyze_conversation(%L)', :'conv3'), 404, null, '... nor their conversation');
select tests.clear_authentication();
select tests.authenticate_as(:'other_admin');
select is(private.sophie_job_json((:'requested'::jsonb ->> 'job_id')::bigint), null, 'another client cannot follow the job');
select tests.clear_authentication();
select tests.authenticate_as(:'restricted');
select tests.throws_status(format('select analyze_conversation(%L)', :'conv2'), 404, null, 'a restricted member cannot analyse a dataset it may not see');
select tests.clear_authentication();
select tests.authenticate_as(:'ro');
select tests.throws_status(format('select analyze_message(%L)', :'out1'), 403, null, 'read-only members cannot request analyses');
select tests.clear_authentication();
insert into private.hourly_budget_uses (bucket, client_id) select 'sophie_analysis', :'acme' from generate_series(1, 1000);
select tests.authenticate_as(:'admin');
select tests.throws_status(format('select analyze_message(%L)', :'out1'), 429, null, 'beyond the budget a manual analysis is a 429');
select tests.clear_authentication();
delete from private.hourly_budget_uses;

-- The 15-minute batch tick -------------------------------------------------------------------
update conversations set last_message_at = now() - interval '1 minute' where id in (:'conv1', :'conv2', :'conv3');
update clients set settings = settings || '{"sophie_auto_review": false}' where id = :'other';
select private.sophie_analysis_tick() as tick_job \gset
select is((select count(*)::int from private.jobs where kind = 'sophie.batch' and id = :'tick_job'), 1, 'the tick enqueues one batch job');
select is((select jsonb_array_length(items) from private.sophie_batches where job_id = :'tick_job'), 2,
  '... for the updated conversations (clients with reviews switched off are left out)');
select is(private.sophie_analysis_tick(), null, 'a second tick finds nothing new: the conversations are held by the batch');
select (select id from private.sophie_batches where job_id = :'tick_job') as batch \gset
select (select i ->> 'custom_id' from private.sophie_batches b, jsonb_array_elements(b.items) i
  where b.id = :'batch' and i ->> 'conversation_id' = :'conv1') as c1 \gset
select private.sophie_batch_store(:'batch', jsonb_build_array(
  jsonb_build_object('custom_id', :'c1', 'status', 'stored', 'result',
    '{"quality_score": 0.6, "findings": [{"severity": "info", "category": "strategy", "title": "Could ask a question"}]}'::jsonb,
    'meta', '{"model": "claude-sonnet-4-6", "cost_usd": 0.001}'::jsonb)
)) as stored \gset
select is(:'stored'::jsonb ->> 'analyses', '1', 'the batch stores its succeeded results');
select results_eq(format($$select c.quality_score, a.via from conversations c join sophie_analyses a on a.conversation_id = c.id
  where c.id = %L and a.via = 'batch'$$, :'conv1'), $$values (0.600::numeric(4,3), 'batch'::text)$$,
  '... as batch analyses that set the conversation''s quality score');
select is(private.sophie_batch_store(:'batch', '[]') ->> 'status', 'already_stored', 'storing a batch twice stores nothing more');
update conversations set last_message_at = now() where id = :'conv3';
select private.sophie_analysis_tick() as tick2 \gset
select is(
  (select array_agg(i ->> 'conversation_id') from private.sophie_batches b, jsonb_array_elements(b.items) i where b.job_id = :'tick2'),
  array[:'conv2'], 'a conversation whose result failed is reviewed at the next run; a stored one is not'
);

-- Pattern statistics ----------------------------------------------------------------------------
select ok(private.two_proportion_p(13, 15, 7, 25) < 0.01, 'two-proportion test: 13/15 against 7/25 is significant');
select ok(private.two_proportion_p(6, 12, 14, 28) > 0.5, '... 6/12 against 14/28 is not');
insert into leads (client_id, dataset_id, first_name, phone_number, contact_status)
select :'acme', :'d2', 'P' || g, '+4477009' || lpad(g::text, 5, '0'), case when g <= 20 then 'CALL_BOOKED' else 'COLD' end::lead_status
from generate_series(1, 40) g;
insert into conversations (client_id, dataset_id, lead_id, message_count, last_message_at)
select client_id, dataset_id, id, 3, now() from leads where dataset_id = :'d2' and first_name like 'P%';
-- Pattern "payment plan": 15 conversations, 13 of them booked; "asks a question": 12, 6 booked;
-- "emoji": 5, all booked (too few for min_occurrences 10).
select private.sophie_store_patterns(9999001, jsonb_build_object('dataset_id', :'d2', 'min_occurrences', 10), jsonb_build_array(
  jsonb_build_object('pattern_key', 'payment_plan', 'pattern_description', 'Mentions the payment plan',
    'suggested_lesson', 'Offer the payment plan early', 'conversation_ids',
    (select jsonb_agg(c.id) from conversations c join leads l on l.id = c.lead_id
     where l.dataset_id = :'d2' and l.first_name in ('P1','P2','P3','P4','P5','P6','P7','P8','P9','P10','P11','P12','P13','P21','P22'))),
  jsonb_build_object('pattern_key', 'question', 'pattern_description', 'Asks a question', 'conversation_ids',
    (select jsonb_agg(c.id) from conversations c join leads l on l.id = c.lead_id
     where l.dataset_id = :'d2' and l.first_name in ('P14','P15','P16','P17','P18','P19','P23','P24','P25','P26','P27','P28'))),
  jsonb_build_object('pattern_key', 'emoji', 'pattern_description', 'Uses an emoji', 'conversation_ids',
    (select jsonb_agg(c.id) from conversations c join leads l on l.id = c.lead_id
     where l.dataset_id = :'d2' and l.first_name in ('P1','P2','P3','P4','P5')))
)) as patterns \gset
select is(
  (select jsonb_object_agg(p ->> 'pattern_description', p ->> 'recommended_action') from jsonb_array_elements(:'patterns'::jsonb -> 'patterns') p),
  '{"Mentions the payment plan": "adopt", "Asks a question": "test_more", "Uses an emoji": "test_more"}'::jsonb,
  'a frequent, significant pattern is adopt; an insignificant or rare one is test_more'
);
select is(
  (select p -> 'occurrences' from jsonb_array_elements(:'patterns'::jsonb -> 'patterns') p where p ->> 'pattern_description' = 'Mentions the payment plan'),
  '15'::jsonb, 'occurrences are counted here, not taken from Claude');
select is((select array_agg(title) from sophie_insights where pattern_id is not null), array['Works well: Mentions the payment plan'],
  'only the significant pattern becomes an insight');
select ok((select p_value < 0.05 from sophie_insights where pattern_id is not null), '... with its p-value stored');

-- Daily pattern tick, 3 am in the client's time zone ----------------------------------------------
select is(private.sophie_pattern_tick('2026-06-10 01:30+00'), 0, 'at 2:30 London time nothing is queued');
select ok(private.sophie_pattern_tick(now() - (extract(hour from now() at time zone 'Europe/London') - 3) * interval '1 hour') >= 1,
  'at 3 am London time every active dataset gets a pattern job');

-- Realtime: the insights feed shows a subscriber exactly what GET sophie/insights shows ------------
insert into sophie_insights (client_id, dataset_id, lead_id, severity, category, title) values
  (:'acme', :'d1', :'lead1', 'warning', 'tone', 'visible'), (:'acme', :'d2', :'lead2', 'warning', 'tone', 'hidden');
select tests.authenticate_as(:'restricted');
select is(
  (select array_agg(id order by id) from sophie_insights where status in ('pending', 'viewed')),
  (select array_agg((i ->> 'id')::uuid order by (i ->> 'id')::uuid) from jsonb_array_elements(get_insights("limit" => 200) -> 'insights') i),
  'the select policy Realtime applies lets a restricted member see exactly the insights the route lists'
);
select tests.clear_authentication();

select * from finish();
rollback;
