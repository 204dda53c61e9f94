-- The API's per-subject rate limit: fixed one-minute windows counted in the database.
begin;
select plan(12);

select tests.authenticate_as(tests.create_user('rl@example.test', tests.create_client()));
select throws_ok(
  $$select * from private.hit_api_rate_limit('user:me', 1000000)$$,
  '42501', null, 'authenticated users cannot call (or reset) the rate limiter'
);
select throws_ok(
  $$delete from private.api_rate_limits$$,
  '42501', null, 'authenticated users cannot clear their counts'
);
select tests.clear_authentication();
select tests.authenticate_as_service_role();

select results_eq($$select allowed, hits from private.hit_api_rate_limit('user:pgtap', 3)$$, $$values (true, 1)$$, '1st request in the minute is counted and allowed');
select results_eq($$select allowed, hits from private.hit_api_rate_limit('user:pgtap', 3)$$, $$values (true, 2)$$, '2nd request is allowed');
select results_eq($$select allowed, hits from private.hit_api_rate_limit('user:pgtap', 3)$$, $$values (true, 3)$$, '3rd request (the limit) is allowed');
select results_eq($$select allowed, hits from private.hit_api_rate_limit('user:pgtap', 3)$$, $$values (false, 4)$$, '4th request is refused');
select results_eq(
  $$select allowed, retry_after_seconds between 1 and 60 from private.hit_api_rate_limit('user:pgtap', 3)$$,
  $$values (false, true)$$,
  'later requests stay refused and are told to retry within the minute'
);
select results_eq($$select allowed, hits from private.hit_api_rate_limit('user:other', 3)$$, $$values (true, 1)$$, 'another subject has its own count');

select tests.clear_authentication();
insert into private.api_rate_limits (subject, window_start, hits) values
  ('user:earlier', date_trunc('minute', now()) - interval '1 minute', 100),
  ('user:stale', date_trunc('minute', now()) - interval '10 minutes', 5);
select tests.authenticate_as_service_role();
select results_eq(
  $$select allowed, hits from private.hit_api_rate_limit('user:earlier', 3)$$, $$values (true, 1)$$,
  'a new minute starts a new count'
);
select tests.clear_authentication();

select lives_ok('select private.purge_api_rate_limits()', 'the purge runs');
select is((select count(*)::int from private.api_rate_limits where subject = 'user:stale'), 0, 'windows older than five minutes are purged');
select is((select count(*)::int from private.api_rate_limits where subject = 'user:earlier'), 2, 'recent windows are kept');

select * from finish();
rollback;
