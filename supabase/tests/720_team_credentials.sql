-- Per-client credentials: kept in Vault, readable only by the workers, never by a user role,
-- never in any answer; integration status and the test job.
begin;
select plan(24);

select * from tests.create_world() \gset
\set token 'f0e1d2c3b4a5968778695a4b3c2d1e0f'
\set sid 'AC0123456789abcdef0123456789abcdef'

select tests.authenticate_as(:'a_manager');
select tests.throws_status(format('select public.connect_twilio(%L, %L, %L)', :'sid', :'token', '+447700900321'),
  403, 'only an admin can connect or test integrations', 'a manager cannot connect Twilio');
select tests.clear_authentication();
select tests.authenticate_as(:'a_admin');
select tests.throws_status(format('select public.connect_twilio(%L, %L, %L)', 'AC123', :'token', '+447700900321'),
  400, null, 'a malformed Account SID is 400');
select tests.throws_status(format('select public.connect_twilio(%L, %L)', :'sid', :'token'),
  400, 'give phone_number or messaging_service_sid (the sender)', 'a sender is required');
select ok(
  position(:'token' in public.connect_twilio(:'sid', :'token', '+447700900321')::text) = 0,
  'connect_twilio answers without the token');
select is(public.get_integrations() #>> '{integrations,twilio,phone_number}', '+447700900321',
  'GET settings/integrations shows the sender');
select is(public.get_integrations() #>> '{integrations,twilio,connected}', 'true', 'and connected');
select ok(position(:'token' in public.get_integrations()::text) = 0, 'and never the token');
select ok(position('sk-client-secret' in public.connect_anthropic('sk-client-secret-123456', 'claude-x')::text) = 0,
  'connect_anthropic answers without the key');
select is(public.connect_calcom('cal_live_abcdef123456', 4242, 'Sales calls') #>> '{integrations,calcom,event_type_id}',
  '4242', 'connect_calcom shows the event type');
select is(public.get_client_settings() #>> '{settings,settings,calcom,event_type_id}', '4242',
  'and bookings pick it up from settings.calcom');
select is(public.test_integrations() ->> 'status', 'queued', 'test_integrations enqueues a job');

-- Not readable by any user role.
select tests.throws_status('select * from private.client_integrations', 403, null, 'authenticated cannot read the table');
select tests.throws_status('select * from vault.secrets', 403, null, 'nor vault.secrets');
select tests.throws_status('select * from vault.decrypted_secrets', 403, null, 'nor vault.decrypted_secrets');
select tests.throws_status(format('select private.integration_credentials(%L, %L)', :'client_a', 'twilio'), 403, null,
  'nor call the workers'' lookup');
select tests.throws_status(format('select private.twilio_webhook_token(%L)', '{"To": "+447700900321"}'), 403, null,
  'nor the webhook''s');
select tests.clear_authentication();
select tests.authenticate_as(:'b_admin');
select tests.throws_status(format('select public.connect_twilio(%L, %L, %L)', :'sid', :'token', '+447700900321'),
  409, 'this number is already connected to another client', 'another client cannot take the number');
select tests.clear_authentication();
select tests.authenticate_as_anon();
select tests.throws_status('select public.get_integrations()', 401, null, 'anon cannot read integration status');
select tests.clear_authentication();

-- The workers' view (the service login).
select is(private.integration_credentials(:'client_a', 'twilio') ->> 'auth_token', :'token',
  'the workers read the token from Vault');
select is(private.twilio_webhook_token('{"To": "+447700900321", "Body": "hi"}'), :'token',
  'the webhook finds the token of an inbound message by its To number');
select is(private.twilio_webhook_token(jsonb_build_object('To', '+447911000001', 'From', '+447700900321', 'MessageStatus', 'delivered')), :'token',
  'and of a status callback by its sender');
select is(private.twilio_webhook_token('{"To": "+447700900555", "AccountSid": "AC0123456789abcdef0123456789abcdef"}'), null,
  'naming the client''s account is not enough: another number gets the platform''s token');
select ok(not exists (select 1 from vault.secrets where secret like '%' || :'token' || '%'),
  'Vault stores it encrypted');
select is(
  (select count(*)::int from private.jobs where kind = 'team.test_integrations' and client_id = :'client_a'), 1,
  'one test job for the client');

select * from finish();
rollback;
