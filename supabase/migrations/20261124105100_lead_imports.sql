-- Lead imports: one row per map-and-import (API or `dbr import`), written in the same
-- transaction as the leads it added, with the counts and the row errors the user was shown.

create table public.lead_imports (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null default private.current_client_id(),
  dataset_id uuid not null,
  upload_id uuid,
  imported_by uuid default auth.uid() references auth.users (id) on delete set null,
  source text not null check (source in ('api', 'cli')),
  filename text check (length(filename) <= 255),
  column_mapping jsonb not null check (jsonb_typeof(column_mapping) = 'object'),
  campaign_settings jsonb check (campaign_settings is null or jsonb_typeof(campaign_settings) = 'object'),
  total_rows integer not null check (total_rows >= 0),
  successful integer not null check (successful >= 0),
  failed integer not null check (failed >= 0),
  duplicates integer not null check (duplicates >= 0),
  warning_count integer not null default 0 check (warning_count >= 0),
  errors jsonb not null default '[]'::jsonb check (jsonb_typeof(errors) = 'array'),
  warnings jsonb not null default '[]'::jsonb check (jsonb_typeof(warnings) = 'array'),
  started_at timestamptz not null,
  finished_at timestamptz not null default now(),
  unique (id, client_id),
  check (successful + failed + duplicates = total_rows),
  foreign key (dataset_id, client_id) references public.datasets (id, client_id) on delete cascade,
  foreign key (upload_id, client_id) references public.csv_uploads (id, client_id) on delete set null (upload_id)
);
comment on table public.lead_imports is
  'Record of each lead import: who, when, from which upload, with which mapping, and the outcome.';
comment on column public.lead_imports.total_rows is
  'Data rows read (blank and all-empty rows excluded) = successful + failed + duplicates.';
comment on column public.lead_imports.duplicates is
  'Rows whose phone number was already in the dataset, or earlier in the same file.';
comment on column public.lead_imports.errors is
  'The first 1000 row errors [{row, reason}]; row is the line number in the file (header = 1).';
comment on column public.lead_imports.warnings is
  'The first 1000 warnings [{row, field, reason}]: values dropped while the lead was still imported.';

create index lead_imports_dataset_idx on public.lead_imports (dataset_id, finished_at desc);
create index lead_imports_client_idx on public.lead_imports (client_id, finished_at desc);
create index lead_imports_upload_idx on public.lead_imports (upload_id) where upload_id is not null;
create index lead_imports_imported_by_idx on public.lead_imports (imported_by);

alter table public.lead_imports enable row level security;

-- A member that sees only its assigned leads sees only its own imports (an import's errors
-- name other leads' numbers).
create policy "members read imports of visible datasets" on public.lead_imports
for select to authenticated
using (
  client_id = (select private.current_client_id())
  and ((select private.sees_all_datasets()) or dataset_id = any((select private.visible_dataset_ids())::uuid []))
  and (not (select private.sees_only_assigned_leads()) or imported_by = (select auth.uid()))
);

create policy "writers record imports into visible datasets" on public.lead_imports
for insert to authenticated
with check (
  client_id = (select private.current_client_id())
  and (select private.can_write())
  and imported_by = (select auth.uid())
  and ((select private.sees_all_datasets()) or dataset_id = any((select private.visible_dataset_ids())::uuid []))
);

revoke all on public.lead_imports from anon, authenticated;
grant select on public.lead_imports to authenticated;
grant insert (
  dataset_id, upload_id, source, filename, column_mapping, campaign_settings, total_rows, successful,
  failed, duplicates, warning_count, errors, warnings, started_at
) on public.lead_imports to authenticated;
grant all on public.lead_imports to service_role;

-- The import moves rows with one insert ... select as the caller. client_id is given
-- explicitly (RLS's with-check still requires it to be the caller's client) because the
-- column default, private.current_client_id(), would otherwise run once per row; timezone
-- comes from the phone number (phonenumbers, in Python) and feeds the sending window.
grant insert (client_id, timezone) on public.leads to authenticated;
