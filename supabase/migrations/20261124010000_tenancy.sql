-- Tenancy: the client (the business), its members and what they may do, and the limits on
-- every door.
--   * every tenant row carries client_id; policies compare it with
--     (select private.current_client_id()) so the helper runs once per statement; helpers are
--     security definer so policies read memberships without recursing into their RLS;
--   * a member sees all datasets (admin, can_view_all_leads), a list (allowed_dataset_ids) or,
--     failing closed, only the leads assigned to it (private.sees_only_assigned_leads);
--   * permission helpers (can_write, can_manage_datasets, can_manage_users, can_edit_lessons,
--     can_push_to_live) and private.require_member, the member check of every RPC;
--   * rate limits kept in the database (one count for FastAPI, PostgREST and workers):
--     100 requests a minute per user, and rolling-hour per-client budgets (sending 60,
--     Sophie analysis 1,000).
-- Two functions read tables of later bands (leads, 11): they are plpgsql, resolved at run time.
-- The Cal.com settings shape (bookings) is a check constraint of clients, so every clients
-- column and constraint is in its create table.

-- clients and members ---------------------------------------------------------------------
-- Tenancy: the client (the business) and its members, and the helpers RLS policies use.

create type public.member_role as enum ('admin', 'manager', 'sales_rep', 'read_only');
comment on type public.member_role is 'A member''s role: admin, manager, sales_rep or read_only.';
create type public.member_status as enum ('invited', 'active', 'suspended');
comment on type public.member_status is 'A membership: invited (until accepted), active, or suspended (instead of deletion).';

create table public.clients (
  id uuid primary key default gen_random_uuid(),
  name text not null check (length(trim(name)) between 1 and 200),
  email text,
  phone text check (phone is null or phone ~ '^\+[1-9][0-9]{6,14}$'),
  logo_url text,
  primary_color text check (primary_color is null or primary_color ~ '^#[0-9a-fA-F]{6}$'),
  timezone text not null default 'Europe/London',
  default_region text not null default 'GB' check (default_region ~ '^[A-Z]{2}$'),
  twilio_phone_number text unique check (
    twilio_phone_number is null or twilio_phone_number ~ '^\+[1-9][0-9]{6,14}$'
  ),
  twilio_messaging_service_sid text check (
    twilio_messaging_service_sid is null or twilio_messaging_service_sid ~ '^MG[0-9a-f]{32}$'
  ),
  n8n_workflow_id text,
  settings jsonb not null default '{}'::jsonb check (jsonb_typeof(settings) = 'object'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- Bookings: the Cal.com settings a client may keep in settings -> 'calcom'.
  constraint clients_calcom_settings_shape check (
    settings -> 'calcom' is null
    or (
      jsonb_typeof(settings -> 'calcom') = 'object'
      and coalesce(jsonb_typeof(settings -> 'calcom' -> 'event_type_id'), 'number') in ('number', 'null')
      and coalesce(jsonb_typeof(settings -> 'calcom' -> 'calendar_name'), 'string') in ('string', 'null')
      and coalesce(jsonb_typeof(settings -> 'calcom' -> 'booking_page_url'), 'string') in ('string', 'null')
    )
  )
);
comment on table public.clients is 'A business using the platform; every tenant-owned row points to one.';
comment on column public.clients.default_region is
  'ISO 3166 region used to read phone numbers written without a country code.';
comment on column public.clients.twilio_phone_number is
  'The E.164 number inbound SMS arrive on; identifies the client that owns an inbound message.';
comment on column public.clients.settings is
  'Free-form client settings (opt-out line, help text, sending limits, AI defaults).';
comment on constraint clients_calcom_settings_shape on public.clients is
  'settings.calcom = {event_type_id: number, calendar_name: text, booking_page_url: text}, all optional.';

-- Trigger: a client's timezone must be a known IANA name (400 otherwise).
create function private.validate_timezone() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if not exists (select from pg_catalog.pg_timezone_names where name = new.timezone) then
    perform private.raise_error(400, format('unknown timezone %s', new.timezone));
  end if;
  return new;
end
$$;
comment on function private.validate_timezone() is
  'Trigger: a client''s timezone must be a known IANA name (400 otherwise).';

create trigger clients_validate_timezone before insert or update of timezone on public.clients
  for each row execute function private.validate_timezone();
create trigger clients_touch before update on public.clients
  for each row execute function private.touch_updated_at();

create table public.client_members (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null references public.clients (id) on delete cascade,
  user_id uuid not null unique references auth.users (id) on delete cascade,
  role public.member_role not null default 'sales_rep',
  status public.member_status not null default 'invited',
  can_view_all_leads boolean not null default false,
  can_edit_lessons boolean not null default false,
  can_push_to_live boolean not null default false,
  can_manage_users boolean not null default false,
  allowed_dataset_ids uuid[],
  first_name text,
  last_name text,
  email text not null,
  phone text check (phone is null or phone ~ '^\+[1-9][0-9]{6,14}$'),
  notification_preferences jsonb not null default '{}'::jsonb,
  last_login_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.client_members is
  'A user''s membership of one client: role, permissions, dataset restriction and status.';
comment on column public.client_members.allowed_dataset_ids is
  'When set (and can_view_all_leads is false), the member only sees these datasets and their leads. '
  'When null and can_view_all_leads is false (a non-admin), the member fails closed: it sees only the '
  'leads assigned to it (leads.assigned_to), their threads, messages and bookings, and their datasets.';
comment on column public.client_members.can_view_all_leads is
  'True: every dataset and lead of the client. Admins see everything whatever this says. False: '
  'allowed_dataset_ids decides, or (when that is null) only the leads assigned to the member.';
comment on column public.client_members.status is
  'invited until the user accepts; only active members see anything; suspended replaces deletion.';
create index client_members_client_id_idx on public.client_members (client_id);

create trigger client_members_touch before update on public.client_members
  for each row execute function private.touch_updated_at();

-- Helpers for policies. Security definer so that policies can read memberships without
-- recursing into client_members' own RLS; evaluated once per statement via (select ...).

-- The caller's active membership, or null for anonymous, unknown, invited or suspended users.
create function private.current_membership() returns public.client_members
language sql
stable
security definer
set search_path = ''
as $$
  select m.* from public.client_members m
  where m.user_id = auth.uid() and m.status = 'active'
$$;
comment on function private.current_membership() is
  'The caller''s active membership, or null for anonymous, unknown, invited or suspended users.';

-- The client of the caller's active membership, or null; policies compare client_id with it.
create function private.current_client_id() returns uuid
language sql
stable
security definer
set search_path = ''
as $$
  select m.client_id from private.current_membership() m
$$;
comment on function private.current_client_id() is
  'The client of the caller''s active membership, or null; policies compare client_id with it.';

-- True when the caller is an active admin of its client.
create function private.is_admin() returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(m.role = 'admin', false) from private.current_membership() m
$$;
comment on function private.is_admin() is
  'True when the caller is an active admin of its client.';

-- True for active members whose role may change data (not read_only).
create function private.can_write() returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(m.role <> 'read_only', false) from private.current_membership() m
$$;
comment on function private.can_write() is 'True for active members whose role may change data (not read_only).';

-- True for active admins and managers: they create and change datasets and campaign settings.
create function private.can_manage_datasets() returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(m.role in ('admin', 'manager'), false) from private.current_membership() m
$$;
comment on function private.can_manage_datasets() is
  'True for active admins and managers: they create and change datasets and campaign settings.';

-- True for active admins and members with can_manage_users: they read and manage the client's
-- members.
create function private.can_manage_users() returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(m.role = 'admin' or m.can_manage_users, false)
  from private.current_membership() m
$$;
comment on function private.can_manage_users() is
  'True for active admins and members with can_manage_users: they read and manage the client''s members.';

-- True for a non-admin member with can_view_all_leads = false and no allowed_dataset_ids: it fails
-- closed to the leads assigned to it (leads.assigned_to = auth.uid()).
create function private.sees_only_assigned_leads() returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(m.role <> 'admin' and not m.can_view_all_leads and m.allowed_dataset_ids is null, false)
  from private.current_membership() m
$$;
comment on function private.sees_only_assigned_leads() is
  'True for a non-admin member with can_view_all_leads = false and no allowed_dataset_ids: it fails '
  'closed to the leads assigned to it (leads.assigned_to = auth.uid()).';

-- plpgsql (here and below): the bodies read public.leads, which 20261124110000_leads.sql creates;
-- plpgsql resolves the table when the function runs.
create function private.assigned_lead_ids() returns uuid[]
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if not private.sees_only_assigned_leads() then
    return null;
  end if;
  return (
    select coalesce(array_agg(l.id), '{}') from public.leads l
    where l.assigned_to = auth.uid() and l.client_id = private.current_client_id()
  );
end
$$;
comment on function private.assigned_lead_ids() is
  'Ids of the leads assigned to the caller when it sees only those (private.sees_only_assigned_leads()), '
  'else null. The conversations, messages and bookings policies use it: threads follow their lead.';

-- Dataset restriction of the caller: null = all datasets of the client (admins,
-- can_view_all_leads), else allowed_dataset_ids, else (fail closed) the datasets of the leads
-- assigned to the caller.
create function private.visible_dataset_ids() returns uuid[]
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_member public.client_members := private.current_membership();
  v_ids uuid[];
begin
  -- null means "every dataset of the client".
  if v_member.can_view_all_leads or v_member.role = 'admin' then
    return null;
  end if;
  if v_member.allowed_dataset_ids is not null or v_member.user_id is null then
    return v_member.allowed_dataset_ids;
  end if;
  -- No list: the datasets of the leads assigned to the member (leads_assigned_to_idx).
  select coalesce(array_agg(distinct l.dataset_id), '{}') into v_ids
  from public.leads l
  where l.assigned_to = v_member.user_id and l.client_id = v_member.client_id;
  return v_ids;
end
$$;
comment on function private.visible_dataset_ids() is
  'Dataset restriction of the caller: null = all datasets of the client (admins, can_view_all_leads), '
  'else allowed_dataset_ids, else (fail closed) the datasets of the leads assigned to the caller.';

-- True when the caller is an active member that sees every dataset of its client.
create function private.sees_all_datasets() returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select private.current_client_id() is not null and private.visible_dataset_ids() is null
$$;
comment on function private.sees_all_datasets() is
  'True when the caller is an active member that sees every dataset of its client.';

revoke all on function private.current_membership(), private.current_client_id(),
  private.is_admin(), private.can_write(), private.can_manage_datasets(),
  private.can_manage_users(), private.visible_dataset_ids(), private.sees_all_datasets(),
  private.sees_only_assigned_leads(), private.assigned_lead_ids()
  from public, anon;
grant execute on function private.current_membership(), private.current_client_id(),
  private.is_admin(), private.can_write(), private.can_manage_datasets(),
  private.can_manage_users(), private.visible_dataset_ids(), private.sees_all_datasets(),
  private.sees_only_assigned_leads(), private.assigned_lead_ids()
  to authenticated, service_role;

-- Trigger: client_id is immutable on tenant rows.
create function private.forbid_client_change() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.client_id is distinct from old.client_id then
    perform private.raise_error(403, 'a row cannot be moved to another client');
  end if;
  return new;
end
$$;
comment on function private.forbid_client_change() is 'Trigger: client_id is immutable on tenant rows.';

create trigger client_members_client_fixed before update of client_id on public.client_members
  for each row execute function private.forbid_client_change();

-- Trigger: only admins grant or change the admin role and the permissions; members cannot change
-- their own role or status.
create function private.guard_member_change() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- Only trusted roles and admins may create admins, change an admin, or change permissions of
  -- a member; a user-manager who is not an admin can invite and suspend non-admins only.
  if auth.role() = 'authenticated' and not private.is_admin() then
    if new.role = 'admin' or (tg_op = 'UPDATE' and old.role = 'admin') then
      perform private.raise_error(403, 'only an admin can grant or change the admin role');
    end if;
    if new.can_manage_users or new.can_push_to_live then
      perform private.raise_error(403, 'only an admin can grant this permission');
    end if;
  end if;
  if auth.role() = 'authenticated' and tg_op = 'UPDATE' and old.user_id = auth.uid()
     and (new.role, new.status, new.can_manage_users) is distinct from (old.role, old.status, old.can_manage_users) then
    perform private.raise_error(403, 'members cannot change their own role or status');
  end if;
  return new;
end
$$;
comment on function private.guard_member_change() is
  'Trigger: only admins grant or change the admin role and the permissions; members cannot change their own role or status.';

create trigger client_members_guard before insert or update on public.client_members
  for each row execute function private.guard_member_change();

alter table public.clients enable row level security;
alter table public.client_members enable row level security;

-- Active members read the row of their own client; nobody sees another client.
create policy "members can read their own client" on public.clients
  for select to authenticated
  using (id = (select private.current_client_id()));

-- Admins change their client (the columns the grants allow; telephony stays the platform's).
create policy "admins can update their client" on public.clients
  for update to authenticated
  using (id = (select private.current_client_id()) and (select private.is_admin()))
  with check (id = (select private.current_client_id()));

-- A member reads its own membership; admins and user managers read every member of the client.
create policy "members read themselves, user managers read everyone" on public.client_members
  for select to authenticated
  using (
    client_id = (select private.current_client_id())
    and (user_id = (select auth.uid()) or (select private.can_manage_users()))
  );

-- Admins and user managers invite members into their own client (guard_member_change limits roles).
create policy "user managers add members to their client" on public.client_members
  for insert to authenticated
  with check (client_id = (select private.current_client_id()) and (select private.can_manage_users()));

-- Admins and user managers change members of their client; the row stays in the client.
create policy "user managers update members of their client" on public.client_members
  for update to authenticated
  using (client_id = (select private.current_client_id()) and (select private.can_manage_users()))
  with check (client_id = (select private.current_client_id()));

revoke all on public.clients, public.client_members from anon;
revoke insert, update, delete, truncate, references, trigger on public.clients from authenticated;
-- Telephony (twilio_phone_number, twilio_messaging_service_sid) is provisioned by the platform:
-- an admin who could set them could send through, or receive the replies of, another client.
grant update (name, email, phone, logo_url, primary_color, timezone, default_region, n8n_workflow_id, settings)
  on public.clients to authenticated;
revoke delete, truncate, references, trigger on public.client_members from authenticated;

-- membership permissions and the member check of RPCs -------------------------------------
-- Permission helpers used by lesson and prompt policies and RPCs.
create function private.can_edit_lessons() returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(m.role = 'admin' or m.can_edit_lessons, false) from private.current_membership() m
$$;
comment on function private.can_edit_lessons() is 'True for admins and members with the lesson editing permission.';

-- True for admins and members allowed to make prompts live.
create function private.can_push_to_live() returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(m.role = 'admin' or m.can_push_to_live, false) from private.current_membership() m
$$;
comment on function private.can_push_to_live() is 'True for admins and members allowed to make prompts live.';

-- The caller's client id; raises 403 for anonymous, invited, suspended or unknown users.
create function private.require_member() returns uuid
language plpgsql
stable
set search_path = ''
as $$
declare
  v_client uuid := private.current_client_id();
begin
  if v_client is null then
    perform private.raise_error(403, 'you are not an active member of any client');
  end if;
  return v_client;
end
$$;
comment on function private.require_member() is
  'The caller''s client id; raises 403 for anonymous, invited, suspended or unknown users.';

revoke all on function private.can_edit_lessons(), private.can_push_to_live() from public, anon;
grant execute on function private.can_edit_lessons(), private.can_push_to_live() to authenticated, service_role;
revoke all on function private.require_member() from public, anon;
grant execute on function private.require_member() to authenticated, service_role;

-- API rate limits and hourly budgets ------------------------------------------------------
-- Rate limits on every door, kept in the database so every API process, every PostgREST
-- connection and every worker shares one count:
--   * standard requests: 100 per minute per user (FastAPI calls private.hit_api_rate_limit,
--     PostgREST runs private.pre_request before every request); anonymous PostgREST requests
--     100 per minute per client address;
--   * hourly per-client budgets over a rolling hour: message sending (60) and Sophie
--     analysis (1,000), consumed by the routes (429 over the budget) and readable by workers
--     that must defer work instead of dropping it.

-- Per-minute request counts ------------------------------------------------------------------
create unlogged table private.api_rate_limits (
  subject text not null,
  window_start timestamptz not null,
  backend_pid integer not null default pg_backend_pid(),
  hits integer not null default 0,
  primary key (subject, window_start, backend_pid)
);
comment on table private.api_rate_limits is
  'Fixed one-minute windows of API hits per subject (user:<id> or ip:<address>), one row per database '
  'connection that counted them. Unlogged: losing counts on a crash is harmless.';
comment on column private.api_rate_limits.backend_pid is
  'The connection that counted these hits. PostgREST counts inside the request''s transaction, so a single '
  'counter row would stay locked until a slow request commits and queue every other request of that user '
  '(FastAPI''s too) behind it; per-connection rows never wait on each other and are summed.';

-- Counts one request for a subject in the current minute; says whether it is allowed (at most
-- p_limit in the minute, all connections together) and when to retry.
create function private.hit_api_rate_limit(p_subject text, p_limit integer)
returns table (allowed boolean, hits integer, retry_after_seconds integer)
language sql
security definer
set search_path = ''
as $$
  with hit as (
    insert into private.api_rate_limits as r (subject, window_start, backend_pid, hits)
    values (p_subject, date_trunc('minute', now()), pg_backend_pid(), 1)
    on conflict (subject, window_start, backend_pid) do update set hits = r.hits + 1
    returning r.window_start, r.hits
  ),
  total as (
    -- The statement's snapshot predates the upsert: this connection's row comes from `hit`.
    select hit.window_start, hit.hits + coalesce((
      select sum(o.hits) from private.api_rate_limits o
      where o.subject = p_subject and o.window_start = hit.window_start and o.backend_pid <> pg_backend_pid()
    ), 0)::integer as hits
    from hit
  )
  select t.hits <= p_limit,
         t.hits,
         greatest(1, ceil(extract(epoch from (t.window_start + interval '1 minute' - now())))::integer)
  from total t
$$;
comment on function private.hit_api_rate_limit(text, integer) is
  'Counts one request for a subject in the current minute; says whether it is allowed (at most p_limit '
  'in the minute, all connections together) and when to retry.';

-- Whether one more request of a subject fits in the current minute, without counting it (for
-- read-only transactions, which cannot write).
create function private.peek_api_rate_limit(p_subject text, p_limit integer)
returns table (allowed boolean, hits integer, retry_after_seconds integer)
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(sum(r.hits), 0) < p_limit,
         coalesce(sum(r.hits), 0)::integer,
         greatest(1, ceil(extract(epoch from (date_trunc('minute', now()) + interval '1 minute' - now())))::integer)
  from private.api_rate_limits r
  where r.subject = p_subject and r.window_start = date_trunc('minute', now())
$$;
comment on function private.peek_api_rate_limit(text, integer) is
  'Whether one more request of a subject fits in the current minute, without counting it (for read-only '
  'transactions, which cannot write).';

-- PostgREST's db-pre-request hook ------------------------------------------------------------
create function private.pre_request() returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  -- The same number as FastAPI's api_rate_limit_per_minute default: both doors count into one row set.
  c_limit constant integer := 100;
  v_claims jsonb := coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb;
  -- A security definer function keeps the `role` setting PostgREST set (anon/authenticated).
  v_role text := coalesce(v_claims ->> 'role', current_setting('role', true));
  v_forwarded text;
  v_subject text;
  v_verdict record;
begin
  if v_role = 'authenticated' and v_claims ->> 'sub' is not null then
    -- Spelled like FastAPI's subject, so a user has one count across both doors.
    v_subject := 'user:' || lower(v_claims ->> 'sub');
  elsif v_role in ('anon', 'authenticated') then
    -- The client's address: the first X-Forwarded-For entry (what Supabase's gateway puts first).
    v_forwarded := trim(split_part(
      coalesce(nullif(current_setting('request.headers', true), ''), '{}')::jsonb ->> 'x-forwarded-for', ',', 1));
    -- Some proxies write a port: 203.0.113.7:51234, [2001:db8::1]:443.
    v_forwarded := coalesce(
      substring(v_forwarded from '^\[([0-9A-Fa-f:.]+)\](?::[0-9]+)?$'),
      substring(v_forwarded from '^([0-9.]+):[0-9]+$'),
      v_forwarded
    );
    begin
      v_subject := 'ip:' || host(v_forwarded::inet);
    exception when invalid_text_representation then
      v_subject := null;
    end;
    v_subject := coalesce(v_subject, 'ip:unknown');
  else
    -- service_role and other server-side roles (webhooks, workers, edge functions) are not limited.
    return;
  end if;

  if current_setting('transaction_read_only') = 'on' then
    -- PostgREST runs GET/HEAD and stable functions in a READ ONLY transaction, where no count can be
    -- written: such a request is refused when the subject is already at the limit, but not counted.
    select * into v_verdict from private.peek_api_rate_limit(v_subject, c_limit);
  else
    select * into v_verdict from private.hit_api_rate_limit(v_subject, c_limit);
  end if;
  if not v_verdict.allowed then
    perform private.raise_error(
      429, 'Too many requests; slow down.',
      jsonb_build_object('limit_per_minute', c_limit, 'retry_after_seconds', v_verdict.retry_after_seconds),
      'RATE_LIMITED',
      jsonb_build_object('Retry-After', v_verdict.retry_after_seconds::text)
    );
  end if;
end
$$;
comment on function private.pre_request() is
  'PostgREST db-pre-request hook (pgrst.db_pre_request on role authenticator): 100 requests per minute per '
  'user, counted together with FastAPI''s; anonymous requests 100 per minute per X-Forwarded-For address. '
  'Over the limit: 429 RATE_LIMITED with Retry-After. Read-only requests are checked but cannot be counted.';

-- Rolling-hour budgets per client ------------------------------------------------------------
create unlogged table private.hourly_budget_uses (
  id bigint generated always as identity primary key,
  bucket text not null,
  client_id uuid not null,
  used_at timestamptz not null default now()
);
comment on table private.hourly_budget_uses is
  'One row per unit of a client''s hourly budget spent (bucket message_sending or sophie_analysis). '
  'Rows older than an hour no longer count and are purged. Unlogged: losing them on a crash is harmless.';
create index hourly_budget_uses_idx on private.hourly_budget_uses (bucket, client_id, used_at);

-- A client's budget in a bucket over the rolling hour, without spending it: whether a unit is
-- available, units used and remaining, and when the next unit is available (now when one is).
create function private.hourly_budget(p_bucket text, p_client_id uuid, p_limit integer)
returns table (available boolean, used integer, remaining integer, next_available_at timestamptz)
language sql
stable
security definer
set search_path = ''
as $$
  with recent as (
    select u.used_at from private.hourly_budget_uses u
    where u.bucket = p_bucket and u.client_id = p_client_id and u.used_at > now() - interval '1 hour'
  ),
  n as (select count(*)::integer as used from recent)
  select n.used < p_limit,
         n.used,
         greatest(0, p_limit - n.used),
         case when n.used < p_limit then now() else (
           -- A unit frees when the p_limit-th most recent use leaves the rolling hour.
           select r.used_at + interval '1 hour' from recent r order by r.used_at desc offset p_limit - 1 limit 1
         ) end
  from n
$$;
comment on function private.hourly_budget(text, uuid, integer) is
  'A client''s budget in a bucket over the rolling hour, without spending it: whether a unit is available, '
  'units used and remaining, and when the next unit is available (now when one is).';

-- Spends one unit of a client's rolling-hour budget when one is available; never raises.
create function private.take_hourly_budget(p_bucket text, p_client_id uuid, p_limit integer)
returns table (allowed boolean, used integer, retry_after_seconds integer, next_available_at timestamptz)
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_budget record;
begin
  -- One spender per client and bucket at a time, so concurrent requests cannot overshoot.
  perform pg_advisory_xact_lock(hashtext('hourly_budget:' || p_bucket), hashtext(p_client_id::text));
  select * into v_budget from private.hourly_budget(p_bucket, p_client_id, p_limit);
  if v_budget.available then
    insert into private.hourly_budget_uses (bucket, client_id) values (p_bucket, p_client_id);
    return query select true, v_budget.used + 1, 0, now();
  else
    return query select false, v_budget.used,
      greatest(1, ceil(extract(epoch from (v_budget.next_available_at - now()))))::integer,
      v_budget.next_available_at;
  end if;
end
$$;
comment on function private.take_hourly_budget(text, uuid, integer) is
  'Spends one unit of a client''s rolling-hour budget when one is available; never raises. Says whether it '
  'was spent and, if not, when to retry (seconds and time). Rolled back with the caller''s transaction.';

-- Spends one unit of a client's rolling-hour budget or raises 429 RATE_LIMITED (Retry-After:
-- seconds until a unit frees).
create function private.use_hourly_budget(p_bucket text, p_client_id uuid, p_limit integer, p_what text)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_take record;
begin
  select * into v_take from private.take_hourly_budget(p_bucket, p_client_id, p_limit);
  if not v_take.allowed then
    perform private.raise_error(
      429,
      format('%s is limited to %s per hour for your organisation; try again in %s seconds.',
        p_what, p_limit, v_take.retry_after_seconds),
      jsonb_build_object(
        'limit_per_hour', p_limit, 'used', v_take.used,
        'retry_after_seconds', v_take.retry_after_seconds, 'retry_at', v_take.next_available_at
      ),
      'RATE_LIMITED',
      jsonb_build_object('Retry-After', v_take.retry_after_seconds::text)
    );
  end if;
end
$$;
comment on function private.use_hourly_budget(text, uuid, integer, text) is
  'Spends one unit of a client''s rolling-hour budget or raises 429 RATE_LIMITED (Retry-After: seconds until '
  'a unit frees). For routes: the refusal aborts the request, so nothing else it did is stored.';

-- The API contract's per-client limits: "Message sending: 60 messages/hour per client",
-- "Sophie analysis: 1000 requests/hour per client".
create function private.use_send_budget(p_client_id uuid) returns void
language sql
security definer
set search_path = ''
as $$
  select private.use_hourly_budget('message_sending', p_client_id, 60, 'Sending messages')
$$;
comment on function private.use_send_budget(uuid) is
  'Message-sending routes (send_message, ai_send): 60 sends per client in any rolling hour, else 429. '
  'Campaign (M1-M3) sends are not counted here: the sequence tick and prepare_send budget them.';

-- For Sophie analysis routes: spends one of the client's 1,000 requests per rolling hour, else 429
-- with Retry-After.
create function private.use_sophie_budget(p_client_id uuid) returns void
language sql
security definer
set search_path = ''
as $$
  select private.use_hourly_budget('sophie_analysis', p_client_id, 1000, 'Sophie analysis')
$$;
comment on function private.use_sophie_budget(uuid) is
  'For Sophie analysis routes: spends one of the client''s 1,000 requests per rolling hour, else 429 with Retry-After.';

-- For Sophie workers: whether the client has Sophie analysis budget now and when it next has (defer
-- the job until next_available_at, then spend with take_hourly_budget('sophie_analysis', client,
-- 1000)).
create function private.sophie_budget(p_client_id uuid)
returns table (available boolean, remaining integer, next_available_at timestamptz)
language sql
stable
security definer
set search_path = ''
as $$
  select b.available, b.remaining, b.next_available_at from private.hourly_budget('sophie_analysis', p_client_id, 1000) b
$$;
comment on function private.sophie_budget(uuid) is
  'For Sophie workers: whether the client has Sophie analysis budget now and when it next has (defer the job '
  'until next_available_at, then spend with take_hourly_budget(''sophie_analysis'', client, 1000)).';

-- Housekeeping -------------------------------------------------------------------------------
create function private.purge_api_rate_limits() returns void
language sql
security definer
set search_path = ''
as $$
  delete from private.api_rate_limits where window_start < now() - interval '5 minutes';
  delete from private.hourly_budget_uses where used_at < now() - interval '1 hour';
$$;
comment on function private.purge_api_rate_limits() is
  'Drops minute windows older than five minutes and budget uses older than an hour (every five minutes).';

revoke all on private.api_rate_limits, private.hourly_budget_uses from public, anon, authenticated;
revoke all on function private.hit_api_rate_limit(text, integer), private.peek_api_rate_limit(text, integer),
  private.pre_request(), private.hourly_budget(text, uuid, integer), private.take_hourly_budget(text, uuid, integer),
  private.use_hourly_budget(text, uuid, integer, text), private.use_send_budget(uuid),
  private.use_sophie_budget(uuid), private.sophie_budget(uuid), private.purge_api_rate_limits()
  from public, anon, authenticated;
grant execute on function private.hit_api_rate_limit(text, integer), private.hourly_budget(text, uuid, integer),
  private.take_hourly_budget(text, uuid, integer), private.use_hourly_budget(text, uuid, integer, text),
  private.use_send_budget(uuid), private.use_sophie_budget(uuid), private.sophie_budget(uuid)
  to service_role;

-- PostgREST calls the hook as the request's role: anon and authenticated must reach it. It is anon's
-- only door into schema private (supabase/tests/000_schema_guards.sql keeps it that way).
grant usage on schema private to anon;
grant execute on function private.pre_request() to anon, authenticated, service_role;

-- Register the hook (Supabase allows this setting on authenticator; `supabase/local/bootstrap.sql`
-- creates the role before any migration runs locally) and have PostgREST re-read its configuration.
alter role authenticator set "pgrst.db_pre_request" to 'private.pre_request';
notify pgrst, 'reload config';

select private.schedule_cron('purge-api-rate-limits', '*/5 * * * *', 'select private.purge_api_rate_limits()');
