-- Lessons: what the AI agent has learned, written by staff or created from Sophie's insights.
-- Active lessons are injected into a prompt when someone makes that prompt live, so a lesson
-- changes the agent's behaviour only through a new, versioned prompt.

create type public.lesson_type as enum (
  'objection_handling', 'dos_donts', 'tone', 'compliance', 'timing', 'booking', 'other'
);
create type public.lesson_scope as enum ('client_specific', 'universal');
create type public.lesson_status as enum ('active', 'archived', 'testing');

create table public.lessons (
  id uuid primary key default gen_random_uuid(),
  client_id uuid default private.current_client_id() references public.clients (id) on delete cascade,
  scope public.lesson_scope not null default 'client_specific',
  lesson_type public.lesson_type not null default 'other',
  status public.lesson_status not null default 'active',
  title text not null check (length(trim(title)) between 1 and 200),
  description text check (length(description) <= 4000),
  trigger text check (length(trigger) <= 2000),
  correct_response text check (length(correct_response) <= 2000),
  incorrect_response text check (length(incorrect_response) <= 2000),
  reasoning text check (length(reasoning) <= 4000),
  tags text [] not null default '{}',
  priority smallint not null default 5 check (priority between 1 and 10),
  example_conversation jsonb check (example_conversation is null or jsonb_typeof(example_conversation) = 'object'),
  source_insight_id uuid,
  created_by uuid default auth.uid() references auth.users (id) on delete set null,
  times_applied integer not null default 0 check (times_applied >= 0),
  times_successful integer not null default 0 check (times_successful >= 0),
  success_rate numeric(5, 4) generated always as (
    case when times_applied > 0 then least(1, times_successful::numeric / times_applied) else 0 end
  ) stored,
  last_applied_at timestamptz,
  archived_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- A universal lesson belongs to no client; a client-specific one to exactly one.
  check ((scope = 'universal') = (client_id is null)),
  -- The insight a lesson was learned from is one of the lesson's own client (composite, as
  -- every cross-table reference here); a universal lesson, having no client, names none.
  -- Deleting the insight keeps the lesson and forgets the link.
  foreign key (source_insight_id, client_id) references public.sophie_insights (id, client_id)
  on delete set null (source_insight_id),
  check (source_insight_id is null or client_id is not null)
);
comment on table public.lessons is
  'Lessons for the AI agent. Client-specific ones belong to a client; universal ones (client_id null) '
  'apply to every client and are maintained by the platform (service role).';
comment on column public.lessons.trigger is 'When the lesson applies (the situation or phrase that calls for it).';
comment on column public.lessons.correct_response is 'What the agent should say or do in that situation.';
comment on column public.lessons.incorrect_response is 'What the agent must not say or do (negative lessons).';
comment on column public.lessons.example_conversation is
  '{"messages": [{"from": "ai"|"lead", "content": "...", "annotation": "..."}]}';
comment on column public.lessons.source_insight_id is
  'The Sophie insight this lesson was learned from, if any (linked by the Sophie capability).';
comment on column public.lessons.times_applied is 'AI messages sent that reported applying this lesson.';
comment on column public.lessons.times_successful is 'Of those, conversations whose lead went on to book a call.';
create index lessons_client_status_idx on public.lessons (client_id, status, priority desc);
create index lessons_universal_idx on public.lessons (status, priority desc) where client_id is null;
create index lessons_created_by_idx on public.lessons (created_by) where created_by is not null;
create index lessons_source_insight_idx on public.lessons (source_insight_id) where source_insight_id is not null;

create trigger lessons_touch before update on public.lessons
  for each row execute function private.touch_updated_at();
create trigger lessons_client_fixed before update of client_id on public.lessons
  for each row execute function private.forbid_client_change();

create function private.stamp_lesson_archive() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.status = 'archived' and old.status is distinct from 'archived' then
    new.archived_at := now();
  elsif new.status <> 'archived' then
    new.archived_at := null;
  end if;
  return new;
end
$$;
comment on function private.stamp_lesson_archive() is 'Trigger: keeps archived_at in step with status.';
create trigger lessons_archive_stamp before update of status on public.lessons
  for each row execute function private.stamp_lesson_archive();

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

create function private.can_push_to_live() returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(m.role = 'admin' or m.can_push_to_live, false) from private.current_membership() m
$$;
comment on function private.can_push_to_live() is 'True for admins and members allowed to make prompts live.';

revoke all on function private.can_edit_lessons(), private.can_push_to_live(), private.stamp_lesson_archive()
from public, anon;
grant execute on function private.can_edit_lessons(), private.can_push_to_live() to authenticated, service_role;

alter table public.lessons enable row level security;

create policy "members read their client's and universal lessons" on public.lessons
  for select to authenticated
  using (
    (select private.current_client_id()) is not null
    and (client_id is null or client_id = (select private.current_client_id()))
  );
create policy "lesson editors add client lessons" on public.lessons
  for insert to authenticated
  with check (client_id = (select private.current_client_id()) and (select private.can_edit_lessons()));
create policy "lesson editors update client lessons" on public.lessons
  for update to authenticated
  using (client_id = (select private.current_client_id()) and (select private.can_edit_lessons()))
  with check (client_id = (select private.current_client_id()));

-- Lessons are archived, never deleted by users; counters are kept by the AI pipeline.
revoke all on public.lessons from anon, authenticated;
grant select on public.lessons to authenticated;
grant insert (
  scope, lesson_type, status, title, description, trigger, correct_response, incorrect_response,
  reasoning, tags, priority, example_conversation, source_insight_id
) on public.lessons to authenticated;
grant update (
  lesson_type, status, title, description, trigger, correct_response, incorrect_response,
  reasoning, tags, priority, example_conversation
) on public.lessons to authenticated;
grant all on public.lessons to service_role;
