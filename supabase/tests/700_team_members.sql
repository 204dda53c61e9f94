-- Members: GET users, PUT users/[id], DELETE users/[id] (suspend), the invite pre-check, the last
-- admin, rights never above the actor's, and Supabase Auth driving status and last_login_at.
begin;
select plan(30);

select * from tests.create_world() \gset
select tests.create_user('a.scoped.mgr@example.test', :'client_a', 'manager',
  p_can_view_all_leads => false, p_allowed_dataset_ids => array[:'ds_a1'::uuid],
  p_can_manage_users => true) as a_scoped \gset

-- GET users --------------------------------------------------------------------------------
select tests.authenticate_as(:'a_admin');
select is(jsonb_array_length(public.list_users() -> 'users'), 10, 'admin lists every member of its client');
select is(
  (select array_agg(k order by k) from jsonb_object_keys(public.list_users() -> 'users' -> 0) k),
  array['allowed_dataset_ids', 'created_at', 'email', 'first_name', 'id', 'last_login_at', 'last_name',
        'permissions', 'role', 'status'],
  'each user has the contract''s keys (plus permissions and allowed datasets)'
);
select is(
  (select u ->> 'status' from jsonb_array_elements(public.list_users() -> 'users') u where u ->> 'id' = :'a_invited'),
  'invited', 'an invited member is listed as invited'
);
select tests.clear_authentication();
select tests.authenticate_as(:'a_usermgr');
select is(jsonb_array_length(public.list_users() -> 'users'), 10, 'a member with can_manage_users lists them too');
select tests.clear_authentication();
select tests.authenticate_as(:'a_rep');
select tests.throws_status('select public.list_users()', 403, null, 'a sales rep cannot list users');
select tests.clear_authentication();
select tests.authenticate_as(:'b_admin');
select is(jsonb_array_length(public.list_users() -> 'users'), 2, 'another client''s admin lists only its own');
select tests.clear_authentication();
select tests.authenticate_as(:'a_suspended');
select tests.throws_status('select public.list_users()', 403, null, 'a suspended admin lists nothing');

-- PUT users/[id] -------------------------------------------------------------------------------
select tests.clear_authentication();
select tests.authenticate_as(:'a_admin');
select is(
  public.update_user(:'a_rep', role => 'manager', permissions => '{"can_edit_lessons": true}') #>> '{user,role}',
  'manager', 'admin changes a role');
select is(
  (select can_edit_lessons from public.client_members where user_id = :'a_rep'), true,
  'and a permission');
select is(
  public.update_user(:'a_rep', allowed_dataset_ids => array[:'ds_a1'::uuid]) #> '{user,allowed_dataset_ids}',
  jsonb_build_array(:'ds_a1'), 'and restricts to datasets');
select is(
  public.update_user(:'a_rep', allowed_dataset_ids => '{}') #> '{user,allowed_dataset_ids}',
  'null'::jsonb, 'an empty list lifts the restriction');
select tests.throws_status(format('select public.update_user(%L, role => %L)', :'a_rep', 'owner'),
  400, 'unknown role owner', 'an unknown role is 400');
select tests.throws_status(format('select public.update_user(%L, permissions => %L)', :'a_rep', '{"can_fly": true}'),
  400, 'unknown permission can_fly', 'an unknown permission is 400');
select tests.throws_status(format('select public.update_user(%L, role => %L)', :'b_rep', 'manager'),
  404, null, 'another client''s user is not found');
select tests.throws_status(format('select public.update_user(%L, role => %L)', :'a_admin', 'manager'),
  403, 'members cannot change their own role or status', 'an admin cannot demote itself');

select tests.clear_authentication();
select tests.authenticate_as(:'a_usermgr');
select tests.throws_status(format('select public.update_user(%L, permissions => %L)', :'a_ro', '{"can_edit_lessons": true}'),
  403, 'you cannot grant can_edit_lessons, which you do not have', 'a user manager cannot grant what it lacks');
select tests.clear_authentication();
select tests.authenticate_as(:'a_scoped');
select tests.throws_status(format('select public.update_user(%L, allowed_dataset_ids => %L)', :'a_ro', array[:'ds_a2'::uuid]),
  403, 'you can only give access to datasets you can see yourself', 'nor open datasets it cannot see');
select tests.throws_status(format('select public.update_user(%L, permissions => %L)', :'a_restricted', '{"can_view_all_leads": true}'),
  403, null, 'nor grant every lead when it sees only some');

-- The last active admin ---------------------------------------------------------------------------
select tests.clear_authentication();
select tests.throws_status(format('update public.client_members set role = %L where user_id = %L', 'manager', :'a_admin'),
  409, 'a client needs at least one active admin', 'the last active admin cannot be demoted, even by the platform');
select tests.throws_status(format('update public.client_members set status = %L where user_id = %L', 'suspended', :'a_admin'),
  409, 'a client needs at least one active admin', 'nor suspended');

-- DELETE users/[id] suspends -----------------------------------------------------------------------
select tests.authenticate_as(:'a_admin');
select is(public.suspend_user(:'a_manager') #>> '{user,status}', 'suspended', 'admin suspends a member');
select tests.throws_status(format('select public.suspend_user(%L)', :'a_admin'), 403, 'you cannot suspend yourself',
  'nobody suspends itself');
select tests.throws_status(format('select public.suspend_user(%L)', :'b_rep'), 404, null,
  'another client''s user is not found');
select tests.clear_authentication();
select tests.authenticate_as(:'a_manager');
select is((select count(*)::int from public.datasets), 0, 'the suspended member''s next RLS read sees nothing');
select tests.throws_status('select public.get_client_settings()', 403, null, 'and its next RPC is refused');

-- Invitation pre-check ------------------------------------------------------------------------------
select tests.clear_authentication();
select tests.authenticate_as(:'a_admin');
select is(private.invite_check('someone.new@example.test', 'sales_rep', '{}', null), 'new', 'a new person: new');
select is(private.invite_check('A.Invited@example.test', 'admin', '{}', null), 'resend', 'a pending invitation: resend');
select tests.throws_status(format('select private.invite_check(%L, %L, %L, null)', 'b.rep@example.test', 'sales_rep', '{}'),
  409, 'this person already belongs to another client', 'a member of another client: 409');

-- Supabase Auth drives status and last_login_at ---------------------------------------------------------
select tests.clear_authentication();
update auth.users set email_confirmed_at = now() where id = :'a_invited';
update auth.users set encrypted_password = extensions.crypt('secret', extensions.gen_salt('bf', 4)),
  last_sign_in_at = now() where id = :'a_invited';
select is((select status::text from public.client_members where user_id = :'a_invited'), 'active',
  'accepting the invitation and setting a password activates the membership');
select is((select last_login_at from public.client_members where user_id = :'a_invited'),
  (select last_sign_in_at from auth.users where id = :'a_invited'), 'last_login_at follows last_sign_in_at');

select * from finish();
rollback;
