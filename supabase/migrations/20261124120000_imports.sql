-- Imports: a CSV lead list from upload to leads.
--   * public.csv_uploads: the stored file (Storage bucket csv_uploads) and what
--     was detected in it, written by the uploading user;
--   * public.lead_imports: one row per map-and-import, written in the transaction that adds
--     the leads, with counts and row errors.

-- CSV uploads -----------------------------------------------------------------------------
-- CSV uploads: the stored file of a lead list and what was detected in it (encoding,
-- delimiter, columns, rows), written by POST /api/datasets/upload as the uploading user and
-- read back by POST /api/datasets/map-and-import.

-- The private Storage bucket the files go to (Supabase Storage backend). The API writes with
-- the service key; users never read the bucket directly, so it has no storage policies.
insert into storage.buckets (id, name, public)
values ('csv_uploads', 'csv_uploads', false)
on conflict (id) do nothing;

create table public.csv_uploads (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null default private.current_client_id() references public.clients (id) on delete cascade,
  dataset_id uuid,
  uploaded_by uuid default auth.uid() references auth.users (id) on delete set null,
  filename text not null check (length(filename) between 1 and 255),
  storage_bucket text not null default 'csv_uploads' check (storage_bucket = 'csv_uploads'),
  storage_path text not null unique check (length(storage_path) between 1 and 500),
  file_url text not null,
  size_bytes bigint not null check (size_bytes >= 0),
  encoding text not null check (encoding in ('utf-8', 'utf-8-sig', 'utf-16', 'utf-16-le', 'utf-16-be', 'cp1252', 'latin-1')),
  delimiter text not null check (delimiter in (',', ';', e'\t')),
  header_line integer not null default 1 check (header_line >= 1),
  rows_detected integer not null check (rows_detected >= 0),
  columns jsonb not null check (jsonb_typeof(columns) = 'array'),
  created_at timestamptz not null default now(),
  unique (id, client_id),
  foreign key (dataset_id, client_id) references public.datasets (id, client_id) on delete set null (dataset_id)
);
comment on table public.csv_uploads is
  'An uploaded lead list: the stored file and what was detected in it. Imported with map-and-import.';
comment on column public.csv_uploads.dataset_id is
  'Dataset the upload was attached to at upload time (optional); cleared if the dataset is deleted.';
comment on column public.csv_uploads.storage_path is
  'Object key in the bucket: <client_id>/<upload id>.csv, always set by the insert trigger (users '
  'cannot write it; the importer refuses a key outside the caller''s client prefix).';
comment on column public.csv_uploads.encoding is
  'Detected text encoding (Python codec name), verified over the whole file at upload time.';
comment on column public.csv_uploads.header_line is
  'Line of the file holding the column names (1 unless blank lines or Excel''s sep= line come first).';
comment on column public.csv_uploads.rows_detected is 'Data rows, not counting the header, blank lines and all-empty rows.';
comment on column public.csv_uploads.columns is
  'The preview returned to the uploader: [{name, sample_values, suggested_mapping}].';

create index csv_uploads_client_created_idx on public.csv_uploads (client_id, created_at desc);
create index csv_uploads_dataset_idx on public.csv_uploads (dataset_id) where dataset_id is not null;
create index csv_uploads_uploaded_by_idx on public.csv_uploads (uploaded_by);

create trigger csv_uploads_client_fixed before update of client_id on public.csv_uploads
for each row execute function private.forbid_client_change();

-- The object key is the server's, never the user's: a key chosen by a member could name
-- another client's file (files outlive their rows), which the importer opens with service
-- rights. Computed from the row's client and id, whatever the insert said.
create function private.csv_uploads_set_storage_path() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.storage_path := new.client_id::text || '/' || new.id::text || '.csv';
  return new;
end
$$;
comment on function private.csv_uploads_set_storage_path() is
  'Trigger: sets csv_uploads.storage_path to <client_id>/<id>.csv on insert.';
revoke all on function private.csv_uploads_set_storage_path() from public, anon, authenticated;

create trigger csv_uploads_storage_path before insert on public.csv_uploads
for each row execute function private.csv_uploads_set_storage_path();

alter table public.csv_uploads enable row level security;

-- Members see uploads of datasets they may see, and their own unattached uploads; members
-- who see every dataset see every upload of the client; a member that sees only its
-- assigned leads sees only its own uploads.
create policy "members read uploads of visible datasets" on public.csv_uploads
for select to authenticated
using (
  client_id = (select private.current_client_id())
  and (
    (select private.sees_all_datasets())
    or uploaded_by = (select auth.uid())
    or (
      not (select private.sees_only_assigned_leads())
      and dataset_id = any((select private.visible_dataset_ids())::uuid [])
    )
  )
);

-- Members who may write record an upload of their own, into their own client.
create policy "writers upload to their client" on public.csv_uploads
for insert to authenticated
with check (
  client_id = (select private.current_client_id())
  and (select private.can_write())
  and uploaded_by = (select auth.uid())
  and (
    dataset_id is null
    or (select private.sees_all_datasets())
    or dataset_id = any((select private.visible_dataset_ids())::uuid [])
  )
);

revoke all on public.csv_uploads from anon, authenticated;
grant select on public.csv_uploads to authenticated;
grant insert (
  id, dataset_id, filename, storage_bucket, file_url, size_bytes, encoding, delimiter,
  header_line, rows_detected, columns
) on public.csv_uploads to authenticated;
grant all on public.csv_uploads to service_role;

-- lead imports ----------------------------------------------------------------------------
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

-- Members who may write record their own import into a dataset they may see.
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
