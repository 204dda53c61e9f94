-- AI modes and the reply re-checks: effective_ai_mode (conversation -> dataset -> client ->
-- auto; manual mode -> off), the reasons the AI must not answer, the commit re-check under the
-- lead lock (superseded, manual mode, safeguard), and the safeguard's counter resets.
begin;
set local search_path = public, extensions;
set local client_min_messages = warning;
select plan(22);

select tests.create_client('Acme') as acme \gset
select tests.create_user('admin@acme.test', :'acme', 'admin') as admin \gset
update clients set twilio_phone_number = '+447000100200' where id = :'acme';
insert into datasets (client_id, name) values (:'acme', 'List') returning id as ds \gset
insert into leads (client_id, dataset_id, phone_number, first_name) values (:'acme', :'ds', '+447700932001', 'Ann')
returning id as ann \gset
insert into conversations (client_id, dataset_id, lead_id) values (:'acme', :'ds', :'ann') returning id as cv \gset

-- effective_ai_mode -----------------------------------------------------------------------
select is(private.effective_ai_mode(:'cv'), 'auto'::ai_mode, 'auto by default');
update clients set settings = settings || '{"ai_mode": "suggest"}' where id = :'acme';
select is(private.effective_ai_mode(:'cv'), 'suggest'::ai_mode, 'the client setting applies');
update datasets set ai_mode = 'off' where id = :'ds';
select is(private.effective_ai_mode(:'cv'), 'off'::ai_mode, 'the dataset overrides the client');
update conversations set ai_mode = 'auto' where id = :'cv';
select is(private.effective_ai_mode(:'cv'), 'auto'::ai_mode, 'the conversation overrides the dataset');
update leads set manual_mode = true where id = :'ann';
select is(private.effective_ai_mode(:'cv'), 'off'::ai_mode, 'manual mode is always off');
update leads set manual_mode = false where id = :'ann';
update clients set settings = settings || '{"ai_mode": "bogus"}' where id = :'acme';
update datasets set ai_mode = null where id = :'ds';
update conversations set ai_mode = null where id = :'cv';
select is(private.effective_ai_mode(:'cv'), 'auto'::ai_mode, 'an invalid client setting falls back to auto');
select is(private.effective_ai_mode(gen_random_uuid()), null, 'null for an unknown conversation');

-- reasons not to answer ---------------------------------------------------------------------
insert into messages (client_id, dataset_id, conversation_id, lead_id, direction, message_category, status, content,
  created_at)
values (:'acme', :'ds', :'cv', :'ann', 'inbound', 'lead_reply', 'received', 'first', now() - interval '2 minutes')
returning id as in1 \gset
select is(private.ai_reply_blocker(:'cv', :'in1'), null, 'the latest inbound message may be answered');
select is(private.ai_reply_blocker(:'cv', gen_random_uuid()), 'not_found', 'an unknown message is not_found');
update leads set archived = true where id = :'ann';
select is(private.ai_reply_blocker(:'cv', :'in1'), 'archived', 'an archived lead is not answered');
update leads set archived = false, opted_out = true where id = :'ann';
select is(private.ai_reply_blocker(:'cv', :'in1'), 'opted_out', 'an opted-out lead is not answered');
update leads set opted_out = false where id = :'ann';
update datasets set ai_mode = 'off' where id = :'ds';
select is(private.ai_reply_blocker(:'cv', :'in1'), 'ai_off', 'AI off is not answered');
update datasets set ai_mode = null where id = :'ds';

-- the commit re-checks under the lock ---------------------------------------------------
insert into messages (client_id, dataset_id, conversation_id, lead_id, direction, message_category, status, content,
  created_at)
values (:'acme', :'ds', :'cv', :'ann', 'inbound', 'lead_reply', 'received', 'second', now() - interval '1 minute')
returning id as in2 \gset
\set decision '{"reply_text": "Hello Ann", "contact_status": "WARM", "lead_sentiment": "POSITIVE", "confidence": 0.9, "reasoning": "r", "lessons_applied": [], "booking_intent": "none", "chosen_slot": null, "opt_out_intent": false, "handover": false, "handover_reason": null}'
select is(
  private.ai_reply_commit(:'cv', :'in1', :'decision'::jsonb, '{"confidence": 0.9}') ->> 'status', 'superseded',
  'an answer to an older message is not sent once the lead wrote again'
);
update leads set manual_mode = true where id = :'ann';
select is(
  private.ai_reply_commit(:'cv', :'in2', :'decision'::jsonb, '{}') ->> 'reason', 'manual_mode',
  'manual mode switched on while Claude was thinking stops the answer'
);
update leads set manual_mode = false where id = :'ann';
select is(
  private.ai_reply_commit(:'cv', :'in2', :'decision'::jsonb, '{"confidence": 0.9, "reasoning": "r"}') ->> 'status',
  'sent', 'the answer to the latest message is queued'
);
select results_eq(
  format($$select status::text, message_category::text, ai_generated, ai_metadata ->> 'inbound_message_id'
    from messages where lead_id = %L and direction = 'outbound'$$, :'ann'),
  format($$values ('pending', 'ai_response', true, %L)$$, :'in2'),
  'through queue_sms, with the AI record'
);
select results_eq(
  format($$select contact_status::text, lead_sentiment::text from leads where id = %L$$, :'ann'),
  $$values ('WARM', 'POSITIVE')$$, 'the lead''s status and sentiment follow the decision'
);
select is(
  private.ai_reply_commit(:'cv', :'in2', :'decision'::jsonb, '{}') ->> 'status', 'already_answered',
  'a second commit for the same message sends nothing'
);

-- safeguard -------------------------------------------------------------------------------
update clients set settings = settings || '{"ai_max_consecutive_messages": 1}' where id = :'acme';
insert into messages (client_id, dataset_id, conversation_id, lead_id, direction, message_category, status, content)
values (:'acme', :'ds', :'cv', :'ann', 'inbound', 'lead_reply', 'received', 'third') returning id as in3 \gset
select is(
  private.ai_reply_begin(:'cv', :'in3'), '{"action": "skip", "reason": "safeguard"}'::jsonb,
  'the cap reached: no more AI answers'
);
select results_eq(
  format($$select c.status::text, l.manual_mode from conversations c join leads l on l.id = c.lead_id
    where c.id = %L$$, :'cv'),
  $$values ('needs_human', true)$$, 'and the conversation is handed to a person'
);
select is(
  (select count(*)::integer from notifications where client_id = :'acme' and title = 'Conversation needs a person'),
  1, 'staff are notified'
);
update leads set manual_mode = false where id = :'ann';
select is(
  (select ai_consecutive_messages from conversations where id = :'cv'), 0,
  'switching manual mode off gives the AI a fresh allowance'
);

select * from finish();
rollback;
