-- Who may invite, change and suspend members, and what nobody may do to their own membership.
begin;
select plan(24);

select * from tests.create_world() \gset
select tests.create_user('new.one@example.test', null) as new_one \gset
select tests.create_user('new.two@example.test', null) as new_two \gset
select tests.create_user('new.three@example.test', null) as new_three \gset

-- A user manager who is not an admin (a manager with can_manage_users) --------------------
select tests.authenticate_as(:'a_usermgr');

select is((select count(*)::int from public.client_members), 9, 'user manager sees every member of the client');
select lives_ok(
  format('insert into public.client_members (client_id, user_id, email, role, can_view_all_leads) values (%L, %L, %L, %L, true)',
    :'client_a', :'new_one', 'new.one@example.test', 'sales_rep'),
  'user manager can invite a sales rep'
);
select tests.throws_status(
  format('insert into public.client_members (client_id, user_id, email, role) values (%L, %L, %L, %L)',
    :'client_a', :'new_two', 'new.two@example.test', 'admin'),
  403, 'only an admin can grant or change the admin role',
  'user manager cannot create an admin'
);
select tests.throws_status(
  format('insert into public.client_members (client_id, user_id, email, can_manage_users) values (%L, %L, %L, true)',
    :'client_a', :'new_two', 'new.two@example.test'),
  403, 'only an admin can grant this permission',
  'user manager cannot create another user manager'
);
select tests.throws_status(
  format('insert into public.client_members (client_id, user_id, email, can_push_to_live) values (%L, %L, %L, true)',
    :'client_a', :'new_two', 'new.two@example.test'),
  403, 'only an admin can grant this permission',
  'user manager cannot grant can_push_to_live on invite'
);
select tests.throws_status(
  format('update public.client_members set role = %L where user_id = %L', 'admin', :'a_rep'),
  403, 'only an admin can grant or change the admin role',
  'user manager cannot promote a member to admin'
);
select tests.throws_status(
  format('update public.client_members set can_manage_users = true where user_id = %L', :'a_rep'),
  403, 'only an admin can grant this permission',
  'user manager cannot grant can_manage_users'
);
select tests.throws_status(
  format('update public.client_members set can_push_to_live = true where user_id = %L', :'a_rep'),
  403, 'only an admin can grant this permission',
  'user manager cannot grant can_push_to_live'
);
select tests.throws_status(
  format('update public.client_members set status = %L where user_id = %L', 'suspended', :'a_admin'),
  403, 'only an admin can grant or change the admin role',
  'user manager cannot suspend an admin'
);
with u as (update public.client_members set status = 'suspended' where user_id = :'a_rep' returning 1)
select is(count(*)::int, 1, 'user manager can suspend a sales rep') from u;
with u as (update public.client_members set role = 'read_only' where user_id = :'a_manager' returning 1)
select is(count(*)::int, 1, 'user manager can change a non-admin''s role') from u;
select tests.throws_status(
  format('update public.client_members set role = %L where user_id = %L', 'admin', :'a_usermgr'),
  403, null, 'user manager cannot make itself an admin'
);
select tests.throws_status(
  format('update public.client_members set can_view_all_leads = true, allowed_dataset_ids = null where user_id = %L', :'a_usermgr'),
  403, null, 'user manager cannot change its own permissions'
);

-- Members without user management ------------------------------------------------------
select tests.clear_authentication();
select tests.authenticate_as(:'a_ro');

with u as (update public.client_members set role = 'admin', can_manage_users = true where user_id = :'a_ro' returning 1)
select is(count(*)::int, 0, 'a read_only member cannot change its own role or permissions') from u;
with u as (update public.client_members set status = 'active' where user_id = :'a_suspended' returning 1)
select is(count(*)::int, 0, 'a member cannot reactivate a suspended colleague') from u;

select tests.clear_authentication();
select tests.authenticate_as(:'a_restricted_mgr');
with u as (update public.client_members set can_view_all_leads = true where user_id = :'a_restricted_mgr' returning 1)
select is(count(*)::int, 0, 'a restricted manager cannot lift its own dataset restriction') from u;

-- Admins --------------------------------------------------------------------------------
select tests.clear_authentication();
select tests.authenticate_as(:'a_admin');

select lives_ok(
  format('insert into public.client_members (client_id, user_id, email, role, can_manage_users, can_push_to_live) values (%L, %L, %L, %L, true, true)',
    :'client_a', :'new_two', 'new.two@example.test', 'admin'),
  'admin can create an admin with every permission'
);
with u as (update public.client_members set can_push_to_live = true where user_id = :'a_manager' returning 1)
select is(count(*)::int, 1, 'admin can grant can_push_to_live') from u;
select tests.throws_status(
  format('update public.client_members set role = %L where user_id = %L', 'manager', :'a_admin'),
  403, 'members cannot change their own role or status',
  'admin cannot change its own role'
);
select tests.throws_status(
  format('update public.client_members set status = %L where user_id = %L', 'suspended', :'a_admin'),
  403, 'members cannot change their own role or status',
  'admin cannot suspend itself'
);
select tests.throws_status(
  format('update public.client_members set client_id = %L where user_id = %L', :'client_b', :'a_rep'),
  403, null, 'admin cannot move a member to another client'
);
select throws_ok(
  format('insert into public.client_members (client_id, user_id, email) values (%L, %L, %L)',
    :'client_a', :'b_rep', 'b.rep@example.test'),
  '23505', null, 'admin cannot pull a member of another client into its own (one membership per user)'
);

-- Afterwards, as postgres ----------------------------------------------------------------
select tests.clear_authentication();
select results_eq(
  format($$select role::text, status::text, can_manage_users from public.client_members where user_id in (%L, %L) order by email$$,
    :'a_admin', :'a_usermgr'),
  $$values ('admin', 'active', false), ('manager', 'active', true)$$,
  'the admin and the user manager kept their roles and status'
);
select is(
  (select can_view_all_leads from public.client_members where user_id = :'a_restricted_mgr'), false,
  'the restricted manager is still restricted'
);

select * from finish();
rollback;
