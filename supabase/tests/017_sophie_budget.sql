-- The API contract's "Sophie analysis: 1000 requests/hour per client", ready for the Sophie routes
-- (private.use_sophie_budget: spend one or 429) and for workers (private.sophie_budget: is
-- there budget and when next; private.take_hourly_budget: spend without raising).
begin;
select plan(17);

select tests.create_client('Sophie A') as a \gset
select tests.create_client('Sophie B') as b \gset
select tests.create_user('member@sophie-a.test', :'a', 'admin') as member \gset

-- Who may spend or read a budget ----------------------------------------------------------------
select tests.authenticate_as(:'member');
select is(tests.error_of(format('select private.use_sophie_budget(%L)', :'b')) ->> 'sqlstate', '42501',
  'a user cannot spend (or exhaust) a client''s budget directly: route bodies and workers do');
select is(tests.error_of(format('select * from private.sophie_budget(%L)', :'a')) ->> 'sqlstate', '42501',
  'nor read it');
select tests.clear_authentication();
select tests.authenticate_as_anon();
select is(tests.error_of(format('select private.use_sophie_budget(%L)', :'a')) ->> 'sqlstate', '42501',
  'anon neither');
select tests.clear_authentication();

-- Routes: spend one or 429 ----------------------------------------------------------------------
select tests.authenticate_as_service_role();
select results_eq(
  format('select available, remaining, next_available_at = now() from private.sophie_budget(%L)', :'a'),
  $$values (true, 1000, true)$$, 'a client starts with 1,000 analyses available now'
);
select is(tests.succeeds_times(1000, format('select private.use_sophie_budget(%L)', :'a')), 1000, '1,000 analyses in the hour are allowed');
select tests.error_of(format('select private.use_sophie_budget(%L)', :'a')) as refused \gset
select is((:'refused'::jsonb -> 'http' ->> 'status')::int, 429, 'the 1,001st is refused with HTTP 429');
select is(:'refused'::jsonb -> 'body' ->> 'code', 'RATE_LIMITED', '... code RATE_LIMITED');
select is(:'refused'::jsonb -> 'http' -> 'headers' ->> 'Retry-After', '3600',
  '... retry when the oldest analysis leaves the rolling hour (all were just now: in an hour)');
select is(:'refused'::jsonb -> 'body' -> 'details' -> 'limit_per_hour', '1000'::jsonb, '... details name the limit');

-- Workers: ask, defer, spend without raising ---------------------------------------------------
select results_eq(
  format('select available, remaining, next_available_at = now() + interval ''1 hour'' from private.sophie_budget(%L)', :'a'),
  $$values (false, 0, true)$$, 'a worker sees no budget and when it comes back (to defer the job, not drop it)'
);
select tests.clear_authentication();
select is((select count(*)::int from private.hourly_budget_uses where client_id = :'a'), 1000,
  'the refusal spent nothing');
update private.hourly_budget_uses set used_at = now() - interval '59 minutes'
where ctid = (select ctid from private.hourly_budget_uses where client_id = :'a' limit 1);
select tests.authenticate_as_service_role();
select is(
  (select next_available_at from private.sophie_budget(:'a')), now() + interval '1 minute',
  'the next unit frees when the oldest use is an hour old'
);
select results_eq(
  format($$select allowed, retry_after_seconds from private.take_hourly_budget('sophie_analysis', %L, 1000)$$, :'a'),
  $$values (false, 60)$$, 'take_hourly_budget answers "not now, in 60 seconds" without raising'
);
select tests.clear_authentication();
update private.hourly_budget_uses set used_at = now() - interval '61 minutes'
where ctid = (select ctid from private.hourly_budget_uses where client_id = :'a' order by used_at limit 1);
select tests.authenticate_as_service_role();
select results_eq(
  format($$select allowed, used from private.take_hourly_budget('sophie_analysis', %L, 1000)$$, :'a'),
  $$values (true, 1000)$$, 'once it is older than an hour, the freed unit can be spent'
);
select results_eq(
  format('select available, remaining from private.sophie_budget(%L)', :'b'),
  $$values (true, 1000)$$, 'another client''s budget is its own'
);
select tests.clear_authentication();

-- Housekeeping ----------------------------------------------------------------------------------
select lives_ok('select private.purge_api_rate_limits()', 'the purge runs');
select results_eq(
  format($$select count(*)::int, count(*) filter (where used_at < now() - interval '1 hour')::int
    from private.hourly_budget_uses where client_id = %L$$, :'a'),
  $$values (1000, 0)$$, 'uses older than an hour are purged, the rest kept'
);

select * from finish();
rollback;
