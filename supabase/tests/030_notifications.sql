-- Notifications: who hears about which event, on which channels, when (quiet hours, digest),
-- once per person per event; preferences, inbox and notifications/send RPCs; the delivery steps.
begin;
select plan(65);

select tests.create_client('Notify client') as c \gset
select tests.create_client('Other client') as other \gset
update public.clients set timezone = 'Europe/London', twilio_phone_number = '+447700900800' where id = :'c';
select tests.create_user('admin@n.test', :'c', 'admin') as admin \gset
select tests.create_user('manager@n.test', :'c', 'manager') as manager \gset
select tests.create_user('rep@n.test', :'c', 'sales_rep', 'active', false) as rep \gset
select tests.create_user('viewer@n.test', :'c', 'read_only') as viewer \gset
select tests.create_user('watcher@n.test', :'c', 'read_only') as watcher \gset
select tests.create_user('gone@n.test', :'c', 'manager', 'suspended') as gone \gset
select tests.create_user('other@n.test', :'other', 'admin') as other_admin \gset
update public.client_members set phone = '+447700900111' where user_id = :'admin';
update public.client_members set phone = '+447700900222' where user_id = :'rep';
update public.client_members set notification_preferences = '{"operational_alerts": true}' where user_id = :'watcher';
select tests.create_dataset(:'c', 'Spring list') as d \gset
select tests.create_lead(:'d', 'Ann') as l1 \gset
select tests.create_lead(:'d', 'Bob') as l2 \gset
update public.leads set assigned_to = :'rep' where id = :'l1';

create function tests.notified(p_event text) returns setof uuid language sql as $$
  select user_id from public.notifications where event = p_event order by user_id
$$;
create function tests.ids(variadic p uuid[]) returns setof uuid language sql as $$
  select x from unnest(p) x order by x
$$;

-- 1. hot lead: admins, managers and the assigned rep; read_only only when opted in -------
update public.leads set contact_status = 'HOT', lead_sentiment = 'POSITIVE' where id = :'l1';
select results_eq('select * from tests.notified(''hot_lead'')',
  format('select * from tests.ids(%L, %L, %L, %L)', :'admin', :'manager', :'rep', :'watcher'),
  'hot lead: admin, manager, the assigned rep and the read_only member who opted in');
select ok(not exists (select from public.notifications where user_id = :'viewer'), 'read_only without opting in: nothing');
select ok(not exists (select from public.notifications where user_id = :'gone'), 'suspended member: nothing');
select ok(not exists (select from public.notifications where user_id = :'other_admin'), 'another client''s admin: nothing');
select is((select channels from public.notifications where event = 'hot_lead' and user_id = :'admin'),
  array['in_app', 'email', 'sms'], 'hot lead goes in-app, by email and by SMS by default');
select is((select channels from public.notifications where event = 'hot_lead' and user_id = :'manager'),
  array['in_app', 'email'], 'no SMS for a member without a phone number');
select is(
  (select count(*)::int from private.notification_deliveries d join public.notifications n on n.id = d.notification_id
   where n.event = 'hot_lead' and d.status = 'pending' and d.scheduled_for <= now()),
  6, 'immediate: 4 emails and 2 SMS due now');
select is(
  (select count(*)::int from private.jobs j where j.kind in ('notify.email', 'notify.sms') and j.priority = 10),
  6, 'each with its notify.* job at the front of the queue');

-- 2. the double "Hot lead": booked (CALL_BOOKED), then the AI's sentiment HOT -----------
update public.leads set contact_status = 'CALL_BOOKED' where id = :'l1';
update public.leads set lead_sentiment = 'HOT' where id = :'l1';
update public.leads set contact_status = 'WARM', lead_sentiment = 'POSITIVE' where id = :'l1';
update public.leads set contact_status = 'HOT' where id = :'l1';
select is((select count(*)::int from public.notifications where event = 'hot_lead'), 4,
  'the same lead turning HOT again notifies nobody a second time');
select is((select count(*)::int from private.jobs where kind like 'notify.%'), 6, 'and sends nothing more');

-- 3. new reply: the assigned rep; unassigned: the managers; no manager: the admins --------
select private.notify_staff(:'c', 'New reply from Ann', 'Are you there?', 'immediate', '/conversations/x',
  jsonb_build_object('kind', 'reply_manual', 'lead_id', :'l1', 'message_id', gen_random_uuid()), :'d');
select results_eq($$select * from tests.notified('new_reply')$$, format('select %L::uuid', :'rep'),
  'new reply (older call, kind reply_manual): only the rep the lead is assigned to');
delete from public.notifications where event = 'new_reply';
select private.notify_staff(:'c', 'new_reply', 'New reply from Bob', 'Hi', 'immediate', null,
  jsonb_build_object('lead_id', :'l2', 'message_id', gen_random_uuid()), :'d');
select results_eq($$select * from tests.notified('new_reply')$$, format('select %L::uuid', :'manager'),
  'unassigned lead: the managers (not the admins, not read_only)');
delete from public.notifications where event = 'new_reply';
update public.client_members set role = 'sales_rep' where user_id = :'manager';
select private.notify_staff(:'c', 'new_reply', 'New reply from Bob', 'Hi', 'immediate', null,
  jsonb_build_object('lead_id', :'l2', 'message_id', gen_random_uuid()), :'d');
select results_eq($$select * from tests.notified('new_reply')$$, format('select %L::uuid', :'admin'),
  'no manager: the admins, so a reply is never unheard');
update public.client_members set role = 'manager' where user_id = :'manager';

-- 4. CRITICAL Sophie finding: admins only; booking: the team --------------------------------
select is(private.notify_staff(:'c', 'sophie_critical', 'Critical: compliance', 'An M1 lacks the opt-out line', 'immediate',
  '/sophie/insights/1', jsonb_build_object('insight_id', 'i-1'), null), 1, 'sophie_critical: one person');
select results_eq($$select * from tests.notified('sophie_critical')$$, format('select %L::uuid', :'admin'),
  'sophie_critical: admins only');
select is(private.notify_staff(:'c', 'sophie_critical', 'Critical: compliance', 'again', 'immediate',
  null, jsonb_build_object('insight_id', 'i-1'), null), 0, 'the same insight twice: nobody again');
select private.notify_staff(:'c', 'Call booked', 'Ann booked', 'immediate', null,
  jsonb_build_object('event', 'booking_created', 'lead_id', :'l1', 'booking_uid', 'bk1'), :'d');
select results_eq($$select * from tests.notified('booking')$$,
  format('select * from tests.ids(%L, %L, %L, %L)', :'admin', :'manager', :'rep', :'watcher'),
  'booking (older call): admins, managers, the assigned rep, opted-in read_only');

-- 5. read_only never gets an operational alert it did not opt in to ------------------------
select ok(not exists (select from public.notifications where user_id = :'viewer'), 'read_only: still nothing at all');
select private.notify_staff(:'c', 'Message from an unknown number', 'x', 'normal', null,
  jsonb_build_object('kind', 'unknown_sender', 'message_id', gen_random_uuid()), null);
select results_eq($$select * from tests.notified('unknown_sender')$$,
  format('select * from tests.ids(%L, %L)', :'admin', :'manager'), 'unknown sender: admins and managers');

-- 6. restricted visibility: a manager who cannot see the dataset hears nothing about it ----
select tests.create_dataset(:'c', 'Hidden list') as d2 \gset
select tests.create_lead(:'d2', 'Cy') as l3 \gset
update public.client_members set can_view_all_leads = false, allowed_dataset_ids = array[:'d'::uuid] where user_id = :'manager';
update public.leads set contact_status = 'HOT' where id = :'l3';
select ok(not exists (select from public.notifications where user_id = :'manager' and data ->> 'lead_id' = :'l3'),
  'a manager restricted to another dataset is not told about this lead');
select ok(exists (select from public.notifications where user_id = :'admin' and data ->> 'lead_id' = :'l3'),
  'the admin is');
update public.client_members set can_view_all_leads = true, allowed_dataset_ids = null where user_id = :'manager';

-- 7. preferences ----------------------------------------------------------------------------
select tests.authenticate_as(:'rep');
select is(public.get_notification_preferences() -> 'events' -> 'hot_lead' -> 'channels', '["in_app", "email", "sms"]'::jsonb,
  'defaults: hot lead on every channel');
select is(public.get_notification_preferences() ->> 'timezone', 'Europe/London', 'time zone defaults to the client''s');
select is(
  public.update_notification_preferences(channels => '{"hot_lead": ["sms"], "booking": []}',
    quiet_hours => '{"start": "22:00", "end": "07:00"}', timezone => 'America/New_York') -> 'events' -> 'hot_lead' -> 'channels',
  '["in_app", "sms"]'::jsonb, 'hot lead by SMS only (in_app always)');
select is(public.get_notification_preferences() -> 'quiet_hours', '{"start": "22:00", "end": "07:00"}'::jsonb, 'quiet hours stored');
select is(public.update_notification_preferences(channels => '{"booking": ["email"]}') -> 'events' -> 'hot_lead' -> 'channels',
  '["in_app", "sms"]'::jsonb, 'channels merge per event');
select is(public.update_notification_preferences(reset => array['quiet_hours']) -> 'quiet_hours', 'null'::jsonb,
  'reset returns a key to its default');
select is(tests.error_of($$select public.update_notification_preferences(channels => '{"hot_leads": ["sms"]}')$$)
  -> 'body' -> 'details' ->> 'key', 'channels.hot_leads', 'an unknown event is refused, naming it');
select tests.throws_status($$select public.update_notification_preferences(channels => '{"hot_lead": ["fax"]}')$$, 400,
  'channels.hot_lead must be an array of in_app, email, sms', 'an unknown channel: 400');
select tests.throws_status($$select public.update_notification_preferences(quiet_hours => '{"start": "25:00", "end": "07:00"}')$$,
  400, null, 'a bad quiet-hours time: 400');
select tests.throws_status($$select public.update_notification_preferences(timezone => 'Mars/Olympus')$$, 400, null,
  'an unknown time zone: 400');
select tests.throws_status($$select public.update_notification_preferences(reset => array['volume'])$$, 400,
  'unknown notification preference(s): volume', 'an unknown preference: 400');
select tests.clear_authentication();
update public.leads set contact_status = 'READY', lead_sentiment = null where id = :'l2';
update public.leads set assigned_to = :'rep' where id = :'l2';
update public.leads set contact_status = 'HOT' where id = :'l2';
select is((select channels from public.notifications where event = 'hot_lead' and user_id = :'rep' and data ->> 'lead_id' = :'l2'),
  array['in_app', 'sms'], 'the rep''s own channels apply');
update public.client_members set notification_preferences = '{"channels": {"unknown_sender": []}}' where user_id = :'admin';
select private.notify_staff(:'c', 'unknown_sender', 'Unknown', 'x', 'normal', null, jsonb_build_object('message_id', gen_random_uuid()), null);
select is((select count(*)::int from public.notifications where event = 'unknown_sender' and user_id = :'admin'), 1,
  'a muted event creates nothing (the admin still has only the first one)');
update public.client_members set notification_preferences = '{}' where user_id = :'admin';

-- 8. quiet hours delay normal, never immediate ------------------------------------------------
select is(private.quiet_until('2026-06-01 23:30+01', 'Europe/London', '{"start": "22:00", "end": "07:00"}'),
  '2026-06-02 07:00+01'::timestamptz, 'inside quiet hours late at night: until 07:00 local next morning');
select is(private.quiet_until('2026-06-02 05:00+01', 'Europe/London', '{"start": "22:00", "end": "07:00"}'),
  '2026-06-02 07:00+01'::timestamptz, 'early morning: until 07:00 the same day');
select is(private.quiet_until('2026-06-02 12:00+01', 'Europe/London', '{"start": "22:00", "end": "07:00"}'), null,
  'midday: not quiet');
select is(private.quiet_until('2026-06-02 13:30Z', 'America/New_York', '{"start": "09:00", "end": "10:00"}'),
  '2026-06-02 14:00Z'::timestamptz, 'in the person''s own time zone (09:30 in New York)');
-- quiet hours around the current time for the manager
update public.client_members set notification_preferences = jsonb_build_object('quiet_hours', jsonb_build_object(
  'start', to_char((now() at time zone 'Europe/London') - interval '1 hour', 'HH24:MI'),
  'end', to_char((now() at time zone 'Europe/London') + interval '2 hours', 'HH24:MI'))) where user_id = :'manager';
select private.notify_user(:'manager', array['email'], 'normal', 'Weekly numbers', 'Ready to read') as normal_n \gset
select private.notify_user(:'manager', array['email'], 'immediate', 'Server on fire', 'Now') as urgent_n \gset
select ok((select d.scheduled_for > now() + interval '1 hour' from private.notification_deliveries d
  where d.notification_id = (:'normal_n'::jsonb ->> 'notification_id')::uuid), 'normal waits out the quiet hours');
select ok((select d.scheduled_for <= now() from private.notification_deliveries d
  where d.notification_id = (:'urgent_n'::jsonb ->> 'notification_id')::uuid), 'immediate goes now');
select ok((select j.run_at > now() + interval '1 hour' from private.jobs j join private.notification_deliveries d
  on j.idempotency_key = 'notify:' || d.id where d.notification_id = (:'normal_n'::jsonb ->> 'notification_id')::uuid),
  'its job runs when the quiet hours end');
select is(private.notify_delivery_begin((select d.id from private.notification_deliveries d
  where d.notification_id = (:'normal_n'::jsonb ->> 'notification_id')::uuid)) ->> 'action', 'defer',
  'a worker that picks it early defers it');

-- 9. the digest collects low ------------------------------------------------------------------
update public.client_members set notification_preferences = '{"digest_hour": 0}' where user_id = :'manager';
select private.notify_user(:'manager', array['email', 'sms'], 'low', 'FYI 1', 'one') as low1 \gset
select private.notify_user(:'manager', array['email'], 'low', 'FYI 2', 'two') as low2 \gset
select is((select array_agg(d.status::text || '/' || d.channel) from private.notification_deliveries d
  where d.notification_id in ((:'low1'::jsonb ->> 'notification_id')::uuid, (:'low2'::jsonb ->> 'notification_id')::uuid)),
  array['digest/email', 'digest/email'], 'low: one digest item per notification, no send');
select is(private.queue_notification_digests(now() + interval '1 minute'), 1, 'the digest run makes one digest');
select is((select count(*)::int from private.notification_deliveries d where d.digest_id is not null and d.user_id = :'manager'), 2,
  'both items folded into it');
select is(private.queue_notification_digests(now() + interval '2 minutes'), 0, 'one digest per local day');
select is((private.notify_delivery_begin((select id from private.notification_deliveries where kind = 'digest'
  and user_id = :'manager')) -> 'items' -> 0 ->> 'title'), 'FYI 1', 'the digest email lists the items');
select private.notify_user(:'manager', array['email'], 'low', 'FYI 3', 'later') as low3 \gset
select is((select status::text from private.notification_deliveries
  where notification_id = (:'low3'::jsonb ->> 'notification_id')::uuid), 'digest', 'a later item waits for tomorrow''s');

-- 10. delivery steps: address read at send time, SMS reconcile, opted-out and suspended -------
select d.id as sms_del from private.notification_deliveries d join public.notifications n on n.id = d.notification_id
  where n.event = 'hot_lead' and d.user_id = :'admin' and d.channel = 'sms'
    and n.data ->> 'lead_id' = :'l1' \gset
select is(private.notify_delivery_begin(:'sms_del') ->> 'to', '+447700900111', 'SMS goes to the member''s own phone');
select is(private.notify_delivery_begin(:'sms_del') ->> 'action', 'reconcile',
  'an attempt without a result is looked up before anything is sent again');
select private.notify_delivery_result(:'sms_del', 'sent', 'SM123');
select is(private.notify_delivery_begin(:'sms_del') ->> 'action', 'skip', 'sent: never again');
select d.id as rep_sms from private.notification_deliveries d join public.notifications n on n.id = d.notification_id
  where n.event = 'hot_lead' and d.user_id = :'rep' and d.channel = 'sms' and n.data ->> 'lead_id' = :'l1' \gset
insert into public.suppressions (client_id, phone_number, reason) values (:'c', '+447700900222', 'texted STOP');
select is(private.notify_delivery_begin(:'rep_sms') ->> 'reason', 'opted_out', 'a number that texted STOP is never texted');
select d.id as mgr_email from private.notification_deliveries d join public.notifications n on n.id = d.notification_id
  where n.event = 'hot_lead' and d.user_id = :'manager' and d.channel = 'email' and n.data ->> 'lead_id' = :'l1' \gset
update public.client_members set status = 'suspended' where user_id = :'manager';
select is(private.notify_delivery_begin(:'mgr_email') ->> 'reason', 'member_inactive', 'suspended since: not sent');
update public.client_members set status = 'active' where user_id = :'manager';
select is((select count(*)::int from public.messages), 0, 'staff notifications are never lead messages (no send budget used)');

-- 11. notifications/send, mark-read and unread count as users ----------------------------------
select tests.authenticate_as(:'rep');
select tests.throws_status(format($$select public.notify_user(%L, array['in_app'], 'normal', 'Hi', 'x')$$, :'admin'), 403,
  'only admins and managers may notify other users', 'a sales rep cannot notify someone else');
select tests.throws_status(format($$select public.notify_user(%L, array['in_app'], 'normal', 'Hi', 'x')$$, :'other_admin'), 404,
  null, 'nor anyone of another client (404)');
select tests.throws_status(format($$select public.notify_user(%L, array['pager'], 'normal', 'Hi', 'x')$$, :'rep'), 400,
  'channels must be a non-empty list of email, sms, in_app', 'an unknown channel: 400');
select is((public.unread_notification_count() ->> 'unread')::int,
  (select count(*)::int from public.notifications where read_at is null), 'unread count: the caller''s own');
select ok((public.unread_notification_count() ->> 'unread')::int >= 3, 'the rep has unread notifications');
select is((public.mark_notifications_read(array[(select id from public.notifications limit 1)]) ->> 'marked')::int, 1,
  'mark one read');
select is((public.mark_notifications_read() ->> 'unread')::int, 0, 'mark all read: none left');
select tests.clear_authentication();
select ok(exists (select from public.notifications where user_id = :'admin' and read_at is null),
  'another user''s notifications are untouched');
select tests.authenticate_as_service_role();
select is((public.notify_user(:'rep', array['in_app', 'email'], 'immediate', 'Welcome', 'x',
  data => '{"dedupe_key": "welcome"}') ->> 'duplicate')::boolean, false, 'service role: sent');
select is((public.notify_user(:'rep', array['in_app', 'email'], 'immediate', 'Welcome', 'x',
  data => '{"dedupe_key": "welcome"}') ->> 'duplicate')::boolean, true, 'the same dedupe key again: a no-op');
select tests.clear_authentication();
select tests.authenticate_as_anon();
select throws_ok(format($$select public.notify_user(%L, array['in_app'], 'normal', 'Hi', 'x')$$, :'rep'), '42501', null,
  'anon cannot send notifications');
select tests.clear_authentication();

select * from finish();
rollback;
