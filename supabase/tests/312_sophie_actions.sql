-- Sophie's insights: the contract-shaped list and its summary, opening, agree / disagree / dismiss
-- with their permissions and one-action rule, storing findings (fingerprint dedupe, taught
-- kinds suppressed), urgent notifications, and the tenant walls around all of it.
begin;
set local search_path = public, extensions;
set local client_min_messages = warning;
select plan(48);

select tests.create_client('Acme') as acme \gset
select tests.create_client('Other') as other \gset
select tests.create_user('admin@acme.test', :'acme', 'admin') as admin \gset
select tests.create_user('manager@acme.test', :'acme', 'manager') as manager \gset
select tests.create_user('editor@acme.test', :'acme', 'sales_rep', 'active', true, null, true) as editor \gset
select tests.create_user('rep@acme.test', :'acme', 'sales_rep') as rep \gset
select tests.create_user('ro@acme.test', :'acme', 'read_only') as ro \gset
select tests.create_user('other@other.test', :'other', 'admin') as other_admin \gset
select tests.create_dataset(:'acme', 'One') as d1 \gset
select tests.create_dataset(:'acme', 'Two') as d2 \gset
select tests.create_dataset(:'other', 'Theirs') as d3 \gset
select tests.create_user('restricted@acme.test', :'acme', 'sales_rep', 'active', false, array[:'d1'::uuid]) as restricted \gset
select tests.create_lead(:'d1', 'Sam') as lead1 \gset
select tests.create_lead(:'d2', 'Alex') as lead2 \gset
select tests.create_lead(:'d3', 'Theo') as lead3 \gset
select tests.create_message(:'lead1', 'Hi Sam, still after new windows? Definately worth a chat!') as m1 \gset
select tests.create_message(:'lead2', 'Hi Alex, quick question about your quote') as m2 \gset
select tests.create_message(:'lead3', 'Hi Theo') as m3 \gset

-- Storing findings --------------------------------------------------------------------------
select tests.authenticate_as_service_role();
select private.sophie_store_analysis(
  jsonb_build_object('message_id', :'m1'),
  '{"quality_score": 0.42, "summary": "No opt-out line and a misspelling.", "findings": [
    {"severity": "critical", "category": "compliance", "title": "First message has no opt-out instruction",
     "description": "UK rules need a way to opt out on the first message.", "suggestion": "Add Reply STOP to opt out.",
     "original_text": "Hi Sam, still after new windows?", "suggested_text": "Hi Sam, still after new windows? Reply STOP to opt out.",
     "pattern": "missing_opt_out"},
    {"severity": "suggestion", "category": "grammar", "title": "Misspelling: definately",
     "description": "definately should be definitely", "suggestion": "Use definitely.",
     "original_text": "Definately", "suggested_text": "Definitely", "pattern": "misspelling:definately"}
  ]}'::jsonb,
  '{"via": "request", "model": "claude-sonnet-4-6", "usage": {"input_tokens": 900, "output_tokens": 120}, "cost_usd": 0.0045}'::jsonb
) as first_store \gset
select is((:'first_store'::jsonb ->> 'stored')::int, 2, 'an analysis stores one insight per finding');
select results_eq(
  format($$select ai_quality_score, sophie_feedback, sophie_feedback_status from messages where id = %L$$, :'m1'),
  $$values (0.420::numeric(4,3), 'No opt-out line and a misspelling.'::text, 'issues_found'::text)$$,
  'the message''s quality score and Sophie feedback fields are filled from it'
);
select results_eq(
  format($$select input_tokens, output_tokens, cost_usd::numeric, model from sophie_analyses where message_id = %L$$, :'m1'),
  $$values (900, 120, 0.0045::numeric, 'claude-sonnet-4-6'::text)$$,
  'the analysis records its token usage and cost'
);
select private.sophie_store_analysis(
  jsonb_build_object('message_id', :'m1'),
  '{"quality_score": 0.40, "summary": "Again.", "findings": [
    {"severity": "critical", "category": "compliance", "title": "Opt-out line missing (reworded)",
     "original_text": "Hi  Sam, still after new windows? ", "pattern": "Missing opt-out"}]}'::jsonb,
  '{"via": "request"}'::jsonb
) as second_store \gset
select is(:'second_store'::jsonb ->> 'stored', '0', 'the same finding on the same message is not stored twice');
select is(:'second_store'::jsonb ->> 'duplicates', '1', '... it is counted as a duplicate');
select is((select count(*)::int from sophie_insights where message_id = :'m1'), 2, 'still two insights on the message');

select private.sophie_store_analysis(jsonb_build_object('message_id', :'m2'),
  '{"quality_score": 0.8, "findings": [{"severity": "warning", "category": "tone", "title": "Pushy", "pattern": "pressure_language", "original_text": "quick question"}]}'::jsonb,
  '{}'::jsonb);
select private.sophie_store_analysis(jsonb_build_object('message_id', :'m3'),
  '{"quality_score": 0.9, "findings": [{"severity": "urgent", "category": "timing", "title": "Sent at night", "pattern": "late_send"}]}'::jsonb,
  '{}'::jsonb);
select tests.clear_authentication();

-- Notifications: critical (sophie_critical: admins) and urgent (sophie_urgent: admins and
-- managers) at once.
select results_eq(
  format($$select count(*)::int from notifications where client_id = %L and data ->> 'severity' = 'critical'$$, :'acme'),
  $$values (1)$$, 'a critical finding notifies the client''s admin'
);
select is(
  (select array_agg(distinct m.role::text order by m.role::text) from notifications n
   join client_members m on m.user_id = n.user_id where n.client_id = :'acme' and n.data ? 'insight_id'),
  array['admin'], '... nobody else'
);
select is((select priority from notifications where client_id = :'acme' and data ->> 'severity' = 'critical' limit 1),
  'immediate', '... with immediate priority');
select is((select count(*)::int from notifications where data ->> 'severity' = 'warning'), 0,
  'a warning notifies nobody');
select is((select count(*)::int from notifications where client_id = :'other' and data ? 'insight_id'), 1,
  'the other client''s urgent finding notifies its own admin');
select tests.create_user('manager@other.test', :'other', 'manager') as other_manager \gset
select tests.authenticate_as_service_role();
select private.sophie_store_analysis(jsonb_build_object('message_id', :'m3'),
  '{"quality_score": 0.5, "findings": [{"severity": "urgent", "category": "booking", "title": "Wrong time", "pattern": "wrong_time"}]}'::jsonb,
  '{}'::jsonb);
select tests.clear_authentication();
select is(
  (select array_agg(m.role::text order by m.role::text) from notifications n join client_members m on m.user_id = n.user_id
   where n.client_id = :'other' and n.data ->> 'category' = 'booking'),
  array['admin', 'manager'], 'an urgent finding reaches admins and managers'
);

-- GET sophie/insights ----------------------------------------------------------------------
select tests.authenticate_as(:'rep');
select get_insights() as listed \gset
select is(jsonb_array_length(:'listed'::jsonb -> 'insights'), 3, 'a member lists every open insight of their client');
select is(:'listed'::jsonb -> 'summary', '{"critical": 1, "urgent": 0, "warning": 1, "suggestion": 1, "info": 0}'::jsonb,
  'the summary counts them by severity');
select is(
  (select array_agg(k order by k) from jsonb_object_keys(:'listed'::jsonb -> 'insights' -> 0) k),
  array['affected_leads_count', 'category', 'conversation_id', 'created_at', 'dataset_id', 'description', 'id',
    'lead_id', 'message_id', 'original_text', 'severity', 'status', 'suggested_text', 'suggestion', 'title'],
  'each insight has the API contract''s fields'
);
select is(:'listed'::jsonb -> 'insights' -> 0 ->> 'severity', 'critical', 'most severe first');
select is(jsonb_array_length(get_insights(category => 'tone') -> 'insights'), 1, 'filter by category');
select is(jsonb_array_length(get_insights(dataset_id => :'d2') -> 'insights'), 1, 'filter by dataset');
select is(jsonb_array_length(get_insights(severity => 'critical') -> 'insights'), 1, 'filter by severity ...');
select is(get_insights(severity => 'critical') -> 'summary' -> 'warning', '1'::jsonb, '... the summary still counts every severity');
select is(jsonb_array_length(get_insights("limit" => 1) -> 'insights'), 1, 'limit caps the list');
select tests.throws_status($$select get_insights(severity => 'huge')$$, 400, null, 'an unknown severity is a 400');
select tests.throws_status($$select get_insights("limit" => 0)$$, 400, null, 'a limit below 1 is a 400');
select tests.clear_authentication();

select tests.authenticate_as(:'restricted');
select is(jsonb_array_length(get_insights() -> 'insights'), 2, 'a restricted member sees only their datasets'' insights');
select tests.clear_authentication();
select tests.authenticate_as(:'other_admin');
select is(jsonb_array_length(get_insights() -> 'insights'), 2, 'another client sees only its own');
select (select id from sophie_insights limit 1) as theirs \gset
select tests.clear_authentication();

select id as crit from sophie_insights where message_id = :'m1' and severity = 'critical' \gset
select id as gram from sophie_insights where message_id = :'m1' and category = 'grammar' \gset
select id as tone from sophie_insights where message_id = :'m2' \gset

-- Opening -----------------------------------------------------------------------------------
select tests.authenticate_as(:'rep');
select is(get_insight(:'crit') -> 'insight' ->> 'status', 'viewed', 'opening an insight marks it viewed');
select tests.throws_status(format('select get_insight(%L)', :'theirs'), 404, null, 'another client''s insight is not found');
select tests.clear_authentication();
select tests.authenticate_as(:'restricted');
select tests.throws_status(format('select get_insight(%L)', :'tone'), 404, null, 'nor one of a dataset the member may not see');
select tests.clear_authentication();

-- Agree ------------------------------------------------------------------------------------
select tests.authenticate_as(:'rep');
select tests.throws_status(format($$select agree_insight(%L, 'yes')$$, :'crit'), 403, null,
  'a member without lesson editing cannot agree');
select tests.throws_status(format($$select disagree_insight(%L, 'no', 'other')$$, :'crit'), 403, null, '... nor disagree');
select tests.clear_authentication();
select tests.authenticate_as(:'editor');
select tests.throws_status(format($$select agree_insight(%L, 'yes', null, 11)$$, :'crit'), 400, null, 'lesson_priority above 10 is a 400');
select agree_insight(:'crit', 'Every first message must say how to opt out.', 'Always add the opt-out line', 9) as agreed \gset
select is(:'agreed'::jsonb ->> 'insight_updated', 'true', 'agree answers insight_updated: true');
select is(:'agreed'::jsonb -> 'lesson' ->> 'status', 'active', '... with an active lesson');
select results_eq(
  format($$select l.title, l.lesson_type::text, l.priority::int, l.reasoning, l.source_insight_id, i.status::text, i.lesson_id
           from lessons l join sophie_insights i on i.id = l.source_insight_id where l.id = %L$$, :'agreed'::jsonb -> 'lesson' ->> 'id'),
  format($$values ('Always add the opt-out line'::text, 'compliance'::text, 9, 'Every first message must say how to opt out.'::text, %L::uuid, 'approved_and_learned'::text, %L::uuid)$$,
    :'crit', :'agreed'::jsonb -> 'lesson' ->> 'id'),
  'the lesson carries the note in its reasoning; the insight is approved_and_learned and linked both ways'
);
select tests.throws_status(format($$select agree_insight(%L, 'again')$$, :'crit'), 409, null, 'a second agree is a 409');
select tests.throws_status(format($$select dismiss_insight(%L)$$, :'crit'), 409, null, '... and so is dismissing it afterwards');
select tests.throws_status(format($$select agree_insight(%L, 'x')$$, :'theirs'), 404, null, 'another client''s insight cannot be acted on');
select tests.clear_authentication();

-- Disagree and its effect on later analyses ------------------------------------------------------
select tests.authenticate_as(:'admin');
select tests.throws_status(format($$select disagree_insight(%L, '', 'x')$$, :'tone'), 400, null, 'teaching_note is required');
select disagree_insight(:'tone', 'Our customers like a direct question.', 'Ask the question plainly.') as disagreed \gset
select is(:'disagreed'::jsonb ->> 'sophie_updated', 'true', 'disagree answers sophie_updated: true');
select is(:'disagreed'::jsonb -> 'lesson' ->> 'lesson_type', 'dos_donts', '... with a negative dos_donts lesson');
select tests.clear_authentication();
select is((select status::text from sophie_insights where id = :'tone'), 'taught_sophie', 'the insight is taught_sophie');
select is(
  (select teaching ->> 'teaching_note' from jsonb_array_elements(private.sophie_teachings(:'acme')) teaching),
  'Our customers like a direct question.', 'Sophie''s context carries the teaching from now on'
);
insert into messages (client_id, dataset_id, conversation_id, lead_id, direction, message_category, status, content)
select client_id, dataset_id, conversation_id, lead_id, 'outbound', 'human_manual', 'sent', 'Quick question: are you free this week?'
from messages where id = :'m2' returning id as m2b \gset
select private.sophie_store_analysis(jsonb_build_object('message_id', :'m2b'),
  '{"quality_score": 0.7, "findings": [{"severity": "warning", "category": "tone", "title": "Pushy again", "pattern": "pressure_language", "original_text": "Quick question"},
   {"severity": "info", "category": "strategy", "title": "Could mention the survey", "pattern": "mention_survey"}]}'::jsonb,
  '{}'::jsonb) as after_teaching \gset
select is(:'after_teaching'::jsonb ->> 'suppressed', '1', 'a finding of the kind staff disagreed with is not raised again');
select is((select array_agg(title) from sophie_insights where message_id = :'m2b'), array['Could mention the survey'],
  '... other findings still are');

-- Dismiss ----------------------------------------------------------------------------------
select tests.authenticate_as(:'ro');
select tests.throws_status(format($$select dismiss_insight(%L)$$, :'gram'), 403, null, 'read-only members cannot dismiss');
select tests.clear_authentication();
select tests.authenticate_as(:'rep');
select is(dismiss_insight(:'gram', 'We spell it our way') -> 'insight' ->> 'status', 'dismissed', 'dismiss marks it dismissed');
select tests.clear_authentication();
select is((select action_note from sophie_insights where id = :'gram'), 'We spell it our way', '... the reason is stored');

-- Make-live afterwards includes the agreed and the taught lessons ---------------------------------
select tests.authenticate_as(:'admin');
select make_prompt_live('reply') as live \gset
select tests.clear_authentication();
select ok(
  (select lesson_ids @> array[(:'agreed'::jsonb -> 'lesson' ->> 'id')::uuid, (:'disagreed'::jsonb -> 'lesson' ->> 'id')::uuid]
   from prompts where id = (:'live'::jsonb -> 'prompt' ->> 'id')::uuid),
  'a prompt made live afterwards includes the lessons from agree and disagree'
);

select * from finish();
rollback;
