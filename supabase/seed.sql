-- Local demo data: two clients (so tenant isolation can be seen), one member per role.
-- Every seeded user's password is "password". Idempotent: safe to load twice.

insert into auth.users (id, aud, role, email, encrypted_password, email_confirmed_at,
                        raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
select v.id::uuid, 'authenticated', 'authenticated', v.email,
       extensions.crypt('password', extensions.gen_salt('bf')), now(),
       '{"provider": "email", "providers": ["email"]}'::jsonb,
       jsonb_build_object('first_name', v.first_name, 'last_name', v.last_name), now(), now()
from (values
  ('00000000-0000-4000-a000-000000000001', 'admin@acme.test', 'Ada', 'Admin'),
  ('00000000-0000-4000-a000-000000000002', 'manager@acme.test', 'Max', 'Manager'),
  ('00000000-0000-4000-a000-000000000003', 'rep@acme.test', 'Rae', 'Rep'),
  ('00000000-0000-4000-a000-000000000004', 'viewer@acme.test', 'Vic', 'Viewer'),
  ('00000000-0000-4000-b000-000000000001', 'admin@globex.test', 'Gus', 'Globex')
) as v (id, email, first_name, last_name)
on conflict (id) do nothing;

insert into public.clients (id, name, email, timezone, default_region, twilio_phone_number, settings)
values
  ('10000000-0000-4000-a000-000000000001', 'Acme Home Improvements', 'hello@acme.test',
   'Europe/London', 'GB', '+447700900001',
   '{"opt_out_line": "Reply STOP to opt out", "help_text": "Acme Home Improvements: call 020 7946 0000. Reply STOP to opt out.", "sms_per_hour": 60}'),
  ('10000000-0000-4000-b000-000000000001', 'Globex Solar', 'hi@globex.test',
   'America/New_York', 'US', '+12025550101', '{}')
on conflict (id) do nothing;

insert into public.client_members (client_id, user_id, role, status, email, first_name, last_name,
  can_view_all_leads, can_edit_lessons, can_push_to_live, can_manage_users)
values
  ('10000000-0000-4000-a000-000000000001', '00000000-0000-4000-a000-000000000001', 'admin', 'active',
   'admin@acme.test', 'Ada', 'Admin', true, true, true, true),
  ('10000000-0000-4000-a000-000000000001', '00000000-0000-4000-a000-000000000002', 'manager', 'active',
   'manager@acme.test', 'Max', 'Manager', true, true, false, false),
  ('10000000-0000-4000-a000-000000000001', '00000000-0000-4000-a000-000000000003', 'sales_rep', 'active',
   'rep@acme.test', 'Rae', 'Rep', false, false, false, false),
  ('10000000-0000-4000-a000-000000000001', '00000000-0000-4000-a000-000000000004', 'read_only', 'active',
   'viewer@acme.test', 'Vic', 'Viewer', true, false, false, false),
  ('10000000-0000-4000-b000-000000000001', '00000000-0000-4000-b000-000000000001', 'admin', 'active',
   'admin@globex.test', 'Gus', 'Globex', true, true, true, true)
on conflict (user_id) do nothing;
