-- Lessons: who reads and writes them (client-specific vs universal), the field rules.
begin;
set local search_path = public, extensions;
set local client_min_messages = warning;
select plan(14);

select tests.create_client('Acme') as acme \gset
select tests.create_client('Other') as other \gset
select tests.create_user('admin@acme.test', :'acme', 'admin') as admin \gset
select tests.create_user('editor@acme.test', :'acme', 'sales_rep', 'active', true, null, true) as editor \gset
select tests.create_user('rep@acme.test', :'acme', 'sales_rep') as rep \gset
select tests.create_user('other@other.test', :'other', 'admin') as other_admin \gset

insert into lessons (client_id, scope, title, priority) values (null, 'universal', 'Never quote prices', 9)
returning id as universal \gset
insert into lessons (client_id, title) values (:'other', 'Other client lesson') returning id as theirs \gset

-- reading -----------------------------------------------------------------------------------
select tests.authenticate_as(:'rep');
select results_eq(
  $$select title from lessons order by title$$,
  $$values ('Never quote prices')$$,
  'a member sees universal lessons, not another client''s'
);

-- writing -----------------------------------------------------------------------------------
select throws_ok(
  $$insert into lessons (title) values ('Rep lesson')$$,
  '42501', null, 'a member without lesson editing cannot add lessons'
);
select tests.clear_authentication();
select tests.authenticate_as(:'editor');
select lives_ok(
  $$insert into lessons (title, lesson_type, priority, trigger, correct_response)
    values ('Weekend slots', 'timing', 8, 'Lead works weekdays', 'Offer Saturday mornings')$$,
  'a lesson editor adds a client lesson'
);
select is(
  (select client_id from lessons where title = 'Weekend slots'), :'acme'::uuid,
  'the lesson belongs to the editor''s client'
);
select throws_ok(
  $$insert into lessons (scope, title) values ('universal', 'Sneaky universal')$$,
  '23514', null, 'a member cannot create a universal lesson'
);
select throws_ok(
  $$insert into lessons (title, priority) values ('Too important', 11)$$,
  '23514', null, 'priority is 1 to 10'
);
select throws_ok(
  $$insert into lessons (title, lesson_type) values ('Bad type', 'gossip')$$,
  '22P02', null, 'lesson_type is one of the API contract''s types'
);
update lessons set status = 'archived' where title = 'Weekend slots';
select is(
  (select archived_at is not null from lessons where title = 'Weekend slots'), true,
  'archiving stamps archived_at'
);
update lessons set title = 'Hacked' where id = :'universal';
select is(
  (select title from lessons where id = :'universal'), 'Never quote prices',
  'universal lessons are not writable by members (no row updated)'
);
select throws_ok(
  $$update lessons set times_applied = 100 where title = 'Weekend slots'$$,
  '42501', null, 'usage counters are kept by the AI pipeline, not by users'
);
select throws_ok(
  $$delete from lessons where title = 'Weekend slots'$$,
  '42501', null, 'lessons are archived, never deleted by users'
);
select tests.clear_authentication();
select tests.authenticate_as(:'other_admin');
update lessons set title = 'Renamed' where title = 'Weekend slots';
select is(
  (select count(*)::integer from lessons where title = 'Renamed'), 0,
  'another client''s admin cannot touch the lesson'
);
select tests.clear_authentication();
select tests.authenticate_as(:'admin');
select lives_ok(
  $$update lessons set status = 'active', priority = 10 where title = 'Weekend slots'$$,
  'an admin edits lessons without the explicit permission'
);

select tests.clear_authentication();
select tests.authenticate_as_service_role();
select lives_ok(
  $$insert into lessons (client_id, scope, title) values (null, 'universal', 'Platform lesson')$$,
  'the service role maintains universal lessons'
);

select * from finish();
rollback;
