-- PostgREST's pre-request hook: the per-user limit (100/minute, one count with FastAPI's),
-- per-address for anonymous requests, 429 RATE_LIMITED with Retry-After over the limit.
-- Everything runs in one transaction, so now() (and so the minute window) cannot roll over.
begin;
select plan(26);

-- What PostgREST does before every request: switch to the request's role, set the request
-- GUCs and call the function named by pgrst.db_pre_request on role authenticator. Returns
-- null when the request may go on, else the error as a PostgREST client would see it.
create or replace function tests.pgrst_pre_request(
  p_role text, p_claims jsonb, p_headers jsonb default '{}', p_method text default 'POST',
  p_path text default '/rpc/list_datasets'
) returns jsonb
language plpgsql
as $$
declare
  v_fn text;
  v_state text;
  v_msg text;
  v_detail text;
begin
  select split_part(c, '=', 2) into v_fn
  from pg_db_role_setting s, unnest(s.setconfig) c
  where s.setrole = 'authenticator'::regrole and s.setdatabase = 0 and c like 'pgrst.db_pre_request=%';
  perform set_config('role', p_role, true);
  perform set_config('request.jwt.claims', p_claims::text, true);
  perform set_config('request.headers', p_headers::text, true);
  perform set_config('request.method', p_method, true);
  perform set_config('request.path', p_path, true);
  execute format('select %s()', v_fn);
  perform set_config('role', 'postgres', true);
  return null;
exception when others then
  get stacked diagnostics v_state = returned_sqlstate, v_msg = message_text, v_detail = pg_exception_detail;
  if v_state = 'PGRST' then
    -- PostgREST's rule: the body is `message`, the HTTP status and headers come from `detail`.
    return jsonb_build_object('sqlstate', v_state, 'body', v_msg::jsonb, 'http', v_detail::jsonb);
  end if;
  return jsonb_build_object('sqlstate', v_state, 'message', v_msg);
end
$$;

create or replace function tests.pgrst_as_user(p_user uuid, p_method text default 'POST') returns jsonb
language sql
as $$
  select tests.pgrst_pre_request('authenticated',
    jsonb_build_object('sub', p_user, 'role', 'authenticated', 'aud', 'authenticated'),
    '{"x-forwarded-for": "192.0.2.10"}', p_method)
$$;

create or replace function tests.pgrst_as_anon(p_headers jsonb, p_claims jsonb default '{"role": "anon"}') returns jsonb
language sql
as $$
  select tests.pgrst_pre_request('anon', p_claims, p_headers, 'POST', '/rpc/anything')
$$;

create or replace function tests.pre_request_passes(p_calls integer, p_call text) returns integer
language plpgsql
as $$
declare
  v_ok integer := 0;
  v_result jsonb;
begin
  for i in 1..p_calls loop
    execute p_call into v_result;
    if v_result is null then
      v_ok := v_ok + 1;
    end if;
  end loop;
  return v_ok;
end
$$;

select tests.create_client() as client_id \gset
select tests.create_user('rl-a@example.test', :'client_id') as user_a \gset
select tests.create_user('rl-b@example.test', :'client_id') as user_b \gset
select tests.create_user('rl-c@example.test', :'client_id') as user_c \gset
select tests.create_user('rl-d@example.test', :'client_id') as user_d \gset

select is(
  (select c from pg_db_role_setting s, unnest(s.setconfig) c
   where s.setrole = 'authenticator'::regrole and c like 'pgrst.db_pre_request=%'),
  'pgrst.db_pre_request=private.pre_request',
  'the migration registers the hook on role authenticator, for every database'
);

-- Per user -----------------------------------------------------------------------------------
select is(tests.pre_request_passes(100, format('select tests.pgrst_as_user(%L)', :'user_a')), 100,
  'a user''s first 100 PostgREST requests in the minute go through');
select tests.pgrst_as_user(:'user_a') as refused \gset
select is((:'refused'::jsonb) ->> 'sqlstate', 'PGRST', 'the 101st raises PostgREST''s custom error');
select is(((:'refused'::jsonb) -> 'http' ->> 'status')::int, 429, '... which PostgREST answers with HTTP 429');
select ok(
  ((:'refused'::jsonb) -> 'http' -> 'headers' ->> 'Retry-After')::int between 1 and 60
    and jsonb_typeof((:'refused'::jsonb) -> 'http' -> 'headers' -> 'Retry-After') = 'string',
  '... with a Retry-After header (a string, as PostgREST requires) of at most a minute'
);
select is(
  ((:'refused'::jsonb) -> 'body') - 'details'::text,
  '{"code": "RATE_LIMITED", "message": "Too many requests; slow down.", "hint": null}'::jsonb,
  '... and the body the FastAPI door gives: code RATE_LIMITED'
);
select is(
  (:'refused'::jsonb) -> 'body' -> 'details' -> 'limit_per_minute', '100'::jsonb,
  '... details name the limit'
);
select is(
  ((:'refused'::jsonb) -> 'body' -> 'details' ->> 'retry_after_seconds'),
  (:'refused'::jsonb) -> 'http' -> 'headers' ->> 'Retry-After',
  '... and the same retry time as the header'
);
select is(tests.pgrst_as_user(:'user_a', 'DELETE') -> 'http' ->> 'status', '429',
  'every method is limited, not only RPC calls');
select is(
  (select sum(hits)::int from private.api_rate_limits where subject = 'user:' || :'user_a'),
  100, 'refused requests are not counted (their transaction rolls back)'
);
select is(tests.pgrst_as_user(:'user_b'), null, 'another user is unaffected');

-- One count with FastAPI ------------------------------------------------------------------------
select tests.authenticate_as_service_role();
select is(
  tests.pre_request_passes(60, format(
    $$select case when h.allowed then null else '{}'::jsonb end from private.hit_api_rate_limit(%L, 100) h$$,
    'user:' || :'user_c')),
  60, 'user C spends 60 requests through FastAPI (private.hit_api_rate_limit, the API''s limiter)'
);
select tests.clear_authentication();
select is(tests.pre_request_passes(40, format('select tests.pgrst_as_user(%L)', :'user_c')), 40,
  '... and 40 more through PostgREST');
select is(tests.pgrst_as_user(:'user_c') -> 'http' ->> 'status', '429',
  'the 101st of the minute is refused by PostgREST: both doors share one count');
select tests.authenticate_as_service_role();
select is((select allowed from private.hit_api_rate_limit('user:' || :'user_c', 100)), false,
  '... and by FastAPI');
select tests.clear_authentication();

-- Anonymous requests: per client address ---------------------------------------------------------
select is(
  tests.pre_request_passes(100, $$select tests.pgrst_as_anon('{"x-forwarded-for": "203.0.113.7, 10.0.0.1"}')$$), 100,
  'an address''s first 100 anonymous requests go through (the first X-Forwarded-For entry is the client)'
);
select is(tests.pgrst_as_anon('{"x-forwarded-for": "203.0.113.7"}') -> 'http' ->> 'status', '429',
  'its 101st is refused, whatever proxies it came through');
select is(tests.pgrst_as_anon('{"x-forwarded-for": "203.0.113.7"}', '{}') -> 'http' ->> 'status', '429',
  'a request without any JWT (no claims, role anon) counts as the same address');
select is(tests.pgrst_as_anon('{"x-forwarded-for": "203.0.113.7:51234"}') -> 'http' ->> 'status', '429',
  'an address written with a port is the same address');
select is(tests.pgrst_as_anon('{"x-forwarded-for": "198.51.100.2"}'), null, 'another address is unaffected');
select is(
  tests.pre_request_passes(100, $$select tests.pgrst_as_anon('{"x-forwarded-for": "[2001:DB8::1]:443"}')$$)
    + tests.pre_request_passes(1, $$select tests.pgrst_as_anon('{"x-forwarded-for": "2001:db8::1"}')$$),
  100, 'IPv6 too: [2001:DB8::1]:443 and 2001:db8::1 are one address'
);
select is(tests.pgrst_as_anon('{"x-forwarded-for": "not an address"}'), null,
  'an unparsable X-Forwarded-For is no error (counted as the shared unknown address)');
select is(
  tests.pre_request_passes(150, $$select tests.pgrst_pre_request('service_role', '{"role": "service_role"}')$$), 150,
  'service_role (webhooks, workers, edge functions) is not limited'
);

-- Read-only requests (GET, HEAD, stable functions): checked, not counted -----------------------------
set transaction read only;
select is(tests.pgrst_as_user(:'user_a', 'GET') -> 'http' ->> 'status', '429',
  'a read-only request of a user at the limit is refused');
select is(tests.pgrst_as_user(:'user_d', 'GET'), null, 'a read-only request under the limit goes through');
select is(
  (select count(*)::int from private.api_rate_limits where subject = 'user:' || :'user_d'), 0,
  '... uncounted: a READ ONLY transaction cannot write the count'
);

select * from finish();
rollback;
