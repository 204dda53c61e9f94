-- Outreach rules, pure helpers: keywords, opt-out line, merge fields, phone numbers, and the
-- sending window across the Europe/London DST changes (last Sunday of March and October).
begin;
select plan(36);

-- keywords: any case, surrounding spaces and punctuation; the whole message only
select is(private.sms_keyword('STOP'), 'STOP', 'STOP');
select is(private.sms_keyword('  stop! '), 'STOP', 'stop with spaces and punctuation');
select is(private.sms_keyword('Stop.'), 'STOP', 'Stop.');
select is(private.sms_keyword('StopAll'), 'STOP', 'STOPALL');
select is(private.sms_keyword('unsubscribe'), 'STOP', 'UNSUBSCRIBE');
select is(private.sms_keyword('Cancel'), 'STOP', 'CANCEL');
select is(private.sms_keyword('END'), 'STOP', 'END');
select is(private.sms_keyword('quit!!'), 'STOP', 'QUIT');
select is(private.sms_keyword('please stop texting me'), null, 'a sentence is not a keyword');
select is(private.sms_keyword('start'), 'START', 'START');
select is(private.sms_keyword('Unstop'), 'START', 'UNSTOP');
select is(private.sms_keyword('yes'), 'START', 'YES is an opt-in keyword (only used when opted out)');
select is(private.sms_keyword(' help? '), 'HELP', 'HELP');
select is(private.sms_keyword('Yes please call me'), null, 'a normal reply');

-- opt-out instruction and line
select ok(private.has_opt_out_instruction('Hi. Reply STOP to opt out'), 'Reply STOP is an instruction');
select ok(private.has_opt_out_instruction('Text stop to unsubscribe'), 'Text stop is an instruction');
select ok(not private.has_opt_out_instruction('Hi Ann, are you still interested?'), 'plain text has none');
select is(private.with_opt_out_line('Hi', 'Reply STOP to opt out'), E'Hi\nReply STOP to opt out', 'line appended');
select is(private.with_opt_out_line('Hi, reply STOP to end', 'Reply STOP to opt out'), 'Hi, reply STOP to end',
  'not appended twice');
select is(length(private.with_opt_out_line(repeat('x', 1600), 'Reply STOP to opt out')), 1600,
  'a long text is trimmed so the line still fits in 1600 characters');

-- merge fields with fallbacks
select is(
  private.render_template('Hi {first_name|there}, it''s {company_name}.',
    jsonb_populate_record(null::public.leads, '{"last_name": "Smith"}'),
    'Acme'),
  'Hi there, it''s Acme.', 'empty first name takes the fallback'
);
select is(
  private.render_template('Hi {first_name}, {last_name} - {custom_thing|friend}!',
    jsonb_populate_record(null::public.leads, '{"first_name": "Ann", "last_name": "", "custom_fields": {"custom_thing": "VIP"}}'),
    'Acme'),
  'Hi Ann, - VIP!', 'known, empty and custom fields'
);
select is(
  private.render_template('Hello {first_name} , how are you?',
    jsonb_populate_record(null::public.leads, '{}'),
    'Acme'),
  'Hello there, how are you?', 'a first name without fallback defaults to "there" and spacing is tidied'
);

-- phone numbers as Twilio sends them
select is(private.sms_e164('+447700900123'), '+447700900123', 'E.164 unchanged');
select is(private.sms_e164(' 447700900123'), '+447700900123', 'a + lost to form decoding is restored');
select is(private.sms_e164('0044 7700 900123'), '+447700900123', '00 prefix and spaces');
select is(private.sms_e164('hello'), null, 'not a number');

-- window: 09:00-21:00 every day, Europe/London. GMT (UTC+0) before 29 Mar 2026, BST (UTC+1) after.
select ok(private.in_send_window('2026-03-28 09:30+00', 'Europe/London', 9, 21, array['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']),
  '09:30 GMT is inside');
select ok(private.in_send_window('2026-03-30 08:30+00', 'Europe/London', 9, 21, array['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']),
  '08:30 UTC on 30 March is 09:30 BST: inside');
select is(
  private.next_send_window('2026-03-28 21:30+00', 'Europe/London', 9, 21, array['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']),
  '2026-03-29 08:00+00'::timestamptz, 'after Saturday close (GMT), Sunday 09:00 is already BST: 08:00 UTC'
);
select is(
  private.next_send_window('2026-03-27 22:00+00', 'Europe/London', 9, 21, array['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']),
  '2026-03-28 09:00+00'::timestamptz, 'before the change 09:00 local is 09:00 UTC'
);
select is(
  private.next_send_window('2026-10-24 20:30+00', 'Europe/London', 9, 21, array['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']),
  '2026-10-25 09:00+00'::timestamptz, 'October: 21:30 BST Saturday -> Sunday 09:00 GMT = 09:00 UTC'
);
select is(
  private.next_send_window('2026-10-23 21:00+00', 'Europe/London', 9, 21, array['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']),
  '2026-10-24 08:00+00'::timestamptz, 'October, before the change: 09:00 BST = 08:00 UTC'
);
select is(
  private.next_send_window('2026-03-27 12:00+00', 'Europe/London', 9, 21, array['mon']),
  '2026-03-30 08:00+00'::timestamptz, 'Friday noon with Mondays only: Monday 09:00 BST'
);
select is(
  private.next_send_window('2026-03-28 12:00+00', 'America/New_York', 9, 21, array['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']),
  '2026-03-28 13:00+00'::timestamptz, 'the lead''s own zone decides: 08:00 EDT -> 09:00 EDT = 13:00 UTC'
);
select is(
  private.next_send_window('2026-03-28 12:00+00', 'Europe/London', 9, 21, array['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']),
  '2026-03-28 12:00+00'::timestamptz, 'inside the window: now'
);

select * from finish();
rollback;
