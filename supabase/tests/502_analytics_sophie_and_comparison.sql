-- sophie_impact and dataset_comparison: the API contract's shapes, the z-test against a textbook
-- example, "not enough data" below the minimum, lesson scores, and who sees what.
begin;
set local search_path = public, extensions;
set local client_min_messages = warning;
select plan(30);

-- The z-test. Agresti & Franklin, "Statistics: The Art and Science of Learning from Data",
-- the Physicians' Health Study: cancer deaths 347 of 11,535 on placebo, 327 of 14,035 on
-- aspirin. The book reports z = 3.5 from proportions rounded to 0.030 and 0.023 (se 0.002);
-- unrounded, the pooled test gives z = -3.369 (aspirin second) and a two-sided P of 0.00075.
select private.two_proportion_z_test(347, 11535, 327, 14035) as t \gset
select ok(abs((:'t'::jsonb ->> 'z')::float8 - (-3.36928)) < 0.0001, 'textbook example: z = -3.369');
select ok(abs((:'t'::jsonb ->> 'p_value')::float8 - 0.000754) < 0.000001, 'textbook example: two-sided P = 0.00075');
select ok(abs((:'t'::jsonb ->> 'confidence')::float8 - 0.999246) < 0.000001, 'confidence = 1 - P');
select is(private.two_proportion_z_test(3, 29, 10, 40) ->> 'enough_data', 'false', 'fewer than 30 in a group: not enough data');
select is(private.two_proportion_z_test(1, 100, 2, 100) ->> 'enough_data', 'false',
  'fewer than 5 expected successes: not enough data');
select ok(abs(private.normal_cdf(1.959963985) - 0.975) < 0.0000001, 'normal CDF at the 97.5% quantile');

select * from tests.create_world() \gset
-- Lessons and two prompt versions: v1 before any lesson, v2 with two lessons.
insert into lessons (client_id, scope, title) values (:'client_a', 'client_specific', 'Offer two times') returning id as les1 \gset
insert into lessons (client_id, scope, title) values (:'client_a', 'client_specific', 'Name the benefit') returning id as les2 \gset
insert into lessons (client_id, scope, title, status) values (:'client_a', 'client_specific', 'Old idea', 'archived');
insert into prompts (client_id, prompt_type, name, system_prompt, version, lesson_ids)
values (:'client_a', 'reply', 'Reply', 'Be helpful.', 101, '{}') returning id as v1 \gset
insert into prompts (client_id, prompt_type, name, system_prompt, version, lesson_ids)
values (:'client_a', 'reply', 'Reply', 'Be helpful.', 102, array[:'les1', :'les2']::uuid []) returning id as v2 \gset
insert into sophie_insights (client_id, dataset_id, severity, category, title, status)
values (:'client_a', :'ds_a1', 'warning', 'tone', 'Too pushy', 'approved_and_learned'),
  (:'client_a', :'ds_a2', 'info', 'tone', 'Fine', 'pending'),
  (:'client_a', null, 'info', 'grammar', 'Typos', 'dismissed');

-- 80 leads in A1 answered by the AI: 1..40 with v1 (8 booked within the window, 2 only after
-- 10 days), 41..80 with v2 (16 booked within the window). Each got an M1, then the answer.
insert into leads (client_id, dataset_id, phone_number, m1_sent_at, sequence_step, reply_received_at, call_booked)
select :'client_a', :'ds_a1', '+4479000' || lpad(i::text, 5, '0'), timestamptz '2026-03-01 09:00Z', 1,
  timestamptz '2026-03-01 10:00Z', i <= 10 or i between 41 and 56
from generate_series(1, 80) i;
insert into messages (client_id, dataset_id, conversation_id, lead_id, direction, message_category, status, content,
  sent_at, created_at, ai_generated, ai_metadata)
select l.client_id, l.dataset_id, tests.create_conversation(l.id), l.id, 'outbound', x.cat::message_category, 'delivered', 'm',
  x.at, x.at, x.cat = 'ai_response',
  case when x.cat = 'ai_response' then jsonb_build_object('prompt_version_id',
    case when substr(l.phone_number, 9)::int <= 40 then :'v1' else :'v2' end) else '{}' end
from leads l
cross join (values ('m1', timestamptz '2026-03-01 09:00Z'), ('ai_response', timestamptz '2026-03-01 11:00Z')) x (cat, at)
where l.phone_number like '+4479000%';
insert into bookings (client_id, dataset_id, lead_id, cal_booking_uid, start_time, end_time, source, created_at)
select l.client_id, l.dataset_id, l.id, 'b-' || l.phone_number, '2026-03-20 10:00Z', '2026-03-20 10:30Z', 'ai',
  case when substr(l.phone_number, 9)::int in (9, 10) then timestamptz '2026-03-11 12:00Z' else timestamptz '2026-03-02 12:00Z' end
from leads l where l.call_booked and l.phone_number like '+4479000%';

select tests.authenticate_as(:'a_admin');
select public.sophie_impact() as s \gset
select is(
  array(select jsonb_object_keys(:'s'::jsonb) order by 1),
  array['performance_improvement', 'sophie_metrics', 'top_lessons'], 'sophie-impact: the API contract''s keys'
);
select is(
  :'s'::jsonb -> 'sophie_metrics',
  '{"insights_generated": 3, "insights_approved": 1, "lessons_created": 3, "lessons_active": 2}'::jsonb,
  'sophie metrics'
);
select is((:'s'::jsonb -> 'performance_improvement' ->> 'baseline_booking_rate')::numeric, 20.0,
  'baseline: 8 of 40 booked within the window (the two late bookings do not count)');
select is((:'s'::jsonb -> 'performance_improvement' ->> 'current_booking_rate')::numeric, 40.0, 'with lessons: 16 of 40');
select is((:'s'::jsonb -> 'performance_improvement' ->> 'improvement_percent')::numeric, 100.0, 'improvement: +100%');
select is((:'s'::jsonb -> 'performance_improvement' ->> 'confidence_level')::numeric, 0.9490,
  'confidence: 1 - P of the z-test (z = 1.952, P = 0.051)');
select is((:'s'::jsonb -> 'performance_improvement' ->> 'z_score')::numeric, 1.952, 'z score');
select is(:'s'::jsonb -> 'top_lessons' -> 0 -> 'times_applied', '40'::jsonb, 'a lesson applied to 40 AI messages');
select is(:'s'::jsonb -> 'top_lessons' -> 0 -> 'success_rate', '40.0'::jsonb, 'its success rate');
select is(:'s'::jsonb -> 'top_lessons' -> 0 -> 'impact_score', '8.00'::jsonb,
  'impact: 40 applications x (40% - 20% baseline) = 8 bookings above the baseline');
select is(jsonb_array_length(:'s'::jsonb -> 'top_lessons'), 2, 'only applied lessons are ranked');

select public.dataset_comparison() as c \gset
select is(
  (select array_agg(e ->> 'name' order by e ->> 'name') from jsonb_array_elements(:'c'::jsonb -> 'datasets') e),
  array['A one', 'A two'], 'dataset comparison: every visible dataset'
);
select is(
  (:'c'::jsonb -> 'datasets' -> 0) - 'dataset_id',
  '{"name": "A one", "total_leads": 81, "reply_rate": 100.0, "booking_rate": 32.5, "conversion_rate": 0,
    "avg_messages_to_booking": 2.0, "top_performing_lessons": ["Name the benefit", "Offer two times"]}'::jsonb,
  'A1: 80 messaged, all replied, 26 booked; two messages before each booking; the lessons used there'
);
select is(
  (:'c'::jsonb -> 'datasets' -> 1 -> 'avg_messages_to_booking'), 'null'::jsonb, 'no booking: no average'
);
select is(public.dataset_comparison(), private.dataset_comparison(true), 'the counters agree with the raw rows');

-- Who sees what.
select tests.clear_authentication();
select tests.authenticate_as(:'a_restricted');
select is(
  (select array_agg(e ->> 'name') from jsonb_array_elements(public.dataset_comparison() -> 'datasets') e),
  array['A one'], 'a member restricted to A1 compares A1 only'
);
select is(
  (public.sophie_impact() -> 'sophie_metrics' ->> 'insights_generated')::int, 2,
  'and counts the insights it may see (A1''s and client-wide ones)'
);
select tests.clear_authentication();
select tests.authenticate_as(:'b_admin');
select is(
  (select array_agg(e ->> 'name') from jsonb_array_elements(public.dataset_comparison() -> 'datasets') e),
  array['B one'], 'another tenant sees its own dataset only'
);
select public.sophie_impact() -> 'performance_improvement' as b \gset
select is(:'b'::jsonb -> 'confidence_level', 'null'::jsonb, 'no AI answers: no confidence level');
select is(:'b'::jsonb ->> 'note', 'not enough data: fewer than 30 conversations in a group', 'it says there is not enough data');
select is(
  public.sophie_impact() -> 'sophie_metrics', '{"insights_generated": 0, "insights_approved": 0, "lessons_created": 0,
    "lessons_active": 0}'::jsonb, 'and none of the other tenant''s insights or lessons'
);
-- A member without a dataset list sees the leads assigned to it: its comparison counts them.
select tests.clear_authentication();
select tests.create_user('assigned@a.test', :'client_a', 'sales_rep', p_can_view_all_leads => false) as assigned \gset
update leads set assigned_to = :'assigned' where phone_number in ('+447900000001', '+447900000041');
select tests.authenticate_as(:'assigned');
select is(
  (public.dataset_comparison() -> 'datasets' -> 0) - 'dataset_id' - 'top_performing_lessons',
  '{"name": "A one", "total_leads": 2, "reply_rate": 100.0, "booking_rate": 100.0, "conversion_rate": 0,
    "avg_messages_to_booking": 2.0}'::jsonb,
  'an assigned-leads-only member compares its two leads (both booked) in their dataset only'
);
select is(jsonb_array_length(public.dataset_comparison() -> 'datasets'), 1, 'and no other dataset');
select tests.clear_authentication();
select tests.authenticate_as_anon();
select tests.throws_status('select public.sophie_impact()', 401, null, 'anonymous callers are refused');
select tests.clear_authentication();

select * from finish();
rollback;
