-- Sophie: the reviewing AI, and what the AI agent learns.
--   * public.sophie_insights: findings on a message, conversation or dataset (severity,
--     status), stored once per fingerprint, acted on once (agree / disagree / dismiss),
--     read by the lead detail and carried by realtime;
--   * public.sophie_analyses (every review: score, usage, cost), public.sophie_patterns,
--     and the internals of the review queue (batches, the review cursor, lead outcomes);
--   * public.lessons: what the agent has learned, written by staff (can_edit_lessons) or from
--     insights; a lesson changes behaviour only through a new prompt version;
--   * private.render_lessons: the lessons text a prompt made live includes;
--   * a booked call credits the lessons the AI applied in that lead's conversation.
-- This band comes after 30 ai although prompts use lessons: the functions of 30 that read
-- lessons are plpgsql and resolve them when they run, and nothing in 30 needs these tables
-- at creation time.

-- Sophie insights -------------------------------------------------------------------------
-- Sophie's insights: written by the review workers (service role) and changed by users only
-- through the insight actions below; members read their client's rows of datasets they may see.

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
  fingerprint text,
  pattern_key text,
  analysis_id uuid,
  pattern_id uuid,
  lesson_id uuid,
  viewed_at timestamptz,
  acted_at timestamptz,
  acted_by uuid references auth.users (id) on delete set null,
  action_note text check (length(action_note) <= 4000),
  p_value numeric check (p_value between 0 and 1),
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
comment on column public.sophie_insights.fingerprint is
  'Stable identity of a finding (subject, category, kind, quoted text): the same finding is stored once.';
comment on column public.sophie_insights.pattern_key is
  'The kind of finding (e.g. missing_opt_out, pressure_language): what a disagreement suppresses from then on.';
comment on column public.sophie_insights.analysis_id is 'The analysis that raised this insight.';
comment on column public.sophie_insights.pattern_id is 'The detected pattern this insight reports, if any.';
comment on column public.sophie_insights.lesson_id is 'The lesson created when staff agreed or disagreed.';
comment on column public.sophie_insights.action_note is
  'Staff''s note with the action: the learning note (agree), teaching note (disagree) or dismiss reason.';
comment on column public.sophie_insights.p_value is
  'For pattern insights: the two-proportion test''s p-value of the pattern''s success rate against the rest.';
create unique index sophie_insights_fingerprint_idx on public.sophie_insights (client_id, fingerprint)
where fingerprint is not null;
create index sophie_insights_taught_idx on public.sophie_insights (client_id, category, pattern_key)
where status = 'taught_sophie';
create index sophie_insights_lesson_idx on public.sophie_insights (lesson_id) where lesson_id is not null;
create index sophie_insights_acted_by_idx on public.sophie_insights (acted_by) where acted_by is not null;

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

-- Writes come from Sophie's workers (service role) and the insight action functions.
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
  search_vector tsvector generated always as (
    setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')
    || setweight(to_tsvector('english'::regconfig, coalesce(description, '') || ' ' || coalesce(trigger, '')), 'B')
    || setweight(to_tsvector('english'::regconfig,
      coalesce(correct_response, '') || ' ' || coalesce(incorrect_response, '') || ' ' || coalesce(reasoning, '')), 'C')
  ) stored,
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
comment on column public.lessons.search_vector is
  'Full-text index over title, description, trigger, responses and reasoning (GET sophie/lessons?search=).';
create index lessons_search_idx on public.lessons using gin (search_vector);
create index lessons_tags_idx on public.lessons using gin (tags);

-- The lesson an insight became (agree / disagree): lessons are created after insights.
alter table public.sophie_insights
  add constraint sophie_insights_lesson_id_fkey foreign key (lesson_id)
  references public.lessons (id) on delete set null;

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

-- Analyses ---------------------------------------------------------------------------------
create table public.sophie_analyses (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null references public.clients (id) on delete cascade,
  scope text not null check (scope in ('message', 'conversation')),
  message_id uuid references public.messages (id) on delete set null,
  conversation_id uuid,
  lead_id uuid,
  dataset_id uuid,
  via text not null check (via in ('request', 'batch')),
  job_id bigint,
  batch_id uuid,
  model text,
  quality_score numeric(4, 3) check (quality_score between 0 and 1),
  summary text,
  findings_count integer not null default 0,
  stored_count integer not null default 0,
  duplicate_count integer not null default 0,
  suppressed_count integer not null default 0,
  input_tokens integer not null default 0,
  cache_creation_input_tokens integer not null default 0,
  cache_read_input_tokens integer not null default 0,
  output_tokens integer not null default 0,
  cost_usd numeric(12, 6) not null default 0,
  claude_calls integer not null default 1,
  rejected_outputs integer not null default 0,
  created_at timestamptz not null default now(),
  foreign key (conversation_id, client_id) references public.conversations (id, client_id) on delete cascade
);
comment on table public.sophie_analyses is
  'One review by Sophie of a message or a conversation: score, counts, token usage and cost.';
comment on column public.sophie_analyses.via is 'request: one Messages API call; batch: the Message Batches API (half price).';
comment on column public.sophie_analyses.duplicate_count is 'Findings already stored for the same subject (same fingerprint).';
comment on column public.sophie_analyses.suppressed_count is
  'Findings not raised because staff taught Sophie (disagree) that this kind of finding is wrong.';
comment on column public.sophie_analyses.cost_usd is 'What the call cost in US dollars at the model''s list price.';
create index sophie_analyses_client_idx on public.sophie_analyses (client_id, created_at desc);
create index sophie_analyses_message_idx on public.sophie_analyses (message_id) where message_id is not null;
create index sophie_analyses_conversation_idx on public.sophie_analyses (conversation_id)
where conversation_id is not null;

alter table public.sophie_analyses enable row level security;
-- Admins and managers see what reviews cost their client; nobody writes them but the workers.
create policy "admins and managers read analyses" on public.sophie_analyses
for select to authenticated
using (client_id = (select private.current_client_id()) and (select private.can_manage_datasets()));
revoke all on public.sophie_analyses from anon, authenticated;
grant select on public.sophie_analyses to authenticated;
grant all on public.sophie_analyses to service_role;

-- Detected patterns ----------------------------------------------------------------------------
create table public.sophie_patterns (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null references public.clients (id) on delete cascade,
  dataset_id uuid not null,
  job_id bigint,
  pattern_key text not null,
  pattern_description text not null,
  suggested_lesson text,
  occurrences integer not null check (occurrences >= 0),
  successes integer not null check (successes >= 0),
  success_rate numeric(5, 4) not null,
  baseline_rate numeric(5, 4) not null,
  conversations_analysed integer not null,
  p_value numeric not null check (p_value between 0 and 1),
  recommended_action text not null check (recommended_action in ('adopt', 'avoid', 'test_more')),
  significant boolean not null,
  window_start timestamptz,
  detected_at timestamptz not null default now(),
  foreign key (dataset_id, client_id) references public.datasets (id, client_id) on delete cascade
);
comment on table public.sophie_patterns is
  'Patterns Sophie found in a dataset''s conversations, with the statistics computed here (not by Claude).';
comment on column public.sophie_patterns.success_rate is
  'Share of the conversations showing the pattern that booked or converted.';
comment on column public.sophie_patterns.baseline_rate is
  'Share of all analysed conversations of the dataset that booked or converted.';
comment on column public.sophie_patterns.p_value is
  'Two-proportion z-test (two-sided): conversations with the pattern against those without.';
comment on column public.sophie_patterns.significant is 'occurrences >= min_occurrences and p_value < 0.05.';
create index sophie_patterns_dataset_idx on public.sophie_patterns (dataset_id, detected_at desc);
create index sophie_patterns_client_idx on public.sophie_patterns (client_id);

alter table public.sophie_patterns enable row level security;
-- Members read the patterns of datasets they may see.
create policy "members read patterns of visible datasets" on public.sophie_patterns
for select to authenticated
using (
  client_id = (select private.current_client_id())
  and ((select private.sees_all_datasets()) or dataset_id = any ((select private.visible_dataset_ids())::uuid []))
);
revoke all on public.sophie_patterns from anon, authenticated;
grant select on public.sophie_patterns to authenticated;
grant all on public.sophie_patterns to service_role;

-- Batches and the review cursor (internal) -------------------------------------------------------
create table private.sophie_batches (
  id uuid primary key default gen_random_uuid(),
  kind text not null check (kind in ('analysis', 'patterns')),
  job_id bigint unique,
  anthropic_batch_id text unique,
  status text not null default 'preparing' check (status in ('preparing', 'submitted', 'stored', 'failed')),
  items jsonb not null default '[]'::jsonb check (jsonb_typeof(items) = 'array'),
  request_count integer not null default 0,
  result_counts jsonb,
  created_at timestamptz not null default now(),
  submitted_at timestamptz,
  stored_at timestamptz
);
comment on table private.sophie_batches is
  'Message Batches sent to Anthropic: what each custom_id stands for, and how far the batch got.';
comment on column private.sophie_batches.items is
  '[{custom_id, client_id, conversation_id, through}] for analysis batches; chunks for pattern batches.';
alter table private.sophie_batches enable row level security;
revoke all on private.sophie_batches from public, anon, authenticated;
grant all on private.sophie_batches to service_role;

create table private.sophie_review_cursor (
  conversation_id uuid primary key references public.conversations (id) on delete cascade,
  client_id uuid not null references public.clients (id) on delete cascade,
  reviewed_through timestamptz,
  reserved_by uuid references private.sophie_batches (id) on delete set null,
  reserved_at timestamptz
);
comment on table private.sophie_review_cursor is
  'Per conversation: the last message time a scheduled review covered, and the batch now reviewing it. '
  'A conversation is due while last_message_at > reviewed_through and no live batch holds it.';
create index sophie_review_cursor_reserved_idx on private.sophie_review_cursor (reserved_by)
where reserved_by is not null;
create index sophie_review_cursor_client_idx on private.sophie_review_cursor (client_id);
alter table private.sophie_review_cursor enable row level security;
revoke all on private.sophie_review_cursor from public, anon, authenticated;
grant all on private.sophie_review_cursor to service_role;

create table private.sophie_job_budget (
  job_id bigint primary key,
  spent_at timestamptz not null default now()
);
comment on table private.sophie_job_budget is
  'sophie.analyze jobs that already spent their unit of the client''s hourly budget (a retry spends none).';
alter table private.sophie_job_budget enable row level security;
revoke all on private.sophie_job_budget from public, anon, authenticated;
grant all on private.sophie_job_budget to service_role;

-- When a lead reached a success outcome (CALL_BOOKED or CONVERTED).
create table private.lead_outcomes (
  lead_id uuid not null references public.leads (id) on delete cascade,
  outcome public.lead_status not null check (outcome in ('CALL_BOOKED', 'CONVERTED')),
  reached_at timestamptz not null default now(),
  primary key (lead_id, outcome)
);
comment on table private.lead_outcomes is
  'First time each lead reached CALL_BOOKED or CONVERTED: what lesson success rates and patterns count.';
alter table private.lead_outcomes enable row level security;
revoke all on private.lead_outcomes from public, anon, authenticated;
grant all on private.lead_outcomes to service_role;

-- Trigger: record a lead's first CALL_BOOKED / CONVERTED (status change or call_booked flag).
create function private.record_lead_outcome() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into private.lead_outcomes (lead_id, outcome)
  select n.id, case when n.contact_status = 'CONVERTED' then 'CONVERTED' else 'CALL_BOOKED' end::public.lead_status
  from new_rows n
  left join old_rows o on o.id = n.id
  where (n.contact_status in ('CALL_BOOKED', 'CONVERTED') and o.contact_status is distinct from n.contact_status)
     or (n.call_booked and not coalesce(o.call_booked, false))
  on conflict do nothing;
  return null;
end
$$;
comment on function private.record_lead_outcome() is
  'Statement trigger on leads: stamps when a lead first booked a call or converted (private.lead_outcomes).';
-- Statement trigger on leads (insert).
create function private.record_lead_outcome_insert() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into private.lead_outcomes (lead_id, outcome)
  select n.id, case when n.contact_status = 'CONVERTED' then 'CONVERTED' else 'CALL_BOOKED' end::public.lead_status
  from new_rows n
  where n.contact_status in ('CALL_BOOKED', 'CONVERTED') or n.call_booked
  on conflict do nothing;
  return null;
end
$$;
comment on function private.record_lead_outcome_insert() is
  'Statement trigger on leads (insert): a lead imported as booked or converted counts from its creation.';
create trigger leads_record_outcome after update on public.leads
referencing old table as old_rows new table as new_rows
for each statement execute function private.record_lead_outcome();
create trigger leads_record_outcome_insert after insert on public.leads
referencing new table as new_rows
for each statement execute function private.record_lead_outcome_insert();
revoke all on function private.record_lead_outcome(), private.record_lead_outcome_insert() from public, anon, authenticated;

-- Settings ---------------------------------------------------------------------------------------
create function private.attribution_window(p_client_id uuid) returns interval
language sql
stable
security invoker
set search_path = ''
as $$
  select make_interval(days => coalesce(
    (select case when c.settings ->> 'attribution_window_days' ~ '^[0-9]{1,3}$'
      then (c.settings ->> 'attribution_window_days')::integer end
     from public.clients c where c.id = p_client_id),
    7))
$$;
comment on function private.attribution_window(uuid) is
  'How long after an AI message a booking still counts for the lessons it applied: '
  'clients.settings.attribution_window_days, default 7 days.';

-- Lesson statistics ------------------------------------------------------------------------------
-- A lesson is applied to every AI message sent with a prompt version that included it; the
-- application succeeds when the lead reaches CALL_BOOKED or CONVERTED after the message and
-- within the client's attribution window. Stable name and shape: analytics reuses it.
create function private.lesson_stats(
  p_client_id uuid,
  p_since timestamptz default null,
  p_until timestamptz default null
) returns table (
  lesson_id uuid,
  times_applied integer,
  times_successful integer,
  success_rate numeric,
  last_applied_at timestamptz
)
language sql
stable
security definer
set search_path = ''
as $$
  with win as (select private.attribution_window(p_client_id) as w),
  applied as (
    select x.lesson_id, m.id as message_id, coalesce(m.sent_at, m.created_at) as at, m.lead_id
    from public.messages m
    join public.prompts p on p.id::text = m.ai_metadata ->> 'prompt_version_id' and p.client_id = m.client_id
    cross join lateral unnest(p.lesson_ids) as x(lesson_id)
    where m.client_id = p_client_id
      -- A user reads only their own client's statistics; workers (no user) any client's.
      and (auth.uid() is null or p_client_id = private.current_client_id())
      and m.ai_generated
      and m.direction = 'outbound'
      and m.status not in ('draft', 'canceled', 'failed', 'undelivered')
      and m.ai_metadata ? 'prompt_version_id'
      and (p_since is null or coalesce(m.sent_at, m.created_at) >= p_since)
      and (p_until is null or coalesce(m.sent_at, m.created_at) < p_until)
  ),
  outcome as (
    select o.lead_id, min(o.reached_at) as reached_at
    from private.lead_outcomes o
    where o.lead_id in (select a.lead_id from applied a)
    group by o.lead_id
  )
  select a.lesson_id,
    count(*)::integer,
    count(*) filter (where o.reached_at >= a.at and o.reached_at <= a.at + (select w from win))::integer,
    round(
      (count(*) filter (where o.reached_at >= a.at and o.reached_at <= a.at + (select w from win)))::numeric
      / count(*), 4),
    max(a.at)
  from applied a
  left join outcome o on o.lead_id = a.lead_id
  group by a.lesson_id
$$;
comment on function private.lesson_stats(uuid, timestamptz, timestamptz) is
  'Per lesson of a client: AI messages sent with a prompt version that included it (times_applied), '
  'those whose lead booked or converted within the attribution window after the message '
  '(times_successful), their ratio (success_rate, 0-1) and the last application. Optional '
  'half-open range [p_since, p_until) on the message time. Lessons never applied have no row.';

-- Shapes -----------------------------------------------------------------------------------------
create function private.insight_json(i public.sophie_insights) returns jsonb
language sql
immutable
set search_path = ''
as $$
  select jsonb_build_object(
    'id', i.id, 'severity', i.severity, 'category', i.category, 'title', i.title,
    'description', i.description, 'suggestion', i.suggestion, 'original_text', i.original_text,
    'suggested_text', i.suggested_text, 'affected_leads_count', i.affected_leads_count,
    'message_id', i.message_id, 'conversation_id', i.conversation_id, 'lead_id', i.lead_id,
    'dataset_id', i.dataset_id, 'status', i.status, 'created_at', i.created_at
  )
$$;
comment on function private.insight_json(public.sophie_insights) is 'The API contract''s insight shape (GET sophie/insights).';

-- The API contract's lesson shape (GET sophie/lessons), with times_applied and success_rate from real
-- outcomes.
create function private.lesson_json(l public.lessons, p_times_applied integer, p_success_rate numeric)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select jsonb_build_object(
    'id', l.id, 'lesson_type', l.lesson_type, 'scope', l.scope, 'title', l.title,
    'description', l.description, 'trigger', l.trigger, 'correct_response', l.correct_response,
    'incorrect_response', l.incorrect_response, 'reasoning', l.reasoning, 'tags', to_jsonb(l.tags),
    'priority', l.priority, 'times_applied', coalesce(p_times_applied, 0),
    'success_rate', coalesce(p_success_rate, 0), 'status', l.status,
    'example_conversation', l.example_conversation, 'source_insight_id', l.source_insight_id,
    'created_at', l.created_at, 'updated_at', l.updated_at
  )
$$;
comment on function private.lesson_json(public.lessons, integer, numeric) is
  'The API contract''s lesson shape (GET sophie/lessons), with times_applied and success_rate from real outcomes.';

-- Returns p_value when null or one of p_allowed; else 400 naming the field and the allowed values.
create function private.parse_enum(p_value text, p_key text, p_allowed text []) returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  if p_value is not null and not (p_value = any (p_allowed)) then
    perform private.raise_error(400, format('%s must be one of %s (got %s)', p_key, array_to_string(p_allowed, ', '), p_value),
      jsonb_build_object('field', p_key, 'allowed', to_jsonb(p_allowed)));
  end if;
  return p_value;
end
$$;
comment on function private.parse_enum(text, text, text []) is
  'Returns p_value when null or one of p_allowed; else 400 naming the field and the allowed values.';

-- GET sophie/insights --------------------------------------------------------------------------
create function private.get_insights(
  p_status text, p_severity text, p_category text, p_dataset_id uuid, p_limit integer
) returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_status text := private.parse_enum(p_status, 'status', enum_range(null::public.insight_status)::text []);
  v_severity text := private.parse_enum(p_severity, 'severity', enum_range(null::public.insight_severity)::text []);
  v_category text := private.parse_enum(p_category, 'category',
    array['compliance', 'tone', 'grammar', 'strategy', 'timing', 'personalization', 'booking', 'other']);
  v_limit integer := coalesce(p_limit, 50);
  v_out jsonb;
begin
  perform private.require_member();
  if v_limit < 1 or v_limit > 200 then
    perform private.raise_error(400, 'limit must be between 1 and 200', jsonb_build_object('limit', p_limit));
  end if;
  -- RLS (security invoker) decides visibility: client, datasets, assigned leads. Without a
  -- status filter the open ones (pending, viewed) are listed. The summary counts the same
  -- set by severity, whatever the severity filter and the limit.
  with base as (
    select i as r, i.id, i.severity, i.created_at from public.sophie_insights i
    where (case when v_status is null then i.status in ('pending', 'viewed') else i.status::text = v_status end)
      and (v_category is null or i.category = v_category)
      and (p_dataset_id is null or i.dataset_id = p_dataset_id)
  ),
  page as (
    select b.* from base b
    where v_severity is null or b.severity::text = v_severity
    order by b.severity, b.created_at desc, b.id
    limit v_limit
  )
  select jsonb_build_object(
    'insights', coalesce((select jsonb_agg(private.insight_json(p.r) order by p.severity, p.created_at desc, p.id) from page p), '[]'::jsonb),
    'summary', (
      select jsonb_build_object(
        'critical', count(*) filter (where b.severity = 'critical'),
        'urgent', count(*) filter (where b.severity = 'urgent'),
        'warning', count(*) filter (where b.severity = 'warning'),
        'suggestion', count(*) filter (where b.severity = 'suggestion'),
        'info', count(*) filter (where b.severity = 'info')
      ) from base b
    )
  ) into v_out;
  return v_out;
end
$$;
comment on function private.get_insights(text, text, text, uuid, integer) is 'Body of public.get_insights (security invoker).';

-- GET sophie/insights.
create function public.get_insights(
  status text default null,
  severity text default null,
  category text default null,
  dataset_id uuid default null,
  "limit" integer default 50
) returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.get_insights(status, severity, category, dataset_id, "limit")
$$;
comment on function public.get_insights(text, text, text, uuid, integer) is
  'GET sophie/insights: {insights, summary{critical, urgent, warning, suggestion, info}} of the insights the '
  'caller may see (open ones unless status is given), filtered by severity, category, dataset; limit 1-200 (50).';

-- Acting on one insight --------------------------------------------------------------------------
create function private.visible_insight(p_id uuid, p_lock boolean default false) returns public.sophie_insights
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row public.sophie_insights;
begin
  perform private.require_member();
  -- The same visibility as the select policy, checked explicitly (security definer to lock).
  select i.* into v_row from public.sophie_insights i
  where i.id = p_id
    and i.client_id = private.current_client_id()
    and (i.dataset_id is null or private.sees_all_datasets() or i.dataset_id = any (private.visible_dataset_ids()))
    and (i.lead_id is null or not private.sees_only_assigned_leads() or i.lead_id = any (private.assigned_lead_ids()));
  if v_row.id is null then
    perform private.raise_error(404, format('insight %s not found', p_id));
  end if;
  if p_lock then
    select i.* into v_row from public.sophie_insights i where i.id = p_id for update;
  end if;
  return v_row;
end
$$;
comment on function private.visible_insight(uuid, boolean) is
  'The insight if the caller may see it (select policy), optionally row-locked; 404 otherwise.';

-- 409 CONFLICT unless the insight is still pending or viewed.
create function private.require_open_insight(p_row public.sophie_insights) returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if p_row.status not in ('pending', 'viewed') then
    perform private.raise_error(409, format('this insight was already acted on (%s)', p_row.status),
      jsonb_build_object('status', p_row.status, 'acted_at', p_row.acted_at), 'CONFLICT');
  end if;
end
$$;
comment on function private.require_open_insight(public.sophie_insights) is
  '409 CONFLICT unless the insight is still pending or viewed: an insight is acted on once.';

-- Records the one action on an insight (status, who, when, note, lesson) and mirrors it on the
-- message.
create function private.close_insight(
  p_id uuid, p_status public.insight_status, p_note text, p_lesson_id uuid
) returns public.sophie_insights
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row public.sophie_insights;
begin
  update public.sophie_insights
  set status = p_status, acted_at = now(), acted_by = auth.uid(), action_note = p_note, lesson_id = p_lesson_id
  where id = p_id
  returning * into v_row;
  -- The reviewed message shows what became of Sophie's feedback.
  if v_row.message_id is not null then
    update public.messages set sophie_feedback_status = p_status::text
    where id = v_row.message_id and sophie_feedback_status is distinct from p_status::text;
  end if;
  return v_row;
end
$$;
comment on function private.close_insight(uuid, public.insight_status, text, uuid) is
  'Records the one action on an insight (status, who, when, note, lesson) and mirrors it on the message.';

-- Body of public.get_insight.
create function private.get_insight(p_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row public.sophie_insights := private.visible_insight(p_id, true);
begin
  if v_row.status = 'pending' then
    update public.sophie_insights set status = 'viewed', viewed_at = now() where id = p_id returning * into v_row;
  end if;
  return jsonb_build_object('insight', private.insight_json(v_row));
end
$$;
comment on function private.get_insight(uuid) is 'Body of public.get_insight: opening an insight marks it viewed.';

-- Opens one insight ({insight}); a pending insight becomes viewed.
create function public.get_insight(id uuid) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.get_insight(id)
$$;
comment on function public.get_insight(uuid) is
  'Opens one insight ({insight}); a pending insight becomes viewed. 404 when not visible.';

-- The lesson type an agreed insight of a category becomes.
create function private.lesson_type_for(p_category text) returns public.lesson_type
language sql
immutable
set search_path = ''
as $$
  select case p_category
    when 'compliance' then 'compliance' when 'tone' then 'tone' when 'timing' then 'timing'
    when 'booking' then 'booking' when 'grammar' then 'dos_donts'
    else 'other' end::public.lesson_type
$$;
comment on function private.lesson_type_for(text) is 'The lesson type an agreed insight of a category becomes.';

-- Body of public.agree_insight.
create function private.agree_insight(
  p_id uuid, p_learning_note text, p_lesson_title text, p_lesson_priority integer
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row public.sophie_insights := private.visible_insight(p_id, true);
  v_lesson public.lessons;
begin
  if not private.can_edit_lessons() then
    perform private.raise_error(403, 'only an admin or a member allowed to edit lessons can agree with Sophie');
  end if;
  perform private.require_open_insight(v_row);
  if nullif(btrim(coalesce(p_learning_note, '')), '') is null then
    perform private.raise_error(400, 'learning_note is required', jsonb_build_object('field', 'learning_note'));
  end if;
  if p_lesson_priority is not null and p_lesson_priority not between 1 and 10 then
    perform private.raise_error(400, 'lesson_priority must be between 1 and 10',
      jsonb_build_object('field', 'lesson_priority', 'value', p_lesson_priority));
  end if;
  insert into public.lessons (
    client_id, scope, lesson_type, status, title, description, trigger, correct_response,
    incorrect_response, reasoning, tags, priority, source_insight_id, created_by
  ) values (
    v_row.client_id, 'client_specific', private.lesson_type_for(v_row.category), 'active',
    left(coalesce(nullif(btrim(p_lesson_title), ''), v_row.title), 200),
    left(coalesce(v_row.description, v_row.title), 4000),
    left(coalesce(v_row.original_text, v_row.title), 2000),
    left(coalesce(v_row.suggested_text, v_row.suggestion), 2000),
    left(v_row.original_text, 2000),
    left(btrim(p_learning_note), 4000),
    array_remove(array['sophie', v_row.category, v_row.pattern_key], null),
    coalesce(p_lesson_priority,
      case v_row.severity when 'critical' then 9 when 'urgent' then 8 when 'warning' then 6 else 5 end),
    v_row.id, auth.uid()
  ) returning * into v_lesson;
  perform private.close_insight(p_id, 'approved_and_learned', btrim(p_learning_note), v_lesson.id);
  return jsonb_build_object(
    'lesson', jsonb_build_object(
      'id', v_lesson.id, 'title', v_lesson.title, 'lesson_type', v_lesson.lesson_type,
      'status', v_lesson.status, 'created_at', v_lesson.created_at
    ),
    'insight_updated', true
  );
end
$$;
comment on function private.agree_insight(uuid, text, text, integer) is
  'Body of public.agree_insight: an active lesson from the insight (note in its reasoning), linked both ways.';

-- POST sophie/insights/[id]/agree (admin or can_edit_lessons).
create function public.agree_insight(
  id uuid, learning_note text, lesson_title text default null, lesson_priority integer default null
) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.agree_insight(id, learning_note, lesson_title, lesson_priority)
$$;
comment on function public.agree_insight(uuid, text, text, integer) is
  'POST sophie/insights/[id]/agree (admin or can_edit_lessons): {lesson{id,title,lesson_type,status,created_at}, '
  'insight_updated: true}; the insight becomes approved_and_learned. 409 when already acted on.';

-- Body of public.disagree_insight.
create function private.disagree_insight(p_id uuid, p_teaching_note text, p_correct_approach text) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row public.sophie_insights := private.visible_insight(p_id, true);
  v_lesson public.lessons;
begin
  if not private.can_edit_lessons() then
    perform private.raise_error(403, 'only an admin or a member allowed to edit lessons can teach Sophie');
  end if;
  perform private.require_open_insight(v_row);
  if nullif(btrim(coalesce(p_teaching_note, '')), '') is null then
    perform private.raise_error(400, 'teaching_note is required', jsonb_build_object('field', 'teaching_note'));
  end if;
  if nullif(btrim(coalesce(p_correct_approach, '')), '') is null then
    perform private.raise_error(400, 'correct_approach is required', jsonb_build_object('field', 'correct_approach'));
  end if;
  -- A negative example: what Sophie flagged (and suggested) is not a problem for this client.
  insert into public.lessons (
    client_id, scope, lesson_type, status, title, description, trigger, correct_response,
    incorrect_response, reasoning, tags, priority, source_insight_id, created_by
  ) values (
    v_row.client_id, 'client_specific', 'dos_donts', 'active',
    left('Do not flag: ' || v_row.title, 200),
    left(format('Sophie flagged "%s" (%s); staff disagreed.', v_row.title, v_row.category), 4000),
    left(coalesce(v_row.original_text, v_row.description, v_row.title), 2000),
    left(btrim(p_correct_approach), 2000),
    left(coalesce(v_row.suggested_text, v_row.suggestion), 2000),
    left(btrim(p_teaching_note), 4000),
    array_remove(array['sophie', 'disagreed', v_row.category, v_row.pattern_key], null),
    7, v_row.id, auth.uid()
  ) returning * into v_lesson;
  perform private.close_insight(p_id, 'taught_sophie', btrim(p_teaching_note), v_lesson.id);
  return jsonb_build_object(
    'lesson', jsonb_build_object(
      'id', v_lesson.id, 'title', v_lesson.title, 'lesson_type', v_lesson.lesson_type, 'status', v_lesson.status
    ),
    'sophie_updated', true
  );
end
$$;
comment on function private.disagree_insight(uuid, text, text) is
  'Body of public.disagree_insight: a dos_donts lesson; Sophie''s prompt carries it and findings of the same '
  'kind (category + pattern_key) are no longer raised while it is active.';

-- POST sophie/insights/[id]/disagree (admin or can_edit_lessons).
create function public.disagree_insight(id uuid, teaching_note text, correct_approach text) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.disagree_insight(id, teaching_note, correct_approach)
$$;
comment on function public.disagree_insight(uuid, text, text) is
  'POST sophie/insights/[id]/disagree (admin or can_edit_lessons): {lesson{..., lesson_type: dos_donts}, '
  'sophie_updated: true}; the insight becomes taught_sophie. 409 when already acted on.';

-- Body of public.dismiss_insight.
create function private.dismiss_insight(p_id uuid, p_reason text) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row public.sophie_insights := private.visible_insight(p_id, true);
begin
  if not private.can_write() then
    perform private.raise_error(403, 'read-only members cannot dismiss insights');
  end if;
  perform private.require_open_insight(v_row);
  v_row := private.close_insight(p_id, 'dismissed', nullif(btrim(coalesce(p_reason, '')), ''), null);
  return jsonb_build_object('insight', private.insight_json(v_row) || jsonb_build_object('dismiss_reason', v_row.action_note));
end
$$;
comment on function private.dismiss_insight(uuid, text) is 'Body of public.dismiss_insight.';

-- POST sophie/insights/[id]/dismiss (any member but read-only).
create function public.dismiss_insight(id uuid, reason text default null) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.dismiss_insight(id, reason)
$$;
comment on function public.dismiss_insight(uuid, text) is
  'POST sophie/insights/[id]/dismiss (any member but read-only): {insight} now dismissed, the reason stored. '
  '409 when already acted on.';

-- Lessons library --------------------------------------------------------------------------------
create function private.list_lessons(
  p_lesson_type text, p_scope text, p_status text, p_search text, p_tags text [], p_sort text
) returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_client uuid := private.require_member();
  v_type text := private.parse_enum(p_lesson_type, 'lesson_type', enum_range(null::public.lesson_type)::text []);
  v_scope text := private.parse_enum(p_scope, 'scope', enum_range(null::public.lesson_scope)::text []);
  v_status text := private.parse_enum(p_status, 'status', enum_range(null::public.lesson_status)::text []);
  v_sort text := private.parse_enum(coalesce(p_sort, 'created'), 'sort',
    array['created', 'priority', 'success_rate', 'times_applied']);
  v_query tsquery := case when nullif(btrim(coalesce(p_search, '')), '') is not null
    then websearch_to_tsquery('english', p_search) end;
  v_out jsonb;
begin
  -- RLS: the caller's client's lessons and universal ones. Archived lessons are listed only
  -- when asked for (status=archived).
  with picked as (
    select l as r, l.id, l.priority, l.created_at, s.times_applied as applied, s.success_rate as rate
    from public.lessons l
    left join private.lesson_stats(v_client) s on s.lesson_id = l.id
    where (v_type is null or l.lesson_type::text = v_type)
      and (v_scope is null or l.scope::text = v_scope)
      and (case when v_status is null then l.status <> 'archived' else l.status::text = v_status end)
      and (v_query is null or l.search_vector @@ v_query)
      and (p_tags is null or cardinality(p_tags) = 0 or l.tags @> p_tags)
  )
  select jsonb_build_object('lessons', coalesce(jsonb_agg(
    private.lesson_json(p.r, p.applied, p.rate) order by
      case v_sort when 'priority' then p.priority::numeric when 'success_rate' then coalesce(p.rate, 0)
        when 'times_applied' then coalesce(p.applied, 0)::numeric end desc nulls last,
      p.created_at desc, p.id
  ), '[]'::jsonb))
  into v_out
  from picked p;
  return v_out;
end
$$;
comment on function private.list_lessons(text, text, text, text, text [], text) is
  'Body of public.list_lessons (security invoker).';

-- GET sophie/lessons.
create function public.list_lessons(
  lesson_type text default null,
  scope text default null,
  status text default null,
  search text default null,
  tags text [] default null,
  sort text default 'created'
) returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.list_lessons(lesson_type, scope, status, search, tags, sort)
$$;
comment on function public.list_lessons(text, text, text, text, text [], text) is
  'GET sophie/lessons: {lessons} of the caller''s client plus universal ones, filtered by type, scope, status '
  '(archived only when asked), full-text search (websearch syntax over title, description, trigger, responses, '
  'reasoning) and tags (must contain all); sort created | priority | success_rate | times_applied (descending).';

-- Validates a lesson body (POST.
create function private.lesson_values(p_body jsonb, p_partial boolean) returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_out jsonb := '{}'::jsonb;
  v_key text;
  v_required text [] := array['lesson_type', 'scope', 'title', 'trigger', 'reasoning', 'priority'];
  v_limits jsonb := '{"title": 200, "description": 4000, "trigger": 2000, "correct_response": 2000,
    "incorrect_response": 2000, "reasoning": 4000}'::jsonb;
begin
  perform private.reject_unknown_keys(p_body, array[
    'lesson_type', 'scope', 'title', 'description', 'trigger', 'correct_response', 'incorrect_response',
    'reasoning', 'tags', 'priority', 'example_conversation', 'status'
  ]);
  if not p_partial then
    foreach v_key in array v_required loop
      if not (p_body ? v_key) or jsonb_typeof(p_body -> v_key) = 'null' then
        perform private.raise_error(400, format('%s is required', v_key), jsonb_build_object('field', v_key));
      end if;
    end loop;
  end if;
  if p_body ? 'lesson_type' then
    v_out := v_out || jsonb_build_object('lesson_type',
      private.enum_field(p_body, 'lesson_type', enum_range(null::public.lesson_type)::text [], false));
  end if;
  if p_body ? 'scope' then
    v_out := v_out || jsonb_build_object('scope',
      private.enum_field(p_body, 'scope', enum_range(null::public.lesson_scope)::text [], false));
  end if;
  if p_body ? 'status' then
    v_out := v_out || jsonb_build_object('status',
      private.enum_field(p_body, 'status', enum_range(null::public.lesson_status)::text [], false));
  end if;
  for v_key in select k from jsonb_object_keys(v_limits) k loop
    if p_body ? v_key then
      if v_key = 'title' and private.text_field(p_body, v_key) is null then
        perform private.raise_error(400, 'title must not be blank', jsonb_build_object('field', 'title'));
      end if;
      if length(private.text_field(p_body, v_key)) > (v_limits ->> v_key)::integer then
        perform private.raise_error(400, format('%s is longer than %s characters', v_key, v_limits ->> v_key),
          jsonb_build_object('field', v_key));
      end if;
      v_out := v_out || jsonb_build_object(v_key, private.text_field(p_body, v_key));
    end if;
  end loop;
  if p_body ? 'priority' then
    if jsonb_typeof(p_body -> 'priority') <> 'number' or (p_body ->> 'priority') !~ '^-?[0-9]+$'
       or (p_body ->> 'priority')::numeric not between 1 and 10 then
      perform private.raise_error(400, format('priority must be a whole number from 1 to 10 (got %s)', p_body -> 'priority'),
        jsonb_build_object('field', 'priority'));
    end if;
    v_out := v_out || jsonb_build_object('priority', (p_body ->> 'priority')::integer);
  end if;
  if p_body ? 'tags' then
    if jsonb_typeof(p_body -> 'tags') <> 'array'
       or exists (select from jsonb_array_elements(p_body -> 'tags') t where jsonb_typeof(t) <> 'string' or length(t #>> '{}') not between 1 and 50)
       or jsonb_array_length(p_body -> 'tags') > 30 then
      perform private.raise_error(400, 'tags must be an array of at most 30 strings of 1-50 characters',
        jsonb_build_object('field', 'tags'));
    end if;
    v_out := v_out || jsonb_build_object('tags', (
      select coalesce(jsonb_agg(distinct lower(btrim(t))), '[]'::jsonb) from jsonb_array_elements_text(p_body -> 'tags') t
    ));
  end if;
  if p_body ? 'example_conversation' then
    if jsonb_typeof(p_body -> 'example_conversation') = 'null' then
      v_out := v_out || jsonb_build_object('example_conversation', null);
    elsif jsonb_typeof(p_body -> 'example_conversation') <> 'object'
       or jsonb_typeof(p_body -> 'example_conversation' -> 'messages') <> 'array'
       or exists (
         select from jsonb_array_elements(p_body -> 'example_conversation' -> 'messages') m
         where jsonb_typeof(m) <> 'object' or coalesce(m ->> 'from', '') not in ('ai', 'lead')
           or jsonb_typeof(m -> 'content') <> 'string'
       ) then
      perform private.raise_error(400,
        'example_conversation must be {"messages": [{"from": "ai"|"lead", "content": "...", "annotation"?: "..."}]}',
        jsonb_build_object('field', 'example_conversation'));
    else
      v_out := v_out || jsonb_build_object('example_conversation', p_body -> 'example_conversation');
    end if;
  end if;
  return v_out;
end
$$;
comment on function private.lesson_values(jsonb, boolean) is
  'Validates a lesson body (POST: every required field; PUT: any subset) with clear 400s; returns clean values.';

-- Body of public.create_lesson (security invoker.
create function private.create_lesson(p_body jsonb) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v jsonb;
  v_lesson public.lessons;
begin
  perform private.require_member();
  if not private.can_edit_lessons() then
    perform private.raise_error(403, 'only an admin or a member allowed to edit lessons can create lessons');
  end if;
  v := private.lesson_values(p_body, false);
  if v ->> 'scope' = 'universal' then
    perform private.raise_error(403, 'universal lessons apply to every client and are maintained by the platform',
      jsonb_build_object('field', 'scope'));
  end if;
  insert into public.lessons (
    scope, lesson_type, status, title, description, trigger, correct_response, incorrect_response,
    reasoning, tags, priority, example_conversation
  ) values (
    'client_specific', (v ->> 'lesson_type')::public.lesson_type,
    coalesce(v ->> 'status', 'active')::public.lesson_status, v ->> 'title', v ->> 'description',
    v ->> 'trigger', v ->> 'correct_response', v ->> 'incorrect_response', v ->> 'reasoning',
    coalesce(array(select jsonb_array_elements_text(v -> 'tags')), '{}'), (v ->> 'priority')::smallint,
    v -> 'example_conversation'
  ) returning * into v_lesson;
  return jsonb_build_object('lesson', private.lesson_json(v_lesson, 0, 0));
end
$$;
comment on function private.create_lesson(jsonb) is 'Body of public.create_lesson (security invoker: RLS and grants apply).';

-- POST sophie/lessons (admin or can_edit_lessons).
create function public.create_lesson(
  lesson_type text,
  scope text,
  title text,
  trigger text,
  reasoning text,
  priority integer,
  description text default null,
  correct_response text default null,
  incorrect_response text default null,
  tags text [] default '{}',
  example_conversation jsonb default null
) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.create_lesson(jsonb_strip_nulls(jsonb_build_object(
    'lesson_type', lesson_type, 'scope', scope, 'title', title, 'trigger', trigger, 'reasoning', reasoning,
    'priority', priority, 'description', description, 'correct_response', correct_response,
    'incorrect_response', incorrect_response, 'tags', to_jsonb(coalesce(tags, '{}')),
    'example_conversation', example_conversation
  )))
$$;
comment on function public.create_lesson(text, text, text, text, text, integer, text, text, text, text [], jsonb) is
  'POST sophie/lessons (admin or can_edit_lessons): {lesson}. 400 for a priority outside 1-10, an unknown '
  'lesson_type or scope, a missing field; 403 for a universal lesson (platform only).';

-- The caller's client's lesson they may change.
create function private.editable_lesson(p_id uuid) returns public.lessons
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row public.lessons;
begin
  perform private.require_member();
  select l.* into v_row from public.lessons l
  where l.id = p_id and (l.client_id = private.current_client_id() or l.client_id is null);
  if v_row.id is null then
    perform private.raise_error(404, format('lesson %s not found', p_id));
  end if;
  if v_row.client_id is null then
    perform private.raise_error(403, 'universal lessons are maintained by the platform');
  end if;
  if not private.can_edit_lessons() then
    perform private.raise_error(403, 'only an admin or a member allowed to edit lessons can change lessons');
  end if;
  return v_row;
end
$$;
comment on function private.editable_lesson(uuid) is
  'The caller''s client''s lesson they may change: 404 when not visible, 403 when universal or not a lesson editor.';

-- Body of public.update_lesson (security invoker).
create function private.update_lesson(p_id uuid, p_patch jsonb) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_old public.lessons := private.editable_lesson(p_id);
  v jsonb := private.lesson_values(p_patch, true);
  v_new public.lessons;
  v_stats record;
begin
  if v ? 'scope' and v ->> 'scope' <> v_old.scope::text then
    perform private.raise_error(400, 'a lesson''s scope cannot change', jsonb_build_object('field', 'scope'));
  end if;
  if v ? 'title' and v ->> 'title' is null then
    perform private.raise_error(400, 'title must not be blank', jsonb_build_object('field', 'title'));
  end if;
  update public.lessons l set
    lesson_type = coalesce((v ->> 'lesson_type')::public.lesson_type, l.lesson_type),
    status = coalesce((v ->> 'status')::public.lesson_status, l.status),
    title = coalesce(v ->> 'title', l.title),
    description = case when v ? 'description' then v ->> 'description' else l.description end,
    trigger = case when v ? 'trigger' then v ->> 'trigger' else l.trigger end,
    correct_response = case when v ? 'correct_response' then v ->> 'correct_response' else l.correct_response end,
    incorrect_response = case when v ? 'incorrect_response' then v ->> 'incorrect_response' else l.incorrect_response end,
    reasoning = case when v ? 'reasoning' then v ->> 'reasoning' else l.reasoning end,
    tags = case when v ? 'tags' then array(select jsonb_array_elements_text(v -> 'tags')) else l.tags end,
    priority = coalesce((v ->> 'priority')::smallint, l.priority),
    example_conversation = case when v ? 'example_conversation' then v -> 'example_conversation' else l.example_conversation end
  where l.id = p_id
  returning l.* into v_new;
  select s.times_applied, s.success_rate into v_stats from private.lesson_stats(v_new.client_id) s where s.lesson_id = p_id;
  return jsonb_build_object('lesson', private.lesson_json(v_new, v_stats.times_applied, v_stats.success_rate));
end
$$;
comment on function private.update_lesson(uuid, jsonb) is 'Body of public.update_lesson (security invoker).';

-- PUT sophie/lessons/[id] (admin or can_edit_lessons).
create function public.update_lesson(id uuid, patch jsonb) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.update_lesson(id, patch)
$$;
comment on function public.update_lesson(uuid, jsonb) is
  'PUT sophie/lessons/[id] (admin or can_edit_lessons): patch any of the POST fields (and status); {lesson}.';

-- Body of public.delete_lesson.
create function private.archive_lesson(p_id uuid) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_row public.lessons := private.editable_lesson(p_id);
begin
  update public.lessons set status = 'archived' where id = p_id and status <> 'archived' returning * into v_row;
  if v_row.id is null then
    select l.* into v_row from public.lessons l where l.id = p_id;
  end if;
  return jsonb_build_object('lesson', jsonb_build_object(
    'id', v_row.id, 'status', v_row.status, 'archived_at', v_row.archived_at
  ));
end
$$;
comment on function private.archive_lesson(uuid) is 'Body of public.delete_lesson: archives, never deletes (idempotent).';

-- DELETE sophie/lessons/[id] (admin or can_edit_lessons).
create function public.delete_lesson(id uuid) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.archive_lesson(id)
$$;
comment on function public.delete_lesson(uuid) is
  'DELETE sophie/lessons/[id] (admin or can_edit_lessons): sets status archived (kept, out of prompts made live later).';

-- Storing Sophie's findings ----------------------------------------------------------------------
create function private.pattern_key(p_text text) returns text
language sql
immutable
set search_path = ''
as $$
  select nullif(left(btrim(regexp_replace(lower(coalesce(p_text, '')), '[^a-z0-9:]+', '_', 'g'), '_'), 80), '')
$$;
comment on function private.pattern_key(text) is 'Normalises a finding kind: lower-case, [a-z0-9:] runs joined by _, at most 80.';

-- Identity of a finding: subject (message, else conversation, else dataset), category, kind, text.
create function private.insight_fingerprint(
  p_subject uuid, p_category text, p_pattern_key text, p_original_text text
) returns text
language sql
immutable
set search_path = ''
as $$
  select md5(concat_ws('|', p_subject, p_category, p_pattern_key,
    regexp_replace(lower(btrim(coalesce(p_original_text, ''))), '\s+', ' ', 'g')))
$$;
comment on function private.insight_fingerprint(uuid, text, text, text) is
  'Identity of a finding: subject (message, else conversation, else dataset), category, kind and quoted text.';

-- Teachings: the disagreements Sophie must honour (active dos_donts lessons from disagree).
create function private.sophie_teachings(p_client_id uuid) returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
    'lesson_id', l.id, 'category', i.category, 'pattern_key', i.pattern_key, 'title', i.title,
    'teaching_note', l.reasoning, 'correct_approach', l.correct_response
  ) order by l.created_at), '[]'::jsonb)
  from public.lessons l
  join public.sophie_insights i on i.id = l.source_insight_id
  where l.client_id = p_client_id and l.status = 'active' and l.lesson_type = 'dos_donts'
    and i.status = 'taught_sophie'
$$;
comment on function private.sophie_teachings(uuid) is
  'What staff taught Sophie (disagreements still active): category, kind of finding and the note.';

-- Stores an analysis' findings as insights.
create function private.sophie_store_findings(
  p_analysis public.sophie_analyses, p_findings jsonb
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_stored integer;
  v_suppressed integer;
  v_total integer := jsonb_array_length(coalesce(p_findings, '[]'::jsonb));
begin
  with f as (
    select
      x.severity, x.category, x.title, x.description, x.suggestion, x.original_text, x.suggested_text,
      private.pattern_key(coalesce(x.pattern, x.title)) as pattern_key,
      -- A conversation finding may point at one of the conversation's messages.
      coalesce(
        (select m.id from public.messages m
         where x.message_id ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
           and m.id = x.message_id::uuid and m.conversation_id = p_analysis.conversation_id),
        p_analysis.message_id
      ) as message_id
    from jsonb_to_recordset(coalesce(p_findings, '[]'::jsonb)) as x(
      severity public.insight_severity, category text, title text, description text, suggestion text,
      original_text text, suggested_text text, pattern text, message_id text
    )
  ),
  allowed as (
    select f.* from f
    where not exists (
      select from public.lessons l
      join public.sophie_insights t on t.id = l.source_insight_id
      where l.client_id = p_analysis.client_id and l.status = 'active' and l.lesson_type = 'dos_donts'
        and t.status = 'taught_sophie' and t.client_id = p_analysis.client_id
        and t.category = f.category and t.pattern_key = f.pattern_key
    )
  ),
  ins as (
    insert into public.sophie_insights (
      client_id, dataset_id, lead_id, conversation_id, message_id, severity, category, title,
      description, suggestion, original_text, suggested_text, affected_leads_count, fingerprint,
      pattern_key, analysis_id
    )
    select p_analysis.client_id, p_analysis.dataset_id, p_analysis.lead_id, p_analysis.conversation_id,
      a.message_id, a.severity, a.category, left(a.title, 300), a.description, a.suggestion,
      a.original_text, a.suggested_text, 1,
      private.insight_fingerprint(coalesce(a.message_id, p_analysis.conversation_id), a.category, a.pattern_key, a.original_text),
      a.pattern_key, p_analysis.id
    from allowed a
    on conflict (client_id, fingerprint) where fingerprint is not null do nothing
    returning 1
  )
  select (select count(*) from ins), (select count(*) from f) - (select count(*) from allowed)
  into v_stored, v_suppressed;
  update public.sophie_analyses
  set findings_count = v_total, stored_count = v_stored, suppressed_count = v_suppressed,
      duplicate_count = v_total - v_stored - v_suppressed
  where id = p_analysis.id;
  return jsonb_build_object('findings', v_total, 'stored', v_stored, 'suppressed', v_suppressed,
    'duplicates', v_total - v_stored - v_suppressed);
end
$$;
comment on function private.sophie_store_findings(public.sophie_analyses, jsonb) is
  'Stores an analysis'' findings as insights: once per fingerprint, never one of a kind staff disagreed with.';

-- The one way an analysis is stored (single request or batch result).
-- p_target {message_id | conversation_id}; p_result {quality_score, summary, findings[]};
-- p_meta {via, job_id, batch_id, model, usage{...}, cost_usd, claude_calls, rejected_outputs}.
create function private.sophie_store_analysis(p_target jsonb, p_result jsonb, p_meta jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_msg public.messages;
  v_conv public.conversations;
  v_analysis public.sophie_analyses;
  v_counts jsonb;
  v_score numeric := round(least(1, greatest(0, coalesce((p_result ->> 'quality_score')::numeric, 0))), 3);
  v_worst text;
begin
  if p_target ? 'message_id' then
    select m.* into v_msg from public.messages m where m.id = (p_target ->> 'message_id')::uuid;
    if v_msg.id is null then
      return jsonb_build_object('status', 'skipped', 'reason', 'message_not_found');
    end if;
    select cv.* into v_conv from public.conversations cv where cv.id = v_msg.conversation_id;
  else
    select cv.* into v_conv from public.conversations cv where cv.id = (p_target ->> 'conversation_id')::uuid;
    if v_conv.id is null then
      return jsonb_build_object('status', 'skipped', 'reason', 'conversation_not_found');
    end if;
  end if;
  insert into public.sophie_analyses (
    client_id, scope, message_id, conversation_id, lead_id, dataset_id, via, job_id, batch_id, model,
    quality_score, summary, input_tokens, cache_creation_input_tokens, cache_read_input_tokens,
    output_tokens, cost_usd, claude_calls, rejected_outputs
  ) values (
    coalesce(v_msg.client_id, v_conv.client_id), case when v_msg.id is null then 'conversation' else 'message' end,
    v_msg.id, v_conv.id, v_conv.lead_id, v_conv.dataset_id, coalesce(p_meta ->> 'via', 'request'),
    (p_meta ->> 'job_id')::bigint, (p_meta ->> 'batch_id')::uuid, p_meta ->> 'model', v_score,
    left(p_result ->> 'summary', 2000),
    coalesce((p_meta #>> '{usage,input_tokens}')::integer, 0),
    coalesce((p_meta #>> '{usage,cache_creation_input_tokens}')::integer, 0),
    coalesce((p_meta #>> '{usage,cache_read_input_tokens}')::integer, 0),
    coalesce((p_meta #>> '{usage,output_tokens}')::integer, 0),
    coalesce((p_meta ->> 'cost_usd')::numeric, 0),
    coalesce((p_meta ->> 'claude_calls')::integer, 1),
    coalesce((p_meta ->> 'rejected_outputs')::integer, 0)
  ) returning * into v_analysis;
  v_counts := private.sophie_store_findings(v_analysis, p_result -> 'findings');

  select x.severity::text into v_worst
  from jsonb_to_recordset(coalesce(p_result -> 'findings', '[]'::jsonb)) as x(severity public.insight_severity)
  order by x.severity limit 1;
  if v_msg.id is not null then
    update public.messages
    set ai_quality_score = v_score,
        sophie_feedback = left(coalesce(p_result ->> 'summary', ''), 2000),
        sophie_feedback_status = case when v_worst in ('critical', 'urgent', 'warning') then 'issues_found'
          when v_worst is not null then 'suggestions' else 'approved' end
    where id = v_msg.id;
  else
    update public.conversations set quality_score = v_score where id = v_conv.id;
    -- A scheduled review covered the conversation up to its latest message.
    insert into private.sophie_review_cursor (conversation_id, client_id, reviewed_through)
    values (v_conv.id, v_conv.client_id, coalesce((p_target ->> 'through')::timestamptz, v_conv.last_message_at, now()))
    on conflict (conversation_id) do update
      set reviewed_through = greatest(private.sophie_review_cursor.reviewed_through, excluded.reviewed_through),
          reserved_by = null, reserved_at = null;
  end if;
  return jsonb_build_object('status', 'stored', 'analysis_id', v_analysis.id, 'quality_score', v_score) || v_counts;
end
$$;
comment on function private.sophie_store_analysis(jsonb, jsonb, jsonb) is
  'Stores one validated analysis: the analysis row (usage, cost), its insights (deduped, teachings honoured), '
  'the message''s ai_quality_score/sophie_feedback(_status) or the conversation''s quality_score.';

-- URGENT findings are their own notification event (CRITICAL ones are sophie_critical, band 03):
-- admins and managers who can see the dataset, in-app, at once.
insert into private.notification_event_types (event, audience, default_channels, description) values
  ('sophie_urgent', 'managers', array['in_app'], 'Sophie raised an URGENT finding.');

-- CRITICAL and URGENT insights notify staff at once (events sophie_critical, sophie_urgent).
create function private.notify_urgent_insights() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.notify_staff(
    n.client_id,
    case when n.severity = 'critical' then 'sophie_critical' else 'sophie_urgent' end,
    format('Sophie: %s %s issue', n.severity, n.category),
    n.title || coalesce(': ' || left(n.description, 300), ''),
    'immediate',
    '/sophie/insights/' || n.id,
    jsonb_build_object('insight_id', n.id, 'severity', n.severity, 'category', n.category,
      'lead_id', n.lead_id, 'conversation_id', n.conversation_id, 'message_id', n.message_id),
    n.dataset_id,
    n.lead_id,
    'sophie_' || n.severity || ':' || n.id
  )
  from new_rows n
  where n.severity in ('critical', 'urgent');
  return null;
end
$$;
comment on function private.notify_urgent_insights() is
  'Statement trigger: every new critical insight notifies as event sophie_critical (admins, in-app and email), '
  'every urgent one as sophie_urgent (admins and managers, in-app); immediate, once per insight.';
create trigger sophie_insights_notify_urgent after insert on public.sophie_insights
referencing new table as new_rows
for each statement execute function private.notify_urgent_insights();
revoke all on function private.notify_urgent_insights() from public, anon, authenticated;

-- Analysis jobs ------------------------------------------------------------------------------
-- Status and result of one of the caller's client's Sophie jobs (what the routes wait for).
create function private.sophie_job_json(p_job_id bigint) returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object('status', j.status, 'result', j.result, 'last_error', j.last_error,
    'attempts', j.attempts, 'max_attempts', j.max_attempts)
  from private.jobs j
  where j.id = p_job_id and j.kind in ('sophie.analyze', 'sophie.patterns')
    and j.client_id = private.current_client_id()
$$;
comment on function private.sophie_job_json(bigint) is
  'Status and result of one of the caller''s client''s Sophie jobs (what the analyze routes wait for).';

-- sophie/analyze-message: access, one unit of Sophie budget, a sophie.analyze job.
create function private.analyze_message(p_message_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_msg public.messages;
  v_job bigint;
begin
  perform private.require_member();
  -- Visibility as the messages policy: the caller's client, a dataset and lead they may see.
  select m.* into v_msg from public.messages m
  where m.id = p_message_id and m.client_id = private.current_client_id() and m.conversation_id is not null
    and (private.sees_all_datasets() or m.dataset_id = any (private.visible_dataset_ids()))
    and (not private.sees_only_assigned_leads() or m.lead_id = any (private.assigned_lead_ids()));
  if v_msg.id is null then
    perform private.raise_error(404, format('message %s not found', p_message_id));
  end if;
  if not private.can_write() then
    perform private.raise_error(403, 'read-only members cannot request analyses');
  end if;
  perform private.use_sophie_budget(v_msg.client_id);
  v_job := private.enqueue_job('sophie.analyze',
    jsonb_build_object('message_id', v_msg.id, 'requested_by', auth.uid(), 'budget_spent', true),
    now(), 'sophie.analyze:manual:' || gen_random_uuid(), v_msg.client_id, 3, 10::smallint);
  return jsonb_build_object('job_id', v_job);
end
$$;
comment on function private.analyze_message(uuid) is
  'sophie/analyze-message: checks access, spends one unit of the client''s Sophie budget (429 beyond 1,000/h) '
  'and enqueues a sophie.analyze job; returns {job_id} for the caller to wait on.';

-- POST sophie/analyze-message (enqueue only).
create function public.analyze_message(message_id uuid) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.analyze_message(message_id)
$$;
comment on function public.analyze_message(uuid) is
  'POST sophie/analyze-message (enqueue only): {job_id}. The API route of the same name waits for the findings.';

-- sophie/analyze-conversation: like analyze_message for a whole thread.
create function private.analyze_conversation(p_conversation_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_conv public.conversations;
  v_job bigint;
begin
  perform private.require_member();
  select cv.* into v_conv from public.conversations cv
  where cv.id = p_conversation_id and cv.client_id = private.current_client_id()
    and (private.sees_all_datasets() or cv.dataset_id = any (private.visible_dataset_ids()))
    and (not private.sees_only_assigned_leads() or cv.lead_id = any (private.assigned_lead_ids()));
  if v_conv.id is null then
    perform private.raise_error(404, format('conversation %s not found', p_conversation_id));
  end if;
  if not private.can_write() then
    perform private.raise_error(403, 'read-only members cannot request analyses');
  end if;
  perform private.use_sophie_budget(v_conv.client_id);
  v_job := private.enqueue_job('sophie.analyze',
    jsonb_build_object('conversation_id', v_conv.id, 'requested_by', auth.uid(), 'budget_spent', true),
    now(), 'sophie.analyze:manual:' || gen_random_uuid(), v_conv.client_id, 3, 10::smallint);
  return jsonb_build_object('job_id', v_job);
end
$$;
comment on function private.analyze_conversation(uuid) is
  'sophie/analyze-conversation: like analyze_message for a whole thread.';

-- POST sophie/analyze-conversation (enqueue only).
create function public.analyze_conversation(conversation_id uuid) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.analyze_conversation(conversation_id)
$$;
comment on function public.analyze_conversation(uuid) is
  'POST sophie/analyze-conversation (enqueue only): {job_id}. The API route of the same name waits for the findings.';

-- Automatic review: every outbound message that goes out (manual, AI, sequence) is analysed
-- once (one job per message by idempotency key), at low priority behind sends and replies.
create function private.enqueue_sophie_reviews() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    insert into private.jobs (kind, payload, client_id, priority, max_attempts, idempotency_key)
    select 'sophie.analyze', jsonb_build_object('message_id', n.id, 'auto', true), n.client_id, 200, 5,
      'sophie.analyze:message:' || n.id
    from new_rows n
    join public.clients c on c.id = n.client_id
    where n.direction = 'outbound' and n.status in ('sent', 'delivered') and n.conversation_id is not null
      and coalesce((c.settings ->> 'sophie_auto_review')::boolean, true)
    on conflict (idempotency_key) do nothing;
  else
    insert into private.jobs (kind, payload, client_id, priority, max_attempts, idempotency_key)
    select 'sophie.analyze', jsonb_build_object('message_id', n.id, 'auto', true), n.client_id, 200, 5,
      'sophie.analyze:message:' || n.id
    from new_rows n
    join old_rows o on o.id = n.id
    join public.clients c on c.id = n.client_id
    where n.direction = 'outbound' and n.status in ('sent', 'delivered') and n.conversation_id is not null
      and o.status not in ('sent', 'delivered')
      and coalesce((c.settings ->> 'sophie_auto_review')::boolean, true)
    on conflict (idempotency_key) do nothing;
  end if;
  return null;
end
$$;
comment on function private.enqueue_sophie_reviews() is
  'Statement trigger on messages: an outbound message reaching sent/delivered gets one sophie.analyze job '
  '(clients.settings.sophie_auto_review = false switches this off).';
create trigger messages_sophie_review_insert after insert on public.messages
referencing new table as new_rows
for each statement execute function private.enqueue_sophie_reviews();
create trigger messages_sophie_review_update after update on public.messages
referencing old table as old_rows new table as new_rows
for each statement execute function private.enqueue_sophie_reviews();
revoke all on function private.enqueue_sophie_reviews() from public, anon, authenticated;

-- What Sophie reads: the thread, the lead, the prompt the agent used (and its lessons), the
-- client's compliance settings and what staff taught her.
create function private.sophie_context(p_message_id uuid, p_conversation_id uuid) returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  with target as (
    select cv.id as conversation_id, m.id as message_id, m.created_at as message_at,
      m.ai_metadata ->> 'prompt_version_id' as prompt_version_id
    from public.conversations cv
    left join public.messages m on m.id = p_message_id
    where cv.id = coalesce(m.conversation_id, p_conversation_id)
  )
  select jsonb_build_object(
    'scope', case when t.message_id is null then 'conversation' else 'message' end,
    'conversation_id', cv.id,
    'message_id', t.message_id,
    'client', jsonb_build_object(
      'id', c.id, 'name', c.name, 'timezone', c.timezone,
      'anthropic_model', c.settings ->> 'anthropic_model',
      'opt_out_line', private.client_opt_out_line(c.settings),
      'company_description', c.settings ->> 'company_description',
      'compliance', coalesce(c.settings -> 'compliance', '{}'::jsonb)
    ),
    'dataset', jsonb_build_object('id', d.id, 'name', d.name, 'source', d.source),
    'lead', jsonb_build_object(
      'id', l.id, 'first_name', l.first_name, 'contact_status', l.contact_status,
      'lead_sentiment', l.lead_sentiment, 'opted_out', l.opted_out, 'call_booked', l.call_booked
    ),
    'messages', coalesce((
      select jsonb_agg(x.msg order by x.created_at, x.id)
      from (
        select m.created_at, m.id, jsonb_build_object(
          'id', m.id, 'direction', m.direction, 'category', m.message_category, 'content', m.content,
          'at', coalesce(m.received_at, m.sent_at, m.created_at), 'ai_generated', m.ai_generated,
          'prompt_version_id', m.ai_metadata ->> 'prompt_version_id'
        ) as msg
        from public.messages m
        where m.conversation_id = cv.id and m.status not in ('draft', 'canceled')
          and (t.message_at is null or m.created_at <= t.message_at)
        order by m.created_at desc, m.id desc
        limit 40
      ) x
    ), '[]'::jsonb),
    'prompt', (
      -- The version the agent wrote the message with, else the live reply prompt.
      select jsonb_build_object('id', p.id, 'prompt_type', p.prompt_type, 'version', p.version,
        'system_prompt', left(p.system_prompt, 8000), 'lessons_context', p.lessons_context)
      from public.prompts p
      where p.client_id = cv.client_id
        and (p.id::text = t.prompt_version_id or (p.prompt_type = 'reply' and p.is_active))
      order by (p.id::text = t.prompt_version_id) desc nulls last
      limit 1
    ),
    'teachings', private.sophie_teachings(cv.client_id)
  )
  from target t
  join public.conversations cv on cv.id = t.conversation_id
  join public.leads l on l.id = cv.lead_id
  join public.datasets d on d.id = cv.dataset_id
  join public.clients c on c.id = cv.client_id
$$;
comment on function private.sophie_context(uuid, uuid) is
  'Everything Sophie reads to review a message (thread up to it) or a conversation: lead, last 40 messages, '
  'the prompt version the agent used (else the live reply prompt) with its lessons, compliance settings, teachings.';

-- Worker step 1 of sophie.analyze: budget (automatic reviews wait for it) and context.
create function private.sophie_analyze_begin(p_job_id bigint, p_payload jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_client uuid;
  v_take record;
  v_msg public.messages;
  v_ctx jsonb;
begin
  if p_payload ? 'message_id' then
    select m.* into v_msg from public.messages m where m.id = (p_payload ->> 'message_id')::uuid;
    if v_msg.id is null or v_msg.conversation_id is null then
      return jsonb_build_object('action', 'skip', 'reason', 'message_not_found');
    end if;
    if coalesce((p_payload ->> 'auto')::boolean, false)
       and exists (select from public.sophie_analyses a where a.message_id = v_msg.id and a.scope = 'message') then
      return jsonb_build_object('action', 'skip', 'reason', 'already_analysed');
    end if;
    v_client := v_msg.client_id;
  else
    select cv.client_id into v_client from public.conversations cv where cv.id = (p_payload ->> 'conversation_id')::uuid;
    if v_client is null then
      return jsonb_build_object('action', 'skip', 'reason', 'conversation_not_found');
    end if;
  end if;
  -- One unit of the client's hourly budget per job (the manual routes spent theirs already).
  -- No budget: the job waits until a unit frees, it is never dropped.
  if not coalesce((p_payload ->> 'budget_spent')::boolean, false)
     and not exists (select from private.sophie_job_budget b where b.job_id = p_job_id) then
    select * into v_take from private.take_hourly_budget('sophie_analysis', v_client, 1000);
    if not v_take.allowed then
      return jsonb_build_object('action', 'defer', 'until', v_take.next_available_at, 'reason', 'sophie budget');
    end if;
    insert into private.sophie_job_budget (job_id) values (p_job_id) on conflict do nothing;
  end if;
  v_ctx := private.sophie_context((p_payload ->> 'message_id')::uuid, (p_payload ->> 'conversation_id')::uuid);
  return jsonb_build_object('action', 'analyze', 'context', v_ctx);
end
$$;
comment on function private.sophie_analyze_begin(bigint, jsonb) is
  'sophie.analyze step 1: skip (gone, or an automatic review already done), defer (no Sophie budget: retry at '
  'the time a unit frees), or analyze with the context.';

-- Scheduled review (cron/sophie-analysis, every 15 minutes) -----------------------------------
-- Reserves the conversations due for review in one batch and enqueues one sophie.batch job.
create function private.sophie_analysis_tick(p_now timestamptz default now(), p_max integer default 10000)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_batch uuid;
  v_job bigint;
  v_items jsonb;
begin
  -- One tick at a time, so two overlapping runs cannot reserve the same conversations.
  perform pg_advisory_xact_lock(hashtext('sophie_analysis_tick'));
  -- Conversations with messages since their last scheduled review and not held by a live
  -- batch (a batch that never stored its results releases them after a day). Each costs one
  -- unit of its client's hourly budget; what does not fit this hour waits for the next run.
  with due as (
    select cv.id as conversation_id, cv.client_id, cv.last_message_at,
      row_number() over (partition by cv.client_id order by cv.last_message_at, cv.id) as n
    from public.conversations cv
    join public.clients c on c.id = cv.client_id
    left join private.sophie_review_cursor rc on rc.conversation_id = cv.id
    where cv.last_message_at is not null
      and cv.last_message_at > coalesce(rc.reviewed_through, '-infinity')
      and cv.last_message_at <= p_now
      and (rc.reserved_by is null or rc.reserved_at < p_now - interval '1 day')
      and coalesce((c.settings ->> 'sophie_auto_review')::boolean, true)
  ),
  budget as (
    select d.client_id, b.remaining
    from (select distinct due.client_id from due) d
    cross join lateral private.hourly_budget('sophie_analysis', d.client_id, 1000) b
  ),
  picked as (
    select d.* from due d join budget b on b.client_id = d.client_id
    where d.n <= b.remaining
    order by d.last_message_at, d.conversation_id
    limit p_max
  )
  select jsonb_agg(jsonb_build_object(
      'custom_id', 'c' || p.k, 'client_id', p.client_id, 'conversation_id', p.conversation_id,
      'through', p.last_message_at) order by p.k)
  into v_items
  from (select picked.*, row_number() over (order by last_message_at, conversation_id) as k from picked) p;
  if v_items is null then
    return null;
  end if;
  insert into private.sophie_batches (kind, items, request_count)
  values ('analysis', v_items, jsonb_array_length(v_items))
  returning id into v_batch;
  insert into private.sophie_review_cursor (conversation_id, client_id, reserved_by, reserved_at)
  select (i ->> 'conversation_id')::uuid, (i ->> 'client_id')::uuid, v_batch, p_now
  from jsonb_array_elements(v_items) i
  on conflict (conversation_id) do update set reserved_by = excluded.reserved_by, reserved_at = excluded.reserved_at;
  insert into private.hourly_budget_uses (bucket, client_id)
  select 'sophie_analysis', (i ->> 'client_id')::uuid from jsonb_array_elements(v_items) i;
  v_job := private.enqueue_job('sophie.batch', jsonb_build_object('batch_id', v_batch), p_now,
    'sophie.batch:' || v_batch, null, 10, 150::smallint);
  update private.sophie_batches set job_id = v_job where id = v_batch;
  return v_job;
end
$$;
comment on function private.sophie_analysis_tick(timestamptz, integer) is
  'The API contract''s cron/sophie-analysis (every 15 minutes): reserves the conversations with new messages since '
  'their last review (within each client''s Sophie budget; the rest wait) in one batch and enqueues one '
  'sophie.batch job for it. Returns the job id, or null when nothing is due.';

-- sophie.batch step 1: the batch state and, before submission, each item's review context.
create function private.sophie_batch_begin(p_batch_id uuid) returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'id', b.id, 'kind', b.kind, 'status', b.status, 'anthropic_batch_id', b.anthropic_batch_id,
    'submitted_at', b.submitted_at,
    'items', case when b.status = 'preparing' and b.kind = 'analysis' then (
      select coalesce(jsonb_agg(i.item || jsonb_build_object(
        'context', private.sophie_context(null, (i.item ->> 'conversation_id')::uuid))), '[]'::jsonb)
      from jsonb_array_elements(b.items) i(item)
    ) else b.items end
  )
  from private.sophie_batches b where b.id = p_batch_id
$$;
comment on function private.sophie_batch_begin(uuid) is
  'sophie.batch step 1: the batch state, and (before submission) each item with its review context.';

-- Records the Anthropic batch id once submitted.
create function private.sophie_batch_submitted(p_batch_id uuid, p_anthropic_batch_id text, p_count integer)
returns void
language sql
security definer
set search_path = ''
as $$
  update private.sophie_batches
  set status = 'submitted', anthropic_batch_id = p_anthropic_batch_id, request_count = p_count, submitted_at = now()
  where id = p_batch_id and status = 'preparing'
$$;
comment on function private.sophie_batch_submitted(uuid, text, integer) is 'Records the Anthropic batch id once submitted.';

-- p_results: [{custom_id, status: stored|failed, result?, meta?}] - failed items (errored,
-- expired, malformed) are released so the next scheduled run reviews them again.
create function private.sophie_batch_store(p_batch_id uuid, p_results jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_batch private.sophie_batches;
  v_item jsonb;
  v_res jsonb;
  v_stored integer := 0;
  v_failed integer := 0;
  v_insights integer := 0;
  v_out jsonb;
begin
  select b.* into v_batch from private.sophie_batches b where b.id = p_batch_id for update;
  if v_batch.status = 'stored' then
    return jsonb_build_object('status', 'already_stored', 'result_counts', v_batch.result_counts);
  end if;
  for v_item in select i from jsonb_array_elements(v_batch.items) i loop
    select r into v_res from jsonb_array_elements(p_results) r where r ->> 'custom_id' = v_item ->> 'custom_id';
    if v_res ->> 'status' = 'stored' then
      v_out := private.sophie_store_analysis(
        jsonb_build_object('conversation_id', v_item ->> 'conversation_id', 'through', v_item ->> 'through'),
        v_res -> 'result',
        coalesce(v_res -> 'meta', '{}'::jsonb) || jsonb_build_object('via', 'batch', 'batch_id', p_batch_id, 'job_id', v_batch.job_id)
      );
      v_stored := v_stored + 1;
      v_insights := v_insights + coalesce((v_out ->> 'stored')::integer, 0);
    else
      update private.sophie_review_cursor set reserved_by = null, reserved_at = null
      where conversation_id = (v_item ->> 'conversation_id')::uuid and reserved_by = p_batch_id;
      v_failed := v_failed + 1;
    end if;
  end loop;
  update private.sophie_batches
  set status = 'stored', stored_at = now(),
      result_counts = jsonb_build_object('stored', v_stored, 'failed', v_failed, 'insights', v_insights)
  where id = p_batch_id;
  return jsonb_build_object('status', 'stored', 'analyses', v_stored, 'failed', v_failed, 'insights', v_insights);
end
$$;
comment on function private.sophie_batch_store(uuid, jsonb) is
  'sophie.batch last step: stores each succeeded result as an analysis; errored, expired or malformed ones '
  'are released for the next scheduled run. Idempotent (a batch is stored once).';

select private.schedule_cron('sophie-analysis', '*/15 * * * *', 'select private.sophie_analysis_tick()');

-- Pattern detection (sophie/detect-patterns and the daily cron/pattern-detection) ---------------
-- Claude names patterns and the conversations showing them; the numbers are computed here:
-- occurrences, success rate against the dataset's baseline, and a two-proportion z-test. A
-- pattern becomes an insight only when it is frequent enough and significant (p < 0.05).

-- Two-sided p-value of the pooled two-proportion z-test (x1 of n1 against x2 of n2); 1 when
-- undefined.
create function private.two_proportion_p(p_x1 integer, p_n1 integer, p_x2 integer, p_n2 integer) returns numeric
language sql
immutable
set search_path = ''
as $$
  -- Two-sided p-value of H0: the two success proportions are equal (pooled z-test).
  select case
    when p_n1 = 0 or p_n2 = 0 then 1
    when pool <= 0 or pool >= 1 then 1
    else round(least(1, greatest(0, 2 * (1 - private.normal_cdf(abs(
      (p_x1::double precision / p_n1 - p_x2::double precision / p_n2)
      / sqrt(pool * (1 - pool) * (1.0 / p_n1 + 1.0 / p_n2))
    )))))::numeric, 6)
  end
  from (select (p_x1 + p_x2)::double precision / nullif(p_n1 + p_n2, 0) as pool) x
$$;
comment on function private.two_proportion_p(integer, integer, integer, integer) is
  'Two-sided p-value of the pooled two-proportion z-test (x1 of n1 against x2 of n2); 1 when undefined.';

-- sophie/detect-patterns: access, one unit of Sophie budget, a sophie.patterns job.
create function private.request_pattern_detection(p_dataset_id uuid, p_min_occurrences integer) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_dataset public.datasets;
  v_job bigint;
begin
  perform private.require_member();
  select d.* into v_dataset from public.datasets d
  where d.id = p_dataset_id and d.client_id = private.current_client_id()
    and (private.sees_all_datasets() or d.id = any (private.visible_dataset_ids()));
  if v_dataset.id is null then
    perform private.raise_error(404, format('dataset %s not found', p_dataset_id));
  end if;
  if not private.can_write() then
    perform private.raise_error(403, 'read-only members cannot run pattern detection');
  end if;
  if coalesce(p_min_occurrences, 10) not between 2 and 100000 then
    perform private.raise_error(400, 'min_occurrences must be between 2 and 100000',
      jsonb_build_object('field', 'min_occurrences', 'value', p_min_occurrences));
  end if;
  perform private.use_sophie_budget(v_dataset.client_id);
  v_job := private.enqueue_job('sophie.patterns',
    jsonb_build_object('dataset_id', v_dataset.id, 'min_occurrences', coalesce(p_min_occurrences, 10),
      'requested_by', auth.uid()),
    now(), 'sophie.patterns:manual:' || gen_random_uuid(), v_dataset.client_id, 3, 10::smallint);
  return jsonb_build_object('job_id', v_job);
end
$$;
comment on function private.request_pattern_detection(uuid, integer) is
  'sophie/detect-patterns: checks access, spends one Sophie budget unit and enqueues a sophie.patterns job.';

-- POST sophie/detect-patterns (enqueue only).
create function public.detect_patterns(dataset_id uuid, min_occurrences integer default 10) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.request_pattern_detection(dataset_id, min_occurrences)
$$;
comment on function public.detect_patterns(uuid, integer) is
  'POST sophie/detect-patterns (enqueue only): {job_id}. The API route of the same name waits for {patterns}.';

-- The conversations of a dataset (optionally since a time), grouped by outcome, with a short
-- transcript each: what the pattern prompt reads.
create function private.sophie_patterns_begin(p_payload jsonb) returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'dataset', (select jsonb_build_object('id', d.id, 'name', d.name, 'client_id', d.client_id,
      'anthropic_model', c.settings ->> 'anthropic_model')
      from public.datasets d join public.clients c on c.id = d.client_id
      where d.id = (p_payload ->> 'dataset_id')::uuid),
    'conversations', coalesce(jsonb_agg(jsonb_build_object(
      'id', cv.id,
      'outcome', case
        when exists (select from private.lead_outcomes o where o.lead_id = cv.lead_id) or l.call_booked
          or l.contact_status in ('CALL_BOOKED', 'CONVERTED') then 'booked'
        when l.opted_out or l.contact_status = 'OPTED_OUT' then 'opted_out'
        else 'cold' end,
      'messages', (
        select coalesce(jsonb_agg(jsonb_build_object('from', case when x.direction = 'outbound' then 'agent' else 'lead' end,
          'text', left(x.content, 300)) order by x.created_at, x.id), '[]'::jsonb)
        from (
          select m.direction, m.content, m.created_at, m.id from public.messages m
          where m.conversation_id = cv.id and m.status not in ('draft', 'canceled')
          order by m.created_at, m.id limit 12
        ) x
      )
    ) order by cv.id), '[]'::jsonb)
  )
  from public.conversations cv
  join public.leads l on l.id = cv.lead_id
  where cv.dataset_id = (p_payload ->> 'dataset_id')::uuid
    and cv.message_count > 0
    and (p_payload ->> 'since' is null or cv.last_message_at >= (p_payload ->> 'since')::timestamptz)
$$;
comment on function private.sophie_patterns_begin(jsonb) is
  'sophie.patterns step 1: the dataset''s conversations (since payload.since) with outcome booked | cold | '
  'opted_out and up to 12 messages of 300 characters each.';

-- The pattern batch a sophie.patterns job submitted, if any.
create function private.sophie_patterns_state(p_job_id bigint) returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object('id', b.id, 'status', b.status, 'anthropic_batch_id', b.anthropic_batch_id,
    'items', b.items, 'submitted_at', b.submitted_at, 'result_counts', b.result_counts)
  from private.sophie_batches b where b.job_id = p_job_id and b.kind = 'patterns'
$$;
comment on function private.sophie_patterns_state(bigint) is 'The pattern batch a sophie.patterns job submitted, if any.';

-- Records the Anthropic batch a sophie.patterns job submitted (one per job).
create function private.sophie_patterns_submitted(p_job_id bigint, p_anthropic_batch_id text, p_items jsonb)
returns uuid
language sql
security definer
set search_path = ''
as $$
  insert into private.sophie_batches (kind, job_id, anthropic_batch_id, status, items, request_count, submitted_at)
  values ('patterns', p_job_id, p_anthropic_batch_id, 'submitted', p_items, jsonb_array_length(p_items), now())
  on conflict (job_id) do update set anthropic_batch_id = excluded.anthropic_batch_id
  returning id
$$;
comment on function private.sophie_patterns_submitted(bigint, text, jsonb) is
  'Records the Anthropic batch a sophie.patterns job submitted (one per job).';

-- Forgets a pattern job's batch, so its next attempt submits every chunk again.
create function private.sophie_patterns_reset(p_job_id bigint) returns void
language sql
security definer
set search_path = ''
as $$
  delete from private.sophie_batches where job_id = p_job_id and kind = 'patterns' and status = 'submitted'
$$;
comment on function private.sophie_patterns_reset(bigint) is
  'Forgets a sophie.patterns job''s submitted batch (some chunks failed or came back malformed): the retry '
  'submits every chunk again, so no pattern is counted from part of the conversations.';

-- p_patterns: [{pattern_key, pattern_description, conversation_ids[], suggested_lesson}] merged
-- over every chunk by pattern_key. Returns the API contract's {patterns: [...]}.
create function private.sophie_store_patterns(p_job_id bigint, p_payload jsonb, p_patterns jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_dataset public.datasets;
  v_min integer := coalesce((p_payload ->> 'min_occurrences')::integer, 10);
  v_since timestamptz := (p_payload ->> 'since')::timestamptz;
  v_out jsonb;
begin
  select d.* into v_dataset from public.datasets d where d.id = (p_payload ->> 'dataset_id')::uuid;
  if v_dataset.id is null then
    return jsonb_build_object('patterns', '[]'::jsonb);
  end if;
  -- The job may run its last step twice (a crash after storing): store once per job.
  if exists (select from public.sophie_patterns sp where sp.job_id = p_job_id) then
    select jsonb_build_object('patterns', coalesce(jsonb_agg(jsonb_build_object(
      'pattern_description', sp.pattern_description, 'occurrences', sp.occurrences,
      'success_rate', sp.success_rate, 'recommended_action', sp.recommended_action,
      'suggested_lesson', sp.suggested_lesson, 'baseline_rate', sp.baseline_rate, 'p_value', sp.p_value,
      'significant', sp.significant, 'pattern_id', sp.id) order by sp.occurrences desc, sp.pattern_key), '[]'::jsonb))
    into v_out from public.sophie_patterns sp where sp.job_id = p_job_id;
    return v_out;
  end if;
  with convs as (
    select cv.id, (exists (select from private.lead_outcomes o where o.lead_id = cv.lead_id) or l.call_booked
      or l.contact_status in ('CALL_BOOKED', 'CONVERTED')) as success
    from public.conversations cv join public.leads l on l.id = cv.lead_id
    where cv.dataset_id = v_dataset.id and cv.message_count > 0
      and (v_since is null or cv.last_message_at >= v_since)
  ),
  base as (select count(*)::integer as n, count(*) filter (where success)::integer as x from convs),
  raw as (
    select private.pattern_key(coalesce(p ->> 'pattern_key', p ->> 'pattern_description')) as pattern_key,
      p ->> 'pattern_description' as description, p ->> 'suggested_lesson' as suggested_lesson, c.cid
    from jsonb_array_elements(coalesce(p_patterns, '[]'::jsonb)) p
    cross join lateral jsonb_array_elements_text(coalesce(p -> 'conversation_ids', '[]'::jsonb)) c(cid)
  ),
  merged as (
    select r.pattern_key, min(r.description) as description, min(r.suggested_lesson) as suggested_lesson,
      count(distinct cv.id)::integer as n1, count(distinct cv.id) filter (where cv.success)::integer as x1
    from raw r
    join convs cv on cv.id::text = r.cid
    where r.pattern_key is not null
    group by r.pattern_key
  ),
  scored as (
    select m.*, b.n, b.x,
      private.two_proportion_p(m.x1, m.n1, b.x - m.x1, b.n - m.n1) as p_value
    from merged m cross join base b
  ),
  ins as (
    insert into public.sophie_patterns (
      client_id, dataset_id, job_id, pattern_key, pattern_description, suggested_lesson, occurrences,
      successes, success_rate, baseline_rate, conversations_analysed, p_value, recommended_action,
      significant, window_start
    )
    select v_dataset.client_id, v_dataset.id, p_job_id, s.pattern_key, left(coalesce(s.description, s.pattern_key), 1000),
      left(s.suggested_lesson, 2000), s.n1, s.x1, round(s.x1::numeric / nullif(s.n1, 0), 4),
      coalesce(round(s.x::numeric / nullif(s.n, 0), 4), 0), s.n, s.p_value,
      case when s.n1 >= v_min and s.p_value < 0.05 then
        case when s.x1::numeric / s.n1 > (s.x - s.x1)::numeric / nullif(s.n - s.n1, 0) then 'adopt' else 'avoid' end
      else 'test_more' end,
      s.n1 >= v_min and s.p_value < 0.05, v_since
    from scored s where s.n1 > 0
    returning *
  ),
  insights as (
    insert into public.sophie_insights (
      client_id, dataset_id, severity, category, title, description, suggestion, affected_leads_count,
      fingerprint, pattern_key, pattern_id, p_value
    )
    select i.client_id, i.dataset_id,
      case when i.recommended_action = 'adopt' then 'suggestion' else 'warning' end::public.insight_severity,
      'strategy',
      left(case when i.recommended_action = 'adopt' then 'Works well: ' else 'Hurts bookings: ' end || i.pattern_description, 300),
      format('%s of %s conversations show this; %s%% of them booked against %s%% for the rest of the dataset (p = %s).',
        i.occurrences, i.conversations_analysed, round(i.success_rate * 100, 1),
        round(((i.conversations_analysed * i.baseline_rate - i.successes) / nullif(i.conversations_analysed - i.occurrences, 0)) * 100, 1),
        i.p_value),
      i.suggested_lesson, i.occurrences,
      private.insight_fingerprint(i.dataset_id, 'strategy', 'pattern:' || i.pattern_key || ':' || i.recommended_action, null),
      'pattern:' || i.pattern_key, i.id, i.p_value
    from ins i where i.significant
    on conflict (client_id, fingerprint) where fingerprint is not null do nothing
    returning 1
  )
  select jsonb_build_object('patterns', coalesce(jsonb_agg(jsonb_build_object(
    'pattern_description', i.pattern_description, 'occurrences', i.occurrences,
    'success_rate', i.success_rate, 'recommended_action', i.recommended_action,
    'suggested_lesson', i.suggested_lesson, 'baseline_rate', i.baseline_rate, 'p_value', i.p_value,
    'significant', i.significant, 'pattern_id', i.id) order by i.occurrences desc, i.pattern_key), '[]'::jsonb))
    || jsonb_build_object('insights_created', (select count(*) from insights))
  into v_out
  from ins i;
  update private.sophie_batches set status = 'stored', stored_at = now() where job_id = p_job_id and kind = 'patterns';
  return v_out;
end
$$;
comment on function private.sophie_store_patterns(bigint, jsonb, jsonb) is
  'sophie.patterns last step: merges Claude''s patterns by key, computes occurrences, success rate, baseline '
  'and the two-proportion p-value, stores them, raises an insight for each significant one (>= min_occurrences, '
  'p < 0.05; adopt or avoid), and returns the API contract''s {patterns}. Stored once per job.';

-- Daily at 3 am in each client's time zone: the last 7 days of every dataset with activity.
create function private.sophie_pattern_tick(p_now timestamptz default now()) returns integer
language sql
security definer
set search_path = ''
as $$
  with due as (
    select d.id as dataset_id, d.client_id, (p_now at time zone c.timezone)::date as local_day
    from public.datasets d
    join public.clients c on c.id = d.client_id
    where extract(hour from p_now at time zone c.timezone) = 3
      and coalesce((c.settings ->> 'sophie_auto_review')::boolean, true)
      and exists (
        select from public.conversations cv
        where cv.dataset_id = d.id and cv.last_message_at >= p_now - interval '7 days'
      )
  ),
  queued as (
    insert into private.jobs (kind, payload, client_id, priority, max_attempts, idempotency_key)
    select 'sophie.patterns',
      jsonb_build_object('dataset_id', du.dataset_id, 'min_occurrences', 10, 'since', p_now - interval '7 days',
        'scheduled', true),
      du.client_id, 180, 5, 'sophie.patterns:' || du.dataset_id || ':' || du.local_day
    from due du
    on conflict (idempotency_key) do nothing
    returning 1
  )
  select count(*)::integer from queued
$$;
comment on function private.sophie_pattern_tick(timestamptz) is
  'The API contract''s cron/pattern-detection: hourly, enqueues one sophie.patterns job (last 7 days) per active '
  'dataset of every client for which it is now 3 am locally; once per dataset and local day.';

select private.schedule_cron('sophie-pattern-detection', '0 * * * *', 'select private.sophie_pattern_tick()');

-- Grants -----------------------------------------------------------------------------------------
revoke all on function
  private.attribution_window(uuid), private.lesson_stats(uuid, timestamptz, timestamptz),
  private.insight_json(public.sophie_insights), private.lesson_json(public.lessons, integer, numeric),
  private.parse_enum(text, text, text []), private.get_insights(text, text, text, uuid, integer),
  public.get_insights(text, text, text, uuid, integer), private.visible_insight(uuid, boolean),
  private.require_open_insight(public.sophie_insights),
  private.close_insight(uuid, public.insight_status, text, uuid), private.get_insight(uuid), public.get_insight(uuid),
  private.lesson_type_for(text), private.agree_insight(uuid, text, text, integer),
  public.agree_insight(uuid, text, text, integer), private.disagree_insight(uuid, text, text),
  public.disagree_insight(uuid, text, text), private.dismiss_insight(uuid, text), public.dismiss_insight(uuid, text),
  private.list_lessons(text, text, text, text, text [], text), public.list_lessons(text, text, text, text, text [], text),
  private.lesson_values(jsonb, boolean), private.create_lesson(jsonb),
  public.create_lesson(text, text, text, text, text, integer, text, text, text, text [], jsonb),
  private.editable_lesson(uuid), private.update_lesson(uuid, jsonb), public.update_lesson(uuid, jsonb),
  private.archive_lesson(uuid), public.delete_lesson(uuid),
  private.pattern_key(text), private.insight_fingerprint(uuid, text, text, text), private.sophie_teachings(uuid),
  private.sophie_store_findings(public.sophie_analyses, jsonb), private.sophie_store_analysis(jsonb, jsonb, jsonb),
  private.sophie_job_json(bigint), private.analyze_message(uuid), public.analyze_message(uuid),
  private.analyze_conversation(uuid), public.analyze_conversation(uuid), private.sophie_context(uuid, uuid),
  private.sophie_analyze_begin(bigint, jsonb), private.sophie_analysis_tick(timestamptz, integer),
  private.sophie_batch_begin(uuid), private.sophie_batch_submitted(uuid, text, integer),
  private.sophie_batch_store(uuid, jsonb),
  private.two_proportion_p(integer, integer, integer, integer), private.request_pattern_detection(uuid, integer),
  public.detect_patterns(uuid, integer), private.sophie_patterns_begin(jsonb), private.sophie_patterns_state(bigint),
  private.sophie_patterns_submitted(bigint, text, jsonb), private.sophie_store_patterns(bigint, jsonb, jsonb),
  private.sophie_pattern_tick(timestamptz), private.sophie_patterns_reset(bigint)
from public, anon;

-- Routes (the caller's role; each body checks membership and permission itself).
grant execute on function
  private.insight_json(public.sophie_insights), private.lesson_json(public.lessons, integer, numeric),
  private.parse_enum(text, text, text []), private.get_insights(text, text, text, uuid, integer),
  public.get_insights(text, text, text, uuid, integer), private.visible_insight(uuid, boolean),
  private.require_open_insight(public.sophie_insights), private.get_insight(uuid), public.get_insight(uuid),
  private.agree_insight(uuid, text, text, integer), public.agree_insight(uuid, text, text, integer),
  private.disagree_insight(uuid, text, text), public.disagree_insight(uuid, text, text),
  private.dismiss_insight(uuid, text), public.dismiss_insight(uuid, text),
  private.list_lessons(text, text, text, text, text [], text), public.list_lessons(text, text, text, text, text [], text),
  private.lesson_values(jsonb, boolean), private.create_lesson(jsonb),
  public.create_lesson(text, text, text, text, text, integer, text, text, text, text [], jsonb),
  private.editable_lesson(uuid), private.update_lesson(uuid, jsonb), public.update_lesson(uuid, jsonb),
  private.archive_lesson(uuid), public.delete_lesson(uuid),
  private.sophie_job_json(bigint), private.analyze_message(uuid), public.analyze_message(uuid),
  private.analyze_conversation(uuid), public.analyze_conversation(uuid),
  private.request_pattern_detection(uuid, integer), public.detect_patterns(uuid, integer)
to authenticated, service_role;
-- list_lessons joins lesson_stats for the caller's own client only (security invoker body).
grant execute on function private.lesson_stats(uuid, timestamptz, timestamptz) to authenticated, service_role;
grant execute on function private.attribution_window(uuid) to authenticated, service_role;
-- Workers only.
grant execute on function
  private.close_insight(uuid, public.insight_status, text, uuid), private.lesson_type_for(text),
  private.pattern_key(text), private.insight_fingerprint(uuid, text, text, text), private.sophie_teachings(uuid),
  private.sophie_store_findings(public.sophie_analyses, jsonb), private.sophie_store_analysis(jsonb, jsonb, jsonb),
  private.sophie_context(uuid, uuid), private.sophie_analyze_begin(bigint, jsonb),
  private.sophie_analysis_tick(timestamptz, integer), private.sophie_batch_begin(uuid),
  private.sophie_batch_submitted(uuid, text, integer), private.sophie_batch_store(uuid, jsonb),
  private.two_proportion_p(integer, integer, integer, integer),
  private.sophie_patterns_begin(jsonb), private.sophie_patterns_state(bigint),
  private.sophie_patterns_submitted(bigint, text, jsonb), private.sophie_store_patterns(bigint, jsonb, jsonb),
  private.sophie_pattern_tick(timestamptz), private.sophie_patterns_reset(bigint)
to service_role;
