-- The deterministic opt-out layer: the phrase set as data, the normalised text, and the ingest
-- opting out on a phrase in every AI mode (no AI job for it), while harmless uses of the same
-- words reach the AI (or, in off mode, the AI's opt-out classification).
begin;
select plan(19);

-- the phrase set --------------------------------------------------------------------------
select ok((select count(*) from private.opt_out_phrases) >= 50, 'a maintained phrase set');
select is((select count(*)::integer from private.opt_out_phrases where trim(reason) = ''), 0, 'every rule has its reason');
select is((select count(*)::integer from private.opt_out_phrases where language in ('es', 'pl', 'cy') and kind <> 'guard')
  >= 15, true, 'Spanish, Polish and Welsh forms');
select is((select array_agg(example order by id) from private.opt_out_phrases
  where kind <> 'guard' and example is not null and not private.is_opt_out_text(example)), null,
  'every phrase and keyword matches its own example');
select is((select array_agg(example order by id) from private.opt_out_phrases
  where kind = 'guard' and example is not null and private.is_opt_out_text(example)), null,
  'no guard''s example is read as an opt-out');
select throws_ok($$insert into private.opt_out_phrases (kind, pattern, reason) values ('phrase', 'stop (', 'broken')$$,
  '2201B', null, 'an invalid pattern is refused');
select throws_ok($$insert into private.opt_out_phrases (kind, pattern, reason) values ('phrase', 'x*', 'matches everything')$$,
  '23514', null, 'a pattern matching the empty text is refused');

select is(private.opt_out_normalise(E'  STOOOOP!!! \U0001F621  Don''t\ntext  me… '), 'stop dont text me',
  'case, emoji, punctuation, apostrophes, repeated letters and whitespace normalised');
select is(private.opt_out_normalise('No me escribas MÁS. Usuń mój numer'), 'no me escribas mas usun moj numer', 'accents folded');
select results_eq($$select kind from private.opt_out_match('Can''t stop thinking about the kitchen') union all
  select kind from private.opt_out_match('stop by at 2') union all select kind from private.opt_out_match('don''t stop')$$,
  $$select null::text where false$$, 'guards: "can''t stop thinking", "stop by", "don''t stop"');

-- the ingest in every mode ----------------------------------------------------------------
select tests.create_client('Phrase client') as c \gset
update public.clients set twilio_phone_number = '+447700900950' where id = :'c';
select tests.create_user('admin@phrases.test', :'c', 'admin') as admin \gset
insert into public.datasets (client_id, name, ai_mode) values (:'c', 'off list', 'off') returning id as d_off \gset
insert into public.datasets (client_id, name, ai_mode) values (:'c', 'auto list', 'auto') returning id as d_auto \gset
insert into public.leads (client_id, dataset_id, first_name, last_name, phone_number, contact_status) values
  (:'c', :'d_off', 'Ann', 'Off', '+447700900951', 'M1_SENT'), (:'c', :'d_off', 'Bob', 'Off', '+447700900952', 'M1_SENT'),
  (:'c', :'d_auto', 'Cat', 'Auto', '+447700900953', 'M1_SENT'), (:'c', :'d_auto', 'Dan', 'Auto', '+447700900954', 'M1_SENT');

create function tests.phrase_in(p_from text, p_body text, p_sid text) returns jsonb
language sql as $$
  select private.ingest_twilio_webhook(jsonb_build_object(
    'MessageSid', p_sid, 'AccountSid', 'AC' || repeat('0', 32), 'From', p_from, 'To', '+447700900950',
    'Body', p_body, 'NumMedia', '0', 'SmsStatus', 'received'))
$$;

select is(tests.phrase_in('+447700900951', 'No. Stop please!!', 'SMp1') ->> 'action', 'opted_out', 'AI off: "No. Stop please!!" opts out');
select results_eq($$select source, reason ~ 'opt-out rule [0-9]+' from public.suppressions where phone_number = '+447700900951'$$,
  $$values ('inbound_phrase', true)$$, 'suppressed by the phrase set, the rule named in the reason');
select is(tests.phrase_in('+447700900952', 'Stop by at 2 if you like', 'SMp2') ->> 'action', 'notified',
  'AI off: "stop by at 2" is a reply for staff');
select is((select count(*)::integer from private.jobs where kind = 'ai.classify_opt_out' and payload ->> 'inbound_message_id' =
  (select id::text from public.messages where twilio_sid = 'SMp2')), 1, 'and the AI still classifies it (no reply)');
select is(tests.phrase_in('+447700900953', 'Not interested, don''t text again', 'SMp3') ->> 'action', 'opted_out',
  'auto: "not interested, don''t text again" opts out before the AI');
select is((select count(*)::integer from private.jobs where kind like 'ai.%' and payload ->> 'inbound_message_id' =
  (select id::text from public.messages where twilio_sid = 'SMp3')), 0, 'no AI job for it');
select ok(exists (select from public.notifications where client_id = :'c' and title = 'Opted out: Cat Auto'), 'staff are told');
select is(tests.phrase_in('+447700900954', 'unsubscribe from what? I''d like a quote', 'SMp4') ->> 'action', 'ai_reply',
  'auto: "unsubscribe from what? I''d like a quote" goes to the AI');
select is((select count(*)::integer from public.leads where client_id = :'c' and opted_out), 2, 'exactly the two opt-outs');

select * from finish();
rollback;
