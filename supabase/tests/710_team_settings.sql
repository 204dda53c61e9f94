-- GET/PUT settings/client: the contract's shape, admins only, the settings schema enforced.
begin;
select plan(16);

select * from tests.create_world() \gset
update public.clients set twilio_phone_number = '+447700900123', settings = '{"sms_per_hour": 60}' where id = :'client_a';

select tests.authenticate_as(:'a_rep');
select is(
  (select array_agg(k order by k) from jsonb_object_keys(public.get_client_settings() -> 'settings') k),
  array['company_email', 'company_name', 'company_phone', 'logo_url', 'n8n_workflow_id', 'primary_color',
        'settings', 'timezone', 'twilio_phone_number'],
  'GET settings/client has the contract''s keys, for any member');
select is(public.get_client_settings() #>> '{settings,company_name}', 'Client A', 'of the caller''s client');
select tests.throws_status('select public.update_client_settings(company_name => ''X'')', 403,
  'only an admin can change the client settings', 'a sales rep cannot change them');
select tests.clear_authentication();
select tests.authenticate_as(:'a_manager');
select tests.throws_status('select public.update_client_settings(company_name => ''X'')', 403, null,
  'nor a manager');
select tests.clear_authentication();
select tests.authenticate_as_anon();
select tests.throws_status('select public.get_client_settings()', 401, null, 'anon gets nothing');

select tests.clear_authentication();
select tests.authenticate_as(:'a_admin');
select is(
  public.update_client_settings(company_name => 'Acme Ltd', primary_color => '#112233',
    settings => '{"quiet_hours": {"start": "21:00", "end": "08:00"}, "attribution_window_days": 30}')
    -> 'settings',
  jsonb_build_object('company_name', 'Acme Ltd', 'company_email', null, 'company_phone', null, 'logo_url', null,
    'primary_color', '#112233', 'timezone', 'Europe/London', 'twilio_phone_number', '+447700900123',
    'n8n_workflow_id', null, 'settings', '{"sms_per_hour": 60, "quiet_hours": {"start": "21:00", "end": "08:00"},
    "attribution_window_days": 30}'::jsonb),
  'admin updates: given keys change, settings keys merge');
select is(public.update_client_settings(settings => '{"sms_per_hour": null}') #> '{settings,settings}' ? 'sms_per_hour',
  false, 'a null removes a setting');
select tests.throws_status('select public.update_client_settings(settings => ''{"colour": "red"}'')', 400,
  'unknown setting colour', 'an unknown key is refused by name');
select tests.throws_status('select public.update_client_settings(settings => ''{"sms_per_hour": "lots"}'')', 400,
  'setting sms_per_hour must be a whole number', 'a wrong type names the key');
select tests.throws_status('select public.update_client_settings(settings => ''{"sms_per_hour": 0}'')', 400,
  'setting sms_per_hour must be between 1 and 100000', 'out of range names the bounds');
select tests.throws_status('select public.update_client_settings(settings => ''{"quiet_hours": {"start": "25:00"}}'')', 400,
  'setting quiet_hours.start is not valid', 'a nested key is named with its path');
select tests.throws_status('select public.update_client_settings(settings => ''{"quiet_hours": {"from": "08:00"}}'')', 400,
  'unknown setting quiet_hours.from', 'unknown nested keys are refused too');
select tests.throws_status('select public.update_client_settings(settings => ''{"ai_mode": "yolo"}'')', 400,
  'setting ai_mode is not valid', 'enums are checked');
select tests.throws_status('select public.update_client_settings(twilio_phone_number => ''+447700900999'')', 403,
  'twilio_phone_number is set by connecting Twilio (connect_twilio)', 'the Twilio number is not a plain setting');
select tests.throws_status('update public.clients set settings = ''{"colour": "red"}''', 400,
  'unknown setting colour', 'a direct PATCH of clients.settings is validated the same way');
select tests.throws_status('select public.update_client_settings(company_phone => ''07700 900123'')', 400,
  'company_phone must be E.164 (+ and digits)', 'company fields are validated');

select * from finish();
rollback;
