-- Lead search: names, email and phone typed in any format; wildcards are literal; results
-- equal what RLS shows; the trigram and covering indexes serve the queries.
begin;
set local search_path = public, extensions;
set local client_min_messages = warning;
select plan(25);

select tests.create_client('Acme') as acme \gset
select tests.create_client('Other') as other \gset
select tests.create_user('rep@acme.test', :'acme', 'sales_rep') as rep \gset
insert into datasets (client_id, name) values (:'acme', 'One') returning id as d1 \gset
insert into datasets (client_id, name) values (:'other', 'Theirs') returning id as d2 \gset
insert into leads (client_id, dataset_id, phone_number, first_name, last_name, email) values
  (:'acme', :'d1', '+447700900123', 'John', 'Smith', 'john.smith@example.com'),
  (:'acme', :'d1', '+447700900456', 'Jane', 'Smithers', 'jane_s@example.org'),
  (:'acme', :'d1', '+12025550123', 'Ana', 'García', null),
  (:'acme', :'d1', '+447911123456', 'Percy', '100% Real', 'percy@example.net'),
  (:'other', :'d2', '+447700900123', 'John', 'Smith', 'john.smith@example.com');

create function pg_temp.found(p_search text) returns text []
language sql as $$
  select coalesce(array_agg(x ->> 'phone_number' order by x ->> 'phone_number'), '{}')
  from jsonb_array_elements(public.list_leads(search => p_search) -> 'leads') x
$$;

select tests.authenticate_as(:'rep');
select is(pg_temp.found('07700 900123'), array['+447700900123'], 'national format with spaces');
select is(pg_temp.found('+44 7700 900123'), array['+447700900123'], 'international format with spaces');
select is(pg_temp.found('7700900123'), array['+447700900123'], 'bare national digits');
select is(pg_temp.found('0044 7700-900-123'), array['+447700900123'], '00 prefix and dashes');
select is(pg_temp.found('+44 (0)7700 900123'), array['+447700900123'], 'the (0) of UK business cards');
select is(pg_temp.found('900'), array['+447700900123', '+447700900456'], 'a partial number');
select is(pg_temp.found('(202) 555-0123'), array['+12025550123'], 'a US number as Americans write it');
select is(pg_temp.found('SMITH'), array['+447700900123', '+447700900456'], 'names, case-insensitive');
select is(pg_temp.found('smith john'), array['+447700900123'], 'every word must match, in any order');
select is(pg_temp.found('garcía'), array['+12025550123'], 'non-ASCII names');
select is(pg_temp.found('example.org'), array['+447700900456'], 'email domain');
select is(pg_temp.found('JOHN.SMITH@example.com'), array['+447700900123'], 'a whole email');
select is(pg_temp.found('n.smith@example.co'), array['+447700900123'], 'part of an email');
select is(pg_temp.found('jane_s'), array['+447700900456'], 'an underscore is literal');
select is(pg_temp.found('e_s'), array['+447700900456'], 'an underscore is not a wildcard');
select is(pg_temp.found('100%'), array['+447911123456'], 'a percent sign is literal');
select is(
  public.list_leads(search => 'john', dataset_id => :'d1') #>> '{pagination,total}', '1',
  'search combines with filters and sees only the caller''s client'
);

create function pg_temp.plan_of(p_sql text) returns text
language plpgsql as $$
declare
  v_plan text := '';
  v_line text;
begin
  for v_line in execute 'explain ' || p_sql loop
    v_plan := v_plan || v_line || e'\n';
  end loop;
  return v_plan;
end
$$;

-- list_leads applies the leads select policy itself (it runs as definer so that indexes
-- serve LIKE and enum filters): its answers must equal what RLS shows each member.
select tests.clear_authentication();
select tests.create_user('restricted@acme.test', :'acme', 'sales_rep', 'active', false, array[:'d1'::uuid])
  as restricted \gset
insert into datasets (client_id, name) values (:'acme', 'Hidden') returning id as hidden \gset
insert into leads (client_id, dataset_id, phone_number, first_name, last_name) values
  (:'acme', :'hidden', '+447700900999', 'John', 'Hidden');
select tests.authenticate_as(:'restricted');
select is(
  (public.list_leads(search => 'john') #>> '{pagination,total}')::integer,
  (select count(*)::integer from leads where search_text like '%john%'),
  'a restricted member''s search equals what RLS lets them see'
);
select is(
  (public.list_leads(status => 'READY') #>> '{pagination,total}')::integer,
  (select count(*)::integer from leads where contact_status = 'READY'),
  'so do their filters'
);
select is((public.list_leads() #>> '{pagination,total}')::integer, (select count(*)::integer from leads),
  'and their unfiltered total (from the dataset counters)');
select tests.clear_authentication(), tests.authenticate_as(:'rep');
select is(
  (public.list_leads(search => 'john') #>> '{pagination,total}')::integer,
  (select count(*)::integer from leads where search_text like '%john%'),
  'an unrestricted member''s search equals what RLS lets them see'
);
select is((public.list_leads() #>> '{pagination,total}')::integer, (select count(*)::integer from leads),
  'and their unfiltered total');
select tests.clear_authentication(), tests.authenticate_as_service_role();
select tests.throws_status($$ select public.list_leads() $$, 403, null, 'the service role is no member: no list');
select tests.clear_authentication();

-- Fresh statistics: without them the planner's pick between similar indexes varies by run.
analyze public.leads;
set local enable_seqscan = off;
select ok(
  pg_temp.plan_of($$ select id from public.leads l where l.search_text like '%7700900%' $$) ~ 'leads_search_trgm_idx',
  'the search condition is served by the trigram index'
);
select ok(
  pg_temp.plan_of(format($$ select count(*) from public.leads l where l.dataset_id = %L
    and l.contact_status = 'HOT' and not l.archived $$, :'d1')) ~ 'leads_dataset_status_cover_idx',
  'a dataset''s filter-only count is served by the covering index'
);

select * from finish();
rollback;
