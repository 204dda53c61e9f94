-- Dataset counters kept by the statement-level triggers on leads: every kind of change,
-- checked against the definitions written out independently here.
begin;
set local search_path = public, extensions;
set local client_min_messages = warning;
select plan(24);

select tests.create_client('Acme') as acme \gset
select tests.create_user('admin@acme.test', :'acme', 'admin') as admin \gset
select tests.create_user('rep@acme.test', :'acme', 'sales_rep') as rep \gset
insert into datasets (client_id, name) values (:'acme', 'One') returning id as d1 \gset
insert into datasets (client_id, name) values (:'acme', 'Two') returning id as d2 \gset

-- The definitions, restated: what the counters must equal.
create function pg_temp.expected(p_dataset uuid) returns integer []
language sql as $$
  select array[
    count(*),
    count(*) filter (where not archived and not opted_out
      and contact_status not in ('CONVERTED', 'NOT_INTERESTED', 'OPTED_OUT', 'UNDELIVERABLE')),
    count(*) filter (where not archived and (contact_status = 'HOT' or lead_sentiment = 'HOT')),
    count(*) filter (where contact_status = 'CONVERTED')
  ]::integer []
  from public.leads where dataset_id = p_dataset
$$;
create function pg_temp.stats(p_dataset uuid) returns integer []
language sql as $$
  select array[total_leads, active_leads, hot_leads, converted_leads] from public.datasets where id = p_dataset
$$;

-- A set-based insert of every status x sentiment x archived x opted_out combination.
insert into leads (client_id, dataset_id, phone_number, contact_status, lead_sentiment, archived, opted_out)
select :'acme', case when i % 2 = 0 then :'d1'::uuid else :'d2'::uuid end,
  '+4477' || lpad(i::text, 8, '0'),
  (enum_range(null::lead_status))[1 + i % 14],
  (array[null, 'POSITIVE', 'NEGATIVE', 'NEUTRAL', 'HOT', 'UNCLEAR']::lead_sentiment [])[1 + (i / 14) % 6],
  (i / 84) % 2 = 1, (i / 168) % 2 = 1
from generate_series(1, 5000) i;
select is(pg_temp.stats(:'d1'), pg_temp.expected(:'d1'), 'bulk insert: dataset one exact');
select is(pg_temp.stats(:'d2'), pg_temp.expected(:'d2'), 'bulk insert: dataset two exact');
select is((pg_temp.stats(:'d1'))[1] + (pg_temp.stats(:'d2'))[1], 5000, 'every row counted once');

-- Status and sentiment changes, one statement across both datasets.
update leads set contact_status = 'HOT' where phone_number like '%1';
update leads set lead_sentiment = 'HOT' where phone_number like '%2';
update leads set contact_status = 'CONVERTED' where phone_number like '%3';
select is(pg_temp.stats(:'d1'), pg_temp.expected(:'d1'), 'status and sentiment changes: dataset one');
select is(pg_temp.stats(:'d2'), pg_temp.expected(:'d2'), 'status and sentiment changes: dataset two');

-- Archive / unarchive / opt-out.
update leads set archived = true where phone_number like '%4';
select is(pg_temp.stats(:'d1'), pg_temp.expected(:'d1'), 'archive');
update leads set archived = false where phone_number like '%4' or phone_number like '%5';
select is(pg_temp.stats(:'d1'), pg_temp.expected(:'d1'), 'unarchive');
update leads set opted_out = true, contact_status = 'OPTED_OUT' where phone_number like '%6';
select is(pg_temp.stats(:'d2'), pg_temp.expected(:'d2'), 'opt-out');

-- Single lead walk through the definitions.
insert into leads (client_id, dataset_id, phone_number) values (:'acme', :'d1', '+447000000001')
returning id as solo \gset
select pg_temp.stats(:'d1') as before \gset
update leads set lead_sentiment = 'HOT' where id = :'solo';
select is(
  pg_temp.stats(:'d1'),
  array[(:'before'::integer [])[1], (:'before'::integer [])[2], (:'before'::integer [])[3] + 1,
    (:'before'::integer [])[4]],
  'sentiment HOT adds one hot lead, nothing else'
);
update leads set archived = true where id = :'solo';
select is(
  (pg_temp.stats(:'d1'))[2:3], array[(:'before'::integer [])[2] - 1, (:'before'::integer [])[3]],
  'archiving removes it from active and hot'
);
update leads set archived = false, contact_status = 'CONVERTED' where id = :'solo';
select is(
  pg_temp.stats(:'d1'),
  array[(:'before'::integer [])[1], (:'before'::integer [])[2] - 1, (:'before'::integer [])[3] + 1,
    (:'before'::integer [])[4] + 1],
  'converted: not active, still hot by sentiment, counted as converted'
);

-- Moving a lead to another dataset (service path) moves its counts.
update leads set dataset_id = :'d2' where id = :'solo';
select is(pg_temp.stats(:'d1'), pg_temp.expected(:'d1'), 'move: source dataset');
select is(pg_temp.stats(:'d2'), pg_temp.expected(:'d2'), 'move: target dataset');

-- A statement that changes nothing counted does not write (or lock) the dataset row.
select ctid::text as ctid_before from datasets where id = :'d1' \gset
update leads set notes = 'called', m1_sent_at = now(), contact_status = 'M1_SENT'
where dataset_id = :'d1' and contact_status = 'READY';
select is((select ctid::text from datasets where id = :'d1'), :'ctid_before',
  'an update of non-counted attributes leaves the dataset row alone');

-- Writers without rights on datasets still keep the counters right (security definer trigger).
select tests.clear_authentication(), tests.authenticate_as(:'rep');
insert into leads (dataset_id, phone_number) values (:'d1', '+447000000002');
update leads set contact_status = 'HOT' where phone_number = '+447000000002';
update leads set contact_status = 'NOT_INTERESTED' where phone_number = '+447000000001';
select tests.clear_authentication();
select is(pg_temp.stats(:'d1'), pg_temp.expected(:'d1'), 'a sales rep''s writes are counted');
select is(pg_temp.stats(:'d2'), pg_temp.expected(:'d2'), 'in every dataset');

select tests.authenticate_as(:'rep');
select throws_ok(format('update datasets set total_leads = 0 where id = %L', :'d1'), '42501', null,
  'users cannot write the counters');
select throws_ok(format('select private.recount_dataset_stats(%L)', :'d1'), '42501', null,
  'users cannot run the recount');
select tests.clear_authentication();

-- Deletes.
delete from leads where dataset_id = :'d2' and phone_number like '%7';
select is(pg_temp.stats(:'d2'), pg_temp.expected(:'d2'), 'delete');

-- Repair.
update datasets set total_leads = 1, active_leads = 1, hot_leads = 1, converted_leads = 1 where id = :'d1';
select is(private.recount_dataset_stats(:'d1'), 1, 'recount reports the wrong dataset');
select is(pg_temp.stats(:'d1'), pg_temp.expected(:'d1'), 'and fixes it');
select is(private.recount_dataset_stats(null), 0, 'a full recount finds nothing else wrong');

-- Deleting a dataset cascades through the delete trigger without error.
select lives_ok(format('delete from datasets where id = %L', :'d2'), 'dataset delete cascades');

truncate leads cascade;
select is(pg_temp.stats(:'d1'), array[0, 0, 0, 0], 'truncate zeroes the counters');

select * from finish();
rollback;
