-- The realtime feeds the API contract's frontend subscribes to: the tables are published, and the
-- columns its filters use exist.
begin;
select plan(8);

select ok(
  exists (select from pg_publication_tables
          where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = t),
  format('%s is published on supabase_realtime', t)
)
from unnest(array['messages', 'leads', 'conversations', 'notifications', 'sophie_insights']) as t;

select has_column('public', 'messages', 'dataset_id', 'messages:${datasetId} can filter dataset_id');
select has_column('public', 'leads', 'dataset_id', 'leads:${datasetId} can filter dataset_id');
select has_column('public', 'sophie_insights', 'client_id', 'sophie_insights:${clientId} can filter client_id');

select * from finish();
rollback;
