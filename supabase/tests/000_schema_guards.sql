-- Schema-wide guards: rules every migration (present and future) must keep.
begin;
select plan(14);

-- Row level security ----------------------------------------------------------------------
select ok(
  (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'public' and c.relkind in ('r', 'p')) >= 7,
  'schema public holds the foundation tables (the guards below are not vacuous)'
);

select is_empty(
  $$
  select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relrowsecurity
  $$,
  'every table in schema public has row level security enabled'
);

select is_empty(
  $$
  select format('%s.%s: %s', schemaname, tablename, policyname) from pg_policies
  where schemaname = 'public' and roles && array['public', 'anon']::name[]
  $$,
  'no policy in schema public applies to anon or to every role (policies are `to authenticated`)'
);

select is_empty(
  $$
  select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where n.nspname = 'public' and c.relkind = 'v'
    and not coalesce('security_invoker=true' = any (c.reloptions), false)
    and not coalesce('security_invoker=on' = any (c.reloptions), false)
  $$,
  'every view in schema public is security_invoker (it cannot bypass RLS of its tables)'
);

select is_empty(
  $$
  select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where n.nspname = 'public' and c.relkind = 'm'
    and (has_table_privilege('anon', c.oid, 'select')
         or has_table_privilege('authenticated', c.oid, 'select'))
  $$,
  'no materialized view in schema public is readable by anon or authenticated (no RLS on them)'
);

-- Functions -------------------------------------------------------------------------------
select is_empty(
  $$
  select p.oid::regprocedure::text
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
  where p.prosecdef
    and n.nspname not in ('private', 'auth', 'extensions', 'pg_catalog', 'information_schema')
    and not exists (select from pg_depend d where d.objid = p.oid and d.deptype = 'e')
  $$,
  'security definer functions live only in schema private (or auth/extensions), never in public'
);

select is_empty(
  $$
  select p.oid::regprocedure::text
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
  where p.prosecdef and n.nspname in ('public', 'private')
    and not exists (select from unnest(p.proconfig) c where c like 'search_path=%')
  $$,
  'every security definer function pins its search_path'
);

-- Trigger functions cannot be called directly, so only callable functions matter here.
-- Intended exceptions (none today) would be listed in the array below.
select is_empty(
  $$
  select p.oid::regprocedure::text
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
  where n.nspname in ('public', 'private')
    and p.prorettype not in ('trigger'::regtype, 'event_trigger'::regtype)
    and has_function_privilege('anon', p.oid, 'execute')
    and not exists (select from pg_depend d where d.objid = p.oid and d.deptype = 'e')
    -- Intended exceptions: PostgREST's pre-request hook runs as the request's role, anon included.
    and p.oid::regprocedure::text <> all (array['private.pre_request()']::text[])
  $$,
  'no callable function in public or private is executable by anon (but the pre-request hook)'
);

select is_empty(
  $$
  select p.oid::regprocedure::text
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
  where p.prosecdef and n.nspname in ('public', 'private')
    and p.prorettype not in ('trigger'::regtype, 'event_trigger'::regtype)
    and (p.proacl is null
         or exists (select from aclexplode(p.proacl) a where a.grantee = 0 and a.privilege_type = 'EXECUTE'))
  $$,
  'no security definer function is executable by PUBLIC (execute is granted role by role)'
);

-- anon reaches schema private only to run PostgREST's pre-request hook: nothing else in it.
select is_empty(
  $$
  select c.oid::regclass::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where n.nspname = 'private' and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
    and exists (select from aclexplode(c.relacl) a where a.grantee in (0, 'anon'::regrole))
  $$,
  'no table, view or sequence of schema private grants anything to anon or PUBLIC'
);

-- Internal tables -------------------------------------------------------------------------
select tests.authenticate_as(tests.create_user('guard@example.test', tests.create_client()));

select throws_ok(
  'select * from private.jobs',
  '42501', null,
  'private.jobs is not readable by authenticated users'
);
select throws_ok(
  'select * from private.api_rate_limits',
  '42501', null,
  'private.api_rate_limits is not readable by authenticated users'
);

select tests.clear_authentication();
select tests.authenticate_as_anon();
select throws_ok('select * from private.jobs', '42501', null, 'private.jobs is not readable by anon');

-- Every table of public, now and later: anon sees no row even when rows exist.
select tests.clear_authentication();
select * from tests.create_world() \gset
select tests.authenticate_as_anon();
select is_empty(
  'select * from tests.tables_with_visible_rows()',
  'anon sees no row in any table of schema public'
);

select * from finish();
rollback;
