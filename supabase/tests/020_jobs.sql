-- The durable jobs core: who may touch it, idempotent enqueue, skip-locked claims with a
-- lease, retries with backoff, lost leases counted apart from attempts (crash loops),
-- dead-lettering in the claim path, graceful release and the sweeper.
-- Every claim names its test kinds so jobs enqueued by other migrations' triggers never interfere.
begin;
select plan(63);

-- Access ------------------------------------------------------------------------------------
select tests.authenticate_as(tests.create_user('jobs@example.test', tests.create_client()));
select throws_ok('select * from private.jobs', '42501', null, 'authenticated cannot read private.jobs');
select throws_ok($$update private.jobs set status = 'dead'$$, '42501', null, 'authenticated cannot change private.jobs');
select throws_ok($$select private.enqueue_job('test.sneaky')$$, '42501', null, 'authenticated cannot enqueue jobs');
select throws_ok($$select * from private.claim_jobs('me')$$, '42501', null, 'authenticated cannot claim jobs');
select throws_ok('select private.sweep_jobs()', '42501', null, 'authenticated cannot run the sweeper');
select tests.clear_authentication();

-- Skip locked: another session holds a row lock on a due job ------------------------------
-- The job must be committed for both sessions to see it; the other session inserts and
-- deletes it with triggers off (replica role) so it leaves nothing behind.
create extension if not exists dblink with schema extensions;
select dblink_connect('pgtap_locker', format('host=%s port=%s dbname=%s user=%s',
  split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'),
  current_database(), current_user)) as connected \gset
select dblink_exec('pgtap_locker', 'set session_replication_role = replica') as ok \gset
select dblink_exec('pgtap_locker', $$insert into private.jobs (kind, idempotency_key, priority)
  values ('test.skip_locked', 'pgtap:skip-locked', 1)$$) as ok \gset
select dblink_exec('pgtap_locker', 'begin') as ok \gset
select id as locked_id from dblink('pgtap_locker',
  $$select id from private.jobs where idempotency_key = 'pgtap:skip-locked' for update$$) as t (id bigint) \gset

select tests.authenticate_as_service_role();
select ok(
  exists (select from private.jobs where id = :locked_id and status = 'queued'),
  'the locked job is due and visible here'
);
select private.enqueue_job('test.skip_locked', p_priority => 2::smallint) as free_id \gset
set local lock_timeout = '5s';  -- a claim that waited instead of skipping would fail, not hang
select results_eq(
  $$select id from private.claim_jobs('w1', array['test.skip_locked'], 10)$$,
  format('values (%s::bigint)', :free_id),
  'claim skips the row another worker holds locked (no waiting) and takes the free job'
);
select tests.clear_authentication();
select dblink_exec('pgtap_locker', $$delete from private.jobs where idempotency_key = 'pgtap:skip-locked'$$) as ok \gset
select dblink_exec('pgtap_locker', 'commit') as ok \gset
select dblink_disconnect('pgtap_locker') as ok \gset

select tests.authenticate_as_service_role();

-- Enqueue -----------------------------------------------------------------------------------
select private.enqueue_job('test.idem', '{"n": 1}', null, 'pgtap:idem') as idem1 \gset
select is(
  private.enqueue_job('test.idem', '{"n": 2}', null, 'pgtap:idem'), :idem1::bigint,
  'enqueue with a known idempotency key returns the existing job'
);
select results_eq(
  $$select count(*)::int, min(payload ->> 'n') from private.jobs where idempotency_key = 'pgtap:idem'$$,
  $$values (1, '1')$$,
  'the key yields one job, with the first payload'
);
select isnt(private.enqueue_job('test.nokey'), private.enqueue_job('test.nokey'), 'enqueue without a key always adds a job');
select private.enqueue_job('test.later', p_run_at => now() + interval '1 hour') as later_id \gset
select is_empty($$select * from private.claim_jobs('w1', array['test.later'])$$, 'a job is not claimed before its run_at');

-- Claims ------------------------------------------------------------------------------------
select private.enqueue_job('test.claim', p_priority => 20::smallint) as c2 \gset
select private.enqueue_job('test.claim', p_priority => 10::smallint) as c1 \gset
select results_eq(
  $$select id, attempts, locked_by, locked_until = now() + interval '120 seconds'
    from private.claim_jobs('w1', array['test.claim'], 1)$$,
  format($$values (%s::bigint, 0, 'w1', true)$$, :c1),
  'a claim takes the most urgent job and leases it for the visibility timeout, spending no attempt'
);
select results_eq(
  $$select id from private.claim_jobs('w2', array['test.claim'], 1)$$,
  format('values (%s::bigint)', :c2),
  'a second claim skips the claimed job and takes the next'
);
select is_empty($$select * from private.claim_jobs('w3', array['test.claim'], 10)$$, 'no job is handed out twice while its lock holds');

-- Lost leases ---------------------------------------------------------------------------------
select private.enqueue_job('test.visibility') as v1 \gset
select private.enqueue_job('test.visibility') as v2 \gset
select is((select count(*)::int from private.claim_jobs('w1', array['test.visibility'], 1)), 1, 'w1 claims the older job');
update private.jobs set locked_until = now() - interval '1 second' where id = :v1;  -- w1 was killed
select results_eq(
  $$select id from private.claim_jobs('w2', array['test.visibility'], 10)$$,
  format('values (%s::bigint)', :v2),
  'the next claim does not hand out the job of the vanished worker first: it takes the other due job'
);
select results_eq(
  format($$select status::text, attempts, lease_losses, locked_by, locked_until,
    run_at between now() + interval '0.75 seconds' and now() + interval '1.25 seconds', last_error
    from private.jobs where id = %s$$, :v1),
  $$values ('queued', 0, 1, null::text, null::timestamptz, true,
    'lease lost 1 time(s): worker w1 did not report within its lease')$$,
  'the lost lease is settled in the claim path: queued again behind the due work (1 s backoff), a lease loss, no attempt'
);
select isnt(private.complete_job(:v1, 'w1', '{"late": true}'), true, 'the vanished worker''s late completion is refused');
select isnt(private.fail_job(:v1, 'w1', 'late'), 'queued'::private.job_status, 'the vanished worker''s late failure is ignored');
update private.jobs set run_at = now() where id = :v1;
select results_eq(
  $$select id, attempts, lease_losses, locked_by from private.claim_jobs('w2', array['test.visibility'])$$,
  format($$values (%s::bigint, 0, 1, 'w2')$$, :v1),
  'after its backoff another worker claims it'
);
select is(private.complete_job(:v1, 'w2', '{"ok": true}'), true, 'the current owner completes the job');
select results_eq(
  format($$select status::text, attempts, result, locked_until, finished_at is not null from private.jobs where id = %s$$, :v1),
  $$values ('done', 1, '{"ok": true}'::jsonb, null::timestamptz, true)$$,
  'a completed job is done after one attempt, keeps its result and holds no lock'
);
select is((select lease_losses from private.jobs where id = :v1), 1, 'the lease loss stays on the record');

-- A handler that kills its worker every time: attempts never move, the lease-loss cap ends it.
select tests.clear_authentication();
select tests.create_client('Crash loop client') as crash_client \gset
select tests.create_user('crash-admin@example.test', :'crash_client') as crash_admin \gset
select tests.authenticate_as_service_role();
select private.enqueue_job('test.crashloop', p_client_id => :'crash_client') as cl \gset
update private.jobs set max_lease_losses = 3 where id = :cl;
select is((select count(*)::int from private.claim_jobs('w1', array['test.crashloop'])), 1, 'crash loop: run 1 claimed');
update private.jobs set locked_until = now() - interval '1 second' where id = :cl;
select is_empty($$select * from private.claim_jobs('w1', array['test.crashloop'])$$, 'crash loop: lease 1 lost, the job waits out its backoff');
update private.jobs set run_at = now() where id = :cl;
select is((select count(*)::int from private.claim_jobs('w1', array['test.crashloop'])), 1, 'crash loop: run 2 claimed');
update private.jobs set locked_until = now() - interval '1 second' where id = :cl;
select is_empty($$select * from private.claim_jobs('w1', array['test.crashloop'])$$, 'crash loop: lease 2 lost');
select ok(
  (select run_at between now() + interval '1.5 seconds' and now() + interval '2.5 seconds' from private.jobs where id = :cl),
  'the second lease loss backs off 2 s (exponential) give or take 25 %'
);
update private.jobs set run_at = now() where id = :cl;
select is((select count(*)::int from private.claim_jobs('w1', array['test.crashloop'])), 1, 'crash loop: run 3 claimed');
update private.jobs set locked_until = now() - interval '1 second' where id = :cl;
select is_empty($$select * from private.claim_jobs('w1', array['test.crashloop'])$$, 'crash loop: lease 3 lost');
select results_eq(
  format($$select status::text, attempts, lease_losses, finished_at is not null, last_error like 'lease lost 3 time(s)%%'
    from private.jobs where id = %s$$, :cl),
  $$values ('dead', 0, 3, true, true)$$,
  'at the lease-loss cap the claim path itself dead-letters the job (no sweeper needed), attempts untouched'
);
select tests.clear_authentication();
select tests.authenticate_as(:'crash_admin');
select results_eq(
  $$select id, attempts, lease_losses from public.dead_jobs where kind = 'test.crashloop'$$,
  format('values (%s::bigint, 0, 3)', :cl),
  'the crash-looped job is in dead_jobs for the client''s admin'
);
select results_eq(
  $$select title, (data ->> 'job_id')::bigint from public.notifications where data ->> 'kind' = 'test.crashloop'$$,
  format($$values ('A background job failed', %s::bigint)$$, :cl),
  'and the admin was alerted'
);
select tests.clear_authentication();
select tests.authenticate_as_service_role();

-- A job past its lease with no attempt left never stays running.
select private.enqueue_job('test.lastlease') as ll \gset
select is((select count(*)::int from private.claim_jobs('w1', array['test.lastlease'])), 1, 'last-attempt job claimed');
update private.jobs set max_attempts = 1, attempts = 1, locked_until = now() - interval '1 second' where id = :ll;
select is_empty($$select * from private.claim_jobs('w2', array['test.lastlease'])$$, 'it is not handed out again');
select is((select status::text from private.jobs where id = :ll), 'dead', 'past its lease at max attempts, the claim makes it dead');
select private.enqueue_job('test.noattempts') as na \gset
update private.jobs set max_attempts = 1, attempts = 1 where id = :na;
select is_empty($$select * from private.claim_jobs('w1', array['test.noattempts'])$$, 'a due job with no attempt left is not claimed');
select is((select status::text from private.jobs where id = :na), 'dead', 'it is dead-lettered by the claim instead');
select is_empty(
  $$select id from private.jobs where kind like 'test.%' and status = 'running' and locked_until < now()$$,
  'after the claims, no job is running past its lease'
);

-- Failures: retry with backoff, then dead -----------------------------------------------------
select private.enqueue_job('test.retry', p_max_attempts => 3) as r1 \gset
select is((select count(*)::int from private.claim_jobs('w1', array['test.retry'])), 1, 'attempt 1 claimed');
select is(private.fail_job(:r1, 'w1', 'boom 1')::text, 'queued', 'a failed attempt is re-queued');
select is((select attempts from private.jobs where id = :r1), 1, 'the handler failure is what counts the attempt');
select ok(
  (select run_at between now() + interval '1.5 seconds' and now() + interval '2.5 seconds' and locked_until is null
   from private.jobs where id = :r1),
  'the first retry waits 2 s (2^attempts) give or take 25 %'
);
select is_empty($$select * from private.claim_jobs('w1', array['test.retry'])$$, 'a re-queued job waits out its backoff');
update private.jobs set run_at = now() where id = :r1;
select is((select count(*)::int from private.claim_jobs('w1', array['test.retry'])), 1, 'attempt 2 claimed');
select is(private.fail_job(:r1, 'w1', 'boom 2')::text, 'queued', 'the second failure is re-queued too');
select ok(
  (select run_at between now() + interval '3 seconds' and now() + interval '5 seconds' from private.jobs where id = :r1),
  'the second retry waits 4 s give or take 25 % (exponential)'
);
update private.jobs set run_at = now() where id = :r1;
select is((select count(*)::int from private.claim_jobs('w1', array['test.retry'])), 1, 'attempt 3 claimed');
select is(private.fail_job(:r1, 'w1', 'boom 3')::text, 'dead', 'the last attempt''s failure dead-letters the job');
select results_eq(
  format($$select status::text, attempts, last_error, finished_at is not null from private.jobs where id = %s$$, :r1),
  $$values ('dead', 3, 'boom 3', true)$$,
  'a dead job keeps its attempts and last error'
);
update private.jobs set run_at = now() - interval '1 minute' where id = :r1;
select is_empty($$select * from private.claim_jobs('w1', array['test.retry'])$$, 'a dead job is never claimed again');

select private.enqueue_job('test.permanent') as p1 \gset
select is((select count(*)::int from private.claim_jobs('w1', array['test.permanent'])), 1, 'permanent-failure job claimed');
select is(private.fail_job(:p1, 'w1', 'bad request', false)::text, 'dead', 'a failure without retry dead-letters at once');
select private.enqueue_job('test.retry_in') as ri \gset
select is((select count(*)::int from private.claim_jobs('w1', array['test.retry_in'])), 1, 'retry-in job claimed');
select is(private.fail_job(:ri, 'w1', 'rate limited', true, 30)::text, 'queued', 'a failure with an explicit delay is re-queued');
select is((select run_at from private.jobs where id = :ri), now() + interval '30 seconds', 'the explicit delay replaces the backoff');

-- Graceful release ------------------------------------------------------------------------------
select private.enqueue_job('test.release') as rel1 \gset
select private.enqueue_job('test.release') as rel2 \gset
select is((select count(*)::int from private.claim_jobs('w9', array['test.release'], 10)), 2, 'w9 claims two jobs');
select is(private.release_jobs('w9'), 2, 'release_jobs gives back both claims');
select results_eq(
  $$select status::text, attempts, locked_by, locked_until from private.jobs where kind = 'test.release' order by id$$,
  $$values ('queued', 0, null::text, null::timestamptz), ('queued', 0, null, null)$$,
  'released jobs are queued again without spending an attempt'
);

-- Sweeper ---------------------------------------------------------------------------------------
select private.enqueue_job('test.sweep', p_max_attempts => 1) as s1 \gset
select private.enqueue_job('test.sweep', p_max_attempts => 3) as s2 \gset
update private.jobs set max_lease_losses = 1 where id = :s1;
select is((select count(*)::int from private.claim_jobs('w5', array['test.sweep'], 10)), 2, 'w5 claims two jobs, then dies');
update private.jobs set locked_until = now() - interval '1 second' where id in (:s1, :s2);
select cmp_ok(private.sweep_jobs(), '>=', 2, 'with no worker claiming, the sweeper settles both lost leases');
select results_eq(
  format($$select id, status::text, lease_losses, last_error from private.jobs where id in (%s, %s) order by id$$, :s1, :s2),
  format($$values (%s::bigint, 'dead', 1, 'lease lost 1 time(s): worker w5 did not report within its lease'),
    (%s, 'queued', 1, 'lease lost 1 time(s): worker w5 did not report within its lease')$$, :s1, :s2),
  'the job out of lease losses is dead-lettered, the other is queued for a re-claim'
);
select is_empty(
  $$select id from private.jobs where status = 'running' and locked_until < now()$$,
  'after a sweep, no job of any kind is running past its lease'
);

select * from finish();
rollback;
