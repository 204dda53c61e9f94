-- Versioned prompts per client and type. A version is immutable once written; making a prompt
-- live writes a new version (the pending edit or the current base, plus the active lessons),
-- activates it and keeps every earlier version as history.

create type public.prompt_type as enum ('master', 'm1', 'm2', 'm3', 'reply');

create table public.prompts (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null references public.clients (id) on delete cascade,
  prompt_type public.prompt_type not null,
  name text not null check (length(trim(name)) between 1 and 200),
  system_prompt text not null check (length(system_prompt) between 1 and 60000),
  user_prompt_template text not null default '' check (length(user_prompt_template) <= 20000),
  includes_lessons boolean not null default true,
  lessons_context text not null default '',
  lesson_ids uuid [] not null default '{}',
  version integer not null check (version >= 1),
  is_active boolean not null default false,
  pushed_to_live boolean not null default false,
  made_live_at timestamptz,
  created_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  unique (client_id, prompt_type, version)
);
comment on table public.prompts is
  'Every version of every prompt of a client. Exactly one version per (client, type) is active.';
comment on column public.prompts.lessons_context is
  'The lessons text injected into this version when it was made live (generated from active lessons).';
comment on column public.prompts.lesson_ids is 'The lessons included in lessons_context, in prompt order.';
comment on column public.prompts.pushed_to_live is 'True for every version that was made live at some point.';
create unique index prompts_one_active_idx on public.prompts (client_id, prompt_type) where is_active;
create index prompts_created_by_idx on public.prompts (created_by) where created_by is not null;

create table public.prompt_edits (
  client_id uuid not null references public.clients (id) on delete cascade,
  prompt_type public.prompt_type not null,
  system_prompt text not null check (length(system_prompt) between 1 and 60000),
  user_prompt_template text check (length(user_prompt_template) <= 20000),
  based_on_version integer,
  edited_by uuid default auth.uid() references auth.users (id) on delete set null,
  edited_at timestamptz not null default now(),
  primary key (client_id, prompt_type)
);
comment on table public.prompt_edits is
  'The unpublished edit of a prompt type (one per client and type); it becomes a version on make-live.';
comment on column public.prompt_edits.user_prompt_template is 'Null keeps the live version''s template.';
create index prompt_edits_edited_by_idx on public.prompt_edits (edited_by) where edited_by is not null;
comment on column public.prompt_edits.edited_by is 'Who last wrote the edit: set by the server (trigger), never by the client.';
comment on column public.prompt_edits.edited_at is 'When the edit was last written: set by the server (trigger).';

-- The audit columns are the server's: whatever an insert or update says, they become the
-- caller and the statement's time (the columns are not granted to authenticated either).
create function private.stamp_prompt_edit() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.edited_by := auth.uid();
  new.edited_at := now();
  return new;
end
$$;
comment on function private.stamp_prompt_edit() is
  'Trigger: prompt_edits.edited_by/edited_at are the writing user and now(), never client-supplied.';
revoke all on function private.stamp_prompt_edit() from public, anon, authenticated;
create trigger prompt_edits_stamp before insert or update on public.prompt_edits
for each row execute function private.stamp_prompt_edit();

alter table public.prompts enable row level security;
alter table public.prompt_edits enable row level security;

create policy "members read their client's prompts" on public.prompts
  for select to authenticated
  using (client_id = (select private.current_client_id()));

create policy "prompt publishers read pending edits" on public.prompt_edits
  for select to authenticated
  using (client_id = (select private.current_client_id()) and (select private.can_push_to_live()));
create policy "admins write pending edits" on public.prompt_edits
  for insert to authenticated
  with check (client_id = (select private.current_client_id()) and (select private.is_admin()));
create policy "admins change pending edits" on public.prompt_edits
  for update to authenticated
  using (client_id = (select private.current_client_id()) and (select private.is_admin()))
  with check (client_id = (select private.current_client_id()));
create policy "admins discard pending edits" on public.prompt_edits
  for delete to authenticated
  using (client_id = (select private.current_client_id()) and (select private.is_admin()));

revoke all on public.prompts, public.prompt_edits from anon, authenticated;
grant select on public.prompts to authenticated;
grant select, delete on public.prompt_edits to authenticated;
grant insert (client_id, prompt_type, system_prompt, user_prompt_template, based_on_version)
  on public.prompt_edits to authenticated;
grant update (system_prompt, user_prompt_template, based_on_version)
  on public.prompt_edits to authenticated;
grant all on public.prompts, public.prompt_edits to service_role;

-- Lessons rendering -----------------------------------------------------------------------

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

-- RPCs ------------------------------------------------------------------------------------

create function private.parse_prompt_type(p_type text) returns public.prompt_type
language plpgsql
immutable
set search_path = ''
as $$
begin
  if p_type is null or not (p_type = any (enum_range(null::public.prompt_type)::text [])) then
    perform private.raise_error(400, format('unknown prompt type %s', coalesce(p_type, 'null')),
      jsonb_build_object('hint', 'Use one of master, m1, m2, m3, reply.'));
  end if;
  return p_type::public.prompt_type;
end
$$;

create function private.get_prompt(p_type text) returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_type public.prompt_type := private.parse_prompt_type(p_type);
  v_prompt public.prompts;
  v_using integer;
  v_booked integer;
begin
  select p.* into v_prompt from public.prompts p
  where p.client_id = private.current_client_id() and p.prompt_type = v_type and p.is_active;
  if not found then
    perform private.raise_error(404, format('no live %s prompt', v_type));
  end if;
  -- Success = conversations answered with this version whose lead booked a call.
  select count(*), count(*) filter (where l.call_booked)
  into v_using, v_booked
  from (
    select distinct m.conversation_id, m.lead_id from public.messages m
    where m.client_id = v_prompt.client_id and m.ai_generated
      and m.ai_metadata ->> 'prompt_version_id' = v_prompt.id::text
  ) c
  join public.leads l on l.id = c.lead_id;
  return jsonb_build_object(
    'prompt', jsonb_build_object(
      'id', v_prompt.id, 'name', v_prompt.name, 'prompt_type', v_prompt.prompt_type,
      'system_prompt', v_prompt.system_prompt, 'user_prompt_template', v_prompt.user_prompt_template,
      'includes_lessons', v_prompt.includes_lessons, 'lessons_context', v_prompt.lessons_context,
      'version', v_prompt.version, 'is_active', v_prompt.is_active,
      'pushed_to_live', v_prompt.pushed_to_live, 'created_at', v_prompt.created_at
    ),
    'lessons_included', cardinality(v_prompt.lesson_ids),
    'performance', jsonb_build_object(
      'conversations_using', v_using,
      'success_rate', case when v_using > 0 then round(v_booked::numeric / v_using, 4) else 0 end
    )
  );
end
$$;
comment on function private.get_prompt(text) is 'Body of public.get_prompt (security invoker).';

create function public.get_prompt(type text) returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.get_prompt(type)
$$;
comment on function public.get_prompt(text) is
  'GET sophie/prompts/[type]: the live prompt of a type, its lesson count and booking performance.';

create function private.update_prompt(
  p_type text, p_system_prompt text, p_user_prompt_template text default null
) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_type public.prompt_type := private.parse_prompt_type(p_type);
  v_client uuid := private.current_client_id();
  v_edit public.prompt_edits;
begin
  if v_client is null or not private.is_admin() then
    perform private.raise_error(403, 'only an admin can edit prompts');
  end if;
  if p_system_prompt is null or length(trim(p_system_prompt)) = 0 then
    perform private.raise_error(400, 'system_prompt is required');
  end if;
  insert into public.prompt_edits as e (client_id, prompt_type, system_prompt, user_prompt_template, based_on_version)
  values (
    v_client, v_type, p_system_prompt, p_user_prompt_template,
    (select p.version from public.prompts p where p.client_id = v_client and p.prompt_type = v_type and p.is_active)
  )
  on conflict (client_id, prompt_type) do update
    set system_prompt = excluded.system_prompt,
        user_prompt_template = excluded.user_prompt_template,
        based_on_version = excluded.based_on_version
  returning e.* into v_edit;
  return jsonb_build_object(
    'prompt_edit', jsonb_build_object(
      'prompt_type', v_edit.prompt_type, 'system_prompt', v_edit.system_prompt,
      'user_prompt_template', v_edit.user_prompt_template, 'based_on_version', v_edit.based_on_version,
      'edited_at', v_edit.edited_at, 'is_live', false
    )
  );
end
$$;
comment on function private.update_prompt(text, text, text) is 'Body of public.update_prompt (security invoker).';

create function public.update_prompt(
  type text, system_prompt text, user_prompt_template text default null
) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.update_prompt(type, system_prompt, user_prompt_template)
$$;
comment on function public.update_prompt(text, text, text) is
  'PUT sophie/prompts/[type] (admin only): stores the edit unpublished; make_prompt_live publishes it.';

create function private.make_prompt_live(p_type text) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_type public.prompt_type := private.parse_prompt_type(p_type);
  v_client uuid := private.current_client_id();
  v_old public.prompts;
  v_edit public.prompt_edits;
  v_new public.prompts;
  v_lessons record;
begin
  if v_client is null or not private.can_push_to_live() then
    perform private.raise_error(403, 'only an admin or a member allowed to push to live can make a prompt live');
  end if;
  -- One publisher at a time per prompt type: versions are numbered without gaps or duplicates.
  select p.* into v_old from public.prompts p
  where p.client_id = v_client and p.prompt_type = v_type and p.is_active
  for update;
  if not found then
    perform private.raise_error(404, format('no live %s prompt to start from', v_type));
  end if;
  select e.* into v_edit from public.prompt_edits e where e.client_id = v_client and e.prompt_type = v_type;
  if v_old.includes_lessons then
    select r.context, r.lesson_ids into v_lessons from private.render_lessons(v_client) r;
  else
    select ''::text as context, '{}'::uuid [] as lesson_ids into v_lessons;
  end if;

  update public.prompts set is_active = false where id = v_old.id;
  insert into public.prompts (
    client_id, prompt_type, name, system_prompt, user_prompt_template, includes_lessons, lessons_context,
    lesson_ids, version, is_active, pushed_to_live, made_live_at, created_by
  )
  values (
    v_client, v_type, v_old.name, coalesce(v_edit.system_prompt, v_old.system_prompt),
    coalesce(v_edit.user_prompt_template, v_old.user_prompt_template), v_old.includes_lessons,
    v_lessons.context, v_lessons.lesson_ids,
    (select max(p.version) + 1 from public.prompts p where p.client_id = v_client and p.prompt_type = v_type),
    true, true, now(), auth.uid()
  )
  returning * into v_new;
  delete from public.prompt_edits e where e.client_id = v_client and e.prompt_type = v_type;

  return jsonb_build_object(
    'prompt', jsonb_build_object(
      'id', v_new.id, 'version', v_new.version, 'is_active', true,
      'lessons_included', cardinality(v_new.lesson_ids), 'made_live_at', v_new.made_live_at
    ),
    'changes_from_previous', jsonb_build_object(
      'lessons_added', to_jsonb(array(
        select x from unnest(v_new.lesson_ids) x where not (x = any (v_old.lesson_ids))
      )),
      'lessons_removed', to_jsonb(array(
        select x from unnest(v_old.lesson_ids) x where not (x = any (v_new.lesson_ids))
      )),
      'base_prompt_changed', (v_new.system_prompt, v_new.user_prompt_template)
      is distinct from (v_old.system_prompt, v_old.user_prompt_template)
    )
  );
end
$$;
comment on function private.make_prompt_live(text) is
  'Publishes the caller''s client''s prompt of a type: pending edit (or current base) plus active lessons '
  'becomes a new active version; earlier versions stay as history. Admin or can_push_to_live only.';

create function public.make_prompt_live(type text) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.make_prompt_live(type)
$$;
comment on function public.make_prompt_live(text) is
  'POST sophie/prompts/[type]/make-live: see private.make_prompt_live.';

revoke all on function private.render_lessons(uuid), private.parse_prompt_type(text),
  private.make_prompt_live(text), public.get_prompt(text), public.update_prompt(text, text, text),
  public.make_prompt_live(text), private.get_prompt(text), private.update_prompt(text, text, text)
from public, anon;
grant execute on function private.parse_prompt_type(text), private.make_prompt_live(text),
  private.get_prompt(text), private.update_prompt(text, text, text),
  public.get_prompt(text), public.update_prompt(text, text, text), public.make_prompt_live(text)
to authenticated, service_role;
grant execute on function private.render_lessons(uuid) to service_role;
