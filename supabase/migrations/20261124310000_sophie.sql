-- Sophie: what the AI agent learns.
--   * public.sophie_insights: findings on a lead or conversation (severity, status), read by
--     the lead detail and carried by realtime;
--   * public.lessons: what the agent has learned, written by staff (can_edit_lessons) or from
--     insights; a lesson changes behaviour only through a new prompt version;
--   * private.render_lessons: the lessons text a prompt made live includes;
--   * a booked call credits the lessons the AI applied in that lead's conversation.
-- This band comes after 30 ai although prompts use lessons: the functions of 30 that read
-- lessons are plpgsql and resolve them when they run, and nothing in 30 needs these tables
-- at creation time.

-- Sophie insights -------------------------------------------------------------------------
-- Sophie's insights: the minimal table the lead detail (GET /api/leads/[id]) reads. Not built
-- yet: the review jobs that fill it and the agree/disagree/dismiss flow; until then only
-- trusted roles write it, members read their client's rows of datasets they may see.

create type public.insight_severity as enum ('critical', 'urgent', 'warning', 'suggestion', 'info');
comment on type public.insight_severity is 'How urgent a Sophie insight is.';
create type public.insight_status as enum ('pending', 'viewed', 'approved_and_learned', 'dismissed', 'taught_sophie');
comment on type public.insight_status is 'Where a Sophie insight is in its review.';

create table public.sophie_insights (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null references public.clients (id) on delete cascade,
  dataset_id uuid,
  lead_id uuid,
  conversation_id uuid,
  message_id uuid references public.messages (id) on delete set null,
  severity public.insight_severity not null,
  category text not null check (
    category in ('compliance', 'tone', 'grammar', 'strategy', 'timing', 'personalization', 'booking', 'other')
  ),
  title text not null check (length(btrim(title)) between 1 and 300),
  description text,
  suggestion text,
  original_text text,
  suggested_text text,
  affected_leads_count integer not null default 0 check (affected_leads_count >= 0),
  status public.insight_status not null default 'pending',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (id, client_id),
  foreign key (dataset_id, client_id) references public.datasets (id, client_id) on delete cascade,
  foreign key (lead_id, client_id) references public.leads (id, client_id) on delete cascade,
  foreign key (conversation_id, client_id) references public.conversations (id, client_id) on delete cascade
);
comment on table public.sophie_insights is
  'A finding by Sophie (the reviewing AI) about a message, a conversation or a dataset, awaiting staff action.';
comment on column public.sophie_insights.dataset_id is
  'Dataset the insight concerns; null for client-wide insights (visible to every member of the client).';
comment on column public.sophie_insights.affected_leads_count is 'How many leads the finding applies to (patterns).';
comment on column public.sophie_insights.status is
  'pending -> viewed -> approved_and_learned (agree) | taught_sophie (disagree) | dismissed.';

create index sophie_insights_lead_id_idx on public.sophie_insights (lead_id) where lead_id is not null;
create index sophie_insights_client_idx on public.sophie_insights (client_id, status, created_at desc);
create index sophie_insights_dataset_idx on public.sophie_insights (dataset_id) where dataset_id is not null;
create index sophie_insights_conversation_idx on public.sophie_insights (conversation_id)
where conversation_id is not null;
create index sophie_insights_message_idx on public.sophie_insights (message_id) where message_id is not null;

create trigger sophie_insights_touch before update on public.sophie_insights
for each row execute function private.touch_updated_at();
create trigger sophie_insights_client_fixed before update of client_id on public.sophie_insights
for each row execute function private.forbid_client_change();

alter table public.sophie_insights enable row level security;

-- Members read their client's insights of the datasets they may see (and those of no dataset).
create policy "members read insights of visible datasets" on public.sophie_insights
for select to authenticated
using (
  client_id = (select private.current_client_id())
  and (
    dataset_id is null
    or (select private.sees_all_datasets())
    or dataset_id = any((select private.visible_dataset_ids())::uuid [])
  )
  -- An insight about one lead follows that lead for a member that sees only its assigned leads.
  and (
    lead_id is null
    or not (select private.sees_only_assigned_leads())
    or lead_id = any((select private.assigned_lead_ids())::uuid [])
  )
);

-- Writes come from Sophie's workers (service role) until the insight actions exist.
revoke all on public.sophie_insights from anon, authenticated;
grant select on public.sophie_insights to authenticated;
grant all on public.sophie_insights to service_role;

alter publication supabase_realtime add table public.sophie_insights;

-- lessons ---------------------------------------------------------------------------------
-- Lessons: what the AI agent has learned, written by staff or created from Sophie's insights.
-- Active lessons are injected into a prompt when someone makes that prompt live, so a lesson
-- changes the agent's behaviour only through a new, versioned prompt.

create type public.lesson_type as enum (
  'objection_handling', 'dos_donts', 'tone', 'compliance', 'timing', 'booking', 'other'
);
comment on type public.lesson_type is 'What kind of behaviour a lesson teaches.';
create type public.lesson_scope as enum ('client_specific', 'universal');
comment on type public.lesson_scope is 'A lesson for one client or for every client (universal).';
create type public.lesson_status as enum ('active', 'archived', 'testing');
comment on type public.lesson_status is 'A lesson is active (injected into prompts), testing or archived.';

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

-- Trigger: keeps archived_at in step with status.
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

revoke all on function private.stamp_lesson_archive() from public, anon;

alter table public.lessons enable row level security;

-- Active members read their client's lessons and the universal ones.
create policy "members read their client's and universal lessons" on public.lessons
  for select to authenticated
  using (
    (select private.current_client_id()) is not null
    and (client_id is null or client_id = (select private.current_client_id()))
  );
-- Admins and lesson editors add lessons for their own client (universal lessons are the
-- platform's).
create policy "lesson editors add client lessons" on public.lessons
  for insert to authenticated
  with check (client_id = (select private.current_client_id()) and (select private.can_edit_lessons()));
-- Admins and lesson editors change their client's lessons.
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

-- lessons in prompts ----------------------------------------------------------------------
-- The lessons text a prompt made live includes (make_prompt_live, 30 ai, calls it).
create function private.render_lessons(p_client_id uuid, out context text, out lesson_ids uuid [])
language sql
stable
security definer
set search_path = ''
as $$
  -- Client-specific lessons first, then universal ones; each group by priority (highest first).
  -- At most 50 lessons, so a prompt stays bounded whatever the library holds.
  with picked as (
    select l.*, row_number() over (
      order by (l.client_id is null), l.priority desc, l.created_at, l.id
    ) as n
    from public.lessons l
    where l.status = 'active' and (l.client_id = p_client_id or l.client_id is null)
    order by n
    limit 50
  )
  select
    case when count(*) = 0 then '' else
      E'<lessons>\nLessons learned from earlier conversations. Apply them whenever their situation arises; '
      || E'report the ids of those you applied in lessons_applied.\n'
      || string_agg(
        format(
          E'<lesson id="%s" type="%s" scope="%s" priority="%s">\n%s%s%s%s%s%s</lesson>',
          p.id, p.lesson_type, p.scope, p.priority,
          p.title || E'\n',
          coalesce(nullif(p.description, '') || E'\n', ''),
          coalesce('When: ' || nullif(p.trigger, '') || E'\n', ''),
          coalesce('Do: ' || nullif(p.correct_response, '') || E'\n', ''),
          coalesce('Avoid: ' || nullif(p.incorrect_response, '') || E'\n', ''),
          coalesce('Why: ' || nullif(p.reasoning, '') || E'\n', '')
        ), E'\n' order by p.n
      ) || E'\n</lessons>'
    end,
    coalesce(array_agg(p.id order by p.n), '{}')
  from picked p
$$;
comment on function private.render_lessons(uuid) is
  'The lessons text (and ids) a prompt made live now would include for a client.';

-- lessons credited by bookings ------------------------------------------------------------
-- A booked call credits the lessons the AI applied in that lead's conversation.
create function private.credit_lessons_on_booking() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.lessons
  set times_successful = times_successful + 1
  where id in (
    select distinct x::uuid
    from public.messages m, jsonb_array_elements_text(coalesce(m.ai_metadata -> 'lessons_applied', '[]')) x
    where m.lead_id = new.id and m.ai_generated and m.status not in ('draft', 'canceled')
      and x ~ '^[0-9a-f-]{36}$'
  );
  return null;
end
$$;
comment on function private.credit_lessons_on_booking() is
  'Trigger: a booked call credits the lessons the AI applied in that lead''s conversation.';
create trigger leads_credit_lessons after update of call_booked on public.leads
  for each row when (new.call_booked and not old.call_booked)
  execute function private.credit_lessons_on_booking();

revoke all on function private.render_lessons(uuid), private.credit_lessons_on_booking() from public, anon;
revoke all on function private.credit_lessons_on_booking() from authenticated;
grant execute on function private.render_lessons(uuid) to service_role;
