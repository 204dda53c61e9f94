-- Tenancy: the client (the business) and its members, and the helpers RLS policies use.

create type public.member_role as enum ('admin', 'manager', 'sales_rep', 'read_only');
create type public.member_status as enum ('invited', 'active', 'suspended');

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
  updated_at timestamptz not null default now()
);
comment on table public.clients is 'A business using the platform; every tenant-owned row points to one.';
comment on column public.clients.default_region is
  'ISO 3166 region used to read phone numbers written without a country code.';
comment on column public.clients.twilio_phone_number is
  'The E.164 number inbound SMS arrive on; identifies the client that owns an inbound message.';
comment on column public.clients.settings is
  'Free-form client settings (opt-out line, help text, sending limits, AI defaults).';

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

create function private.current_client_id() returns uuid
language sql
stable
security definer
set search_path = ''
as $$
  select m.client_id from private.current_membership() m
$$;

create function private.is_admin() returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(m.role = 'admin', false) from private.current_membership() m
$$;

create function private.can_write() returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(m.role <> 'read_only', false) from private.current_membership() m
$$;
comment on function private.can_write() is 'True for active members whose role may change data (not read_only).';

create function private.can_manage_datasets() returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(m.role in ('admin', 'manager'), false) from private.current_membership() m
$$;

create function private.can_manage_users() returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(m.role = 'admin' or m.can_manage_users, false)
  from private.current_membership() m
$$;

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

-- plpgsql (here and below): the bodies read public.leads, which a later migration creates.
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

create function private.sees_all_datasets() returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select private.current_client_id() is not null and private.visible_dataset_ids() is null
$$;

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

create trigger client_members_guard before insert or update on public.client_members
  for each row execute function private.guard_member_change();

alter table public.clients enable row level security;
alter table public.client_members enable row level security;

create policy "members can read their own client" on public.clients
  for select to authenticated
  using (id = (select private.current_client_id()));

create policy "admins can update their client" on public.clients
  for update to authenticated
  using (id = (select private.current_client_id()) and (select private.is_admin()))
  with check (id = (select private.current_client_id()));

create policy "members read themselves, user managers read everyone" on public.client_members
  for select to authenticated
  using (
    client_id = (select private.current_client_id())
    and (user_id = (select auth.uid()) or (select private.can_manage_users()))
  );

create policy "user managers add members to their client" on public.client_members
  for insert to authenticated
  with check (client_id = (select private.current_client_id()) and (select private.can_manage_users()));

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
