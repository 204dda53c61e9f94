"""The datasets SQL in one place: the caller and dataset checks of the upload and the import,
and the importer's staging, move and record statements (procrastinate's queries.sql pattern).
Every statement runs as the caller, so RLS decides what it sees."""

from __future__ import annotations

# Who the caller is, in one round trip: its client and what the tenancy helpers (the same
# ones the policies use, so the rules live in one place) say it may do. No row: not an
# active member.
CALLER = """
select c.id, c.default_region, private.can_write() as can_write,
       private.can_manage_datasets() as can_manage,
       private.sees_only_assigned_leads() as assigned_only
from public.clients c where c.id = private.current_client_id()
"""

# The dataset as the caller sees it (RLS): no row when it is not the caller's client's.
DATASET = "select campaign_status from public.datasets where id = %s"

# An upload as the caller sees it (RLS): another tenant's or an unknown id gives no row.
UPLOAD = """
select id, dataset_id, filename, storage_path, encoding, delimiter, columns
from public.csv_uploads where id = %s
"""

# A received upload; the trigger sets storage_path (<client_id>/<id>.csv), returned here.
INSERT_UPLOAD = """
insert into public.csv_uploads (
  id, dataset_id, filename, file_url, size_bytes, encoding, delimiter, header_line,
  rows_detected, columns
) values (
  %(id)s, %(dataset_id)s, %(filename)s, %(url)s, %(size)s, %(encoding)s, %(delimiter)s,
  %(header_line)s, %(rows)s, %(columns)s
) returning storage_path
"""

# The staging table COPY fills while the file is read (dropped at commit).
STAGE_DDL = """
create temporary table lead_import_stage (
  line integer not null,
  phone_number text not null,
  timezone text,
  first_name text,
  last_name text,
  email text,
  postcode text,
  inquiry_date date,
  notes text,
  custom_fields jsonb
) on commit drop
"""

# Numbers on the client's suppression list (they texted STOP, or staff added them) are not
# imported: each of their lines becomes a row error. Explicitly the importing client's list
# (RLS shows only that one anyway); a number another client suppressed imports normally.
SKIP_SUPPRESSED = """
delete from pg_temp.lead_import_stage st
using public.suppressions s
where s.client_id = %(client_id)s and s.phone_number = st.phone_number
returning st.line, st.phone_number
"""

# One statement: earliest row per phone within the file, in phone order (two imports into
# one dataset then take unique-index locks in the same order and cannot deadlock), skipped
# when the dataset already has the number.
MOVE = """
with firsts as (
  select distinct on (phone_number) *
  from pg_temp.lead_import_stage
  order by phone_number, line
),
inserted as (
  insert into public.leads (
    client_id, dataset_id, phone_number, timezone, first_name, last_name, email, postcode,
    inquiry_date, notes, custom_fields
  )
  select %(client_id)s, %(dataset_id)s, f.phone_number, f.timezone, f.first_name, f.last_name,
    f.email, f.postcode, f.inquiry_date, f.notes, coalesce(f.custom_fields, '{}'::jsonb)
  from firsts f
  order by f.phone_number
  on conflict (dataset_id, phone_number) do nothing
  returning 1
)
select count(*) as inserted from inserted
"""

# The dataset's campaign settings from the import request.
SAVE_SETTINGS = """
insert into public.campaigns (
  dataset_id, m1_delay_hours, m2_delay_hours, m3_delay_hours, ai_response_delay_seconds
) values (%(dataset_id)s, %(m1)s, %(m2)s, %(m3)s, %(ai)s)
on conflict (dataset_id) do update set
  m1_delay_hours = excluded.m1_delay_hours,
  m2_delay_hours = excluded.m2_delay_hours,
  m3_delay_hours = excluded.m3_delay_hours,
  ai_response_delay_seconds = excluded.ai_response_delay_seconds
"""

# A campaign row with the defaults when the request had no settings.
ENSURE_SETTINGS = """
insert into public.campaigns (dataset_id) values (%(dataset_id)s)
on conflict (dataset_id) do nothing
"""

# The import's record: counts, row errors and warnings, mapping and settings.
RECORD_IMPORT = """
insert into public.lead_imports (
  dataset_id, upload_id, source, filename, column_mapping, campaign_settings, total_rows,
  successful, failed, duplicates, warning_count, errors, warnings, started_at
) values (
  %(dataset_id)s, %(upload_id)s, %(source)s, %(filename)s, %(mapping)s, %(settings)s, %(total)s,
  %(ok)s, %(failed)s, %(dups)s, %(warning_count)s, %(errors)s, %(warnings)s, %(started)s
) returning id
"""
