-- Notifications: in-app notifications for staff and private.notify_staff, the one function
-- every domain calls to tell staff something (admins and managers, plus the members who may
-- see the dataset concerned; each member's notification_preferences decide). Realtime carries
-- new rows to the app. The HOT-lead trigger lives with the leads (20261124110000_leads.sql).

-- notifications ---------------------------------------------------------------------------
-- In-app notifications for staff, the one function every capability calls to notify them,
-- and the trigger that tells staff when a lead turns HOT.
-- Not built yet: email and SMS channels. No job kind exists for them until its handler does
-- (a job nobody handles would only dead-letter).

create table public.notifications (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null references public.clients (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  title text not null check (length(title) between 1 and 200),
  message text not null check (length(message) <= 2000),
  priority text not null default 'normal' check (priority in ('immediate', 'normal', 'low')),
  link text,
  data jsonb not null default '{}'::jsonb check (jsonb_typeof(data) = 'object'),
  read_at timestamptz,
  created_at timestamptz not null default now()
);
comment on table public.notifications is
  'In-app notifications for one staff user (new replies in manual mode, hot leads, bookings, opt-ins).';
comment on column public.notifications.link is 'Deep link inside the app, e.g. /conversations/<id>.';
comment on column public.notifications.data is 'Context for the frontend (lead_id, conversation_id, message_id...).';
comment on column public.notifications.read_at is 'Set by the user when read; null = unread.';
create index notifications_user_idx on public.notifications (user_id, created_at desc);
create index notifications_unread_idx on public.notifications (user_id) where read_at is null;
create index notifications_client_idx on public.notifications (client_id);

alter table public.notifications enable row level security;

-- A user reads only the notifications addressed to it, in its current client.
create policy "users read their own notifications" on public.notifications
  for select to authenticated
  using (user_id = (select auth.uid()) and client_id = (select private.current_client_id()));

-- A user marks its own notifications read (read_at is the only writable column).
create policy "users mark their own notifications read" on public.notifications
  for update to authenticated
  using (user_id = (select auth.uid()) and client_id = (select private.current_client_id()))
  with check (user_id = (select auth.uid()));

-- A user deletes its own notifications.
create policy "users delete their own notifications" on public.notifications
  for delete to authenticated
  using (user_id = (select auth.uid()) and client_id = (select private.current_client_id()));

revoke all on public.notifications from anon, authenticated;
grant select, delete on public.notifications to authenticated;
grant update (read_at) on public.notifications to authenticated;
grant all on public.notifications to service_role;

alter publication supabase_realtime add table public.notifications;

-- Creates in-app notifications for the client's active admins and managers (and, with a dataset,
-- every member who can see it; a member that sees only its assigned leads when data.lead_id is one
-- of them); returns the number of rows created.
create function private.notify_staff(
  p_client_id uuid,
  p_title text,
  p_message text,
  p_priority text default 'normal',
  p_link text default null,
  p_data jsonb default '{}'::jsonb,
  p_dataset_id uuid default null
) returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_rows integer;
  v_lead_id uuid;
begin
  if p_data ->> 'lead_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    v_lead_id := (p_data ->> 'lead_id')::uuid;
  end if;
  if p_priority not in ('immediate', 'normal', 'low') then
    raise exception 'priority must be immediate, normal or low (got %)', p_priority using errcode = '22023';
  end if;
  -- Recipients: active admins and managers, plus (when the subject belongs to a dataset) every
  -- active member who can see that dataset. A member may switch in-app notifications off with
  -- notification_preferences.in_app = false, or filter low-priority ones with min_priority.
  insert into public.notifications (client_id, user_id, title, message, priority, link, data)
  select p_client_id, m.user_id, left(p_title, 200), left(coalesce(p_message, ''), 2000), p_priority, p_link,
    coalesce(p_data, '{}'::jsonb)
  from public.client_members m
  where m.client_id = p_client_id
    and m.status = 'active'
    and coalesce((m.notification_preferences ->> 'in_app')::boolean, true)
    and case coalesce(m.notification_preferences ->> 'min_priority', 'low')
      when 'immediate' then p_priority = 'immediate'
      when 'normal' then p_priority in ('immediate', 'normal')
      else true
    end
    and (
      (p_dataset_id is null and m.role in ('admin', 'manager'))
      or (
        p_dataset_id is not null
        and (
          m.role = 'admin' or m.can_view_all_leads
          or p_dataset_id = any (m.allowed_dataset_ids)
          -- No dataset list: the member sees only its assigned leads (fail closed).
          or (
            m.allowed_dataset_ids is null and v_lead_id is not null
            and exists (select from public.leads l where l.id = v_lead_id and l.assigned_to = m.user_id)
          )
        )
      )
    );
  get diagnostics v_rows = row_count;
  return v_rows;
end
$$;
comment on function private.notify_staff(uuid, text, text, text, text, jsonb, uuid) is
  'Creates in-app notifications for the client''s active admins and managers (and, with a dataset, every '
  'member who can see it; a member that sees only its assigned leads when data.lead_id is one of them); '
  'returns the number of rows created. Email/SMS channels: not built yet.';

revoke all on function private.notify_staff(uuid, text, text, text, text, jsonb, uuid)
  from public, anon, authenticated;
grant execute on function private.notify_staff(uuid, text, text, text, text, jsonb, uuid) to service_role;
