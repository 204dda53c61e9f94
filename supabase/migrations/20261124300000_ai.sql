-- AI: the reactivation agent's prompts, modes, replies and drafts.
--   * versioned prompts per client and type (an immutable version; making a prompt live
--     writes a new one with the active lessons) and the default prompts every client gets;
--   * AI modes (conversation -> dataset -> client -> auto; manual mode is off) and the
--     consecutive-message safeguard that hands a thread to a person;
--   * the AI as the second opt-out layer (ai.classify_opt_out when no reply is generated);
--   * replies: the worker reads the context, calls Claude outside any transaction and commits
--     through one function that re-checks everything under the lead's row lock;
--   * drafts for staff (ai-generate, ai-send).
-- Lessons (31 sophie) come after this band: make_prompt_live calls private.render_lessons and
-- ai_send_message credits lessons; both are plpgsql, which resolves them when they run. The
-- permission helper can_push_to_live (prompts policy) is a tenancy helper (01).

-- prompts ---------------------------------------------------------------------------------
-- Versioned prompts per client and type. A version is immutable once written; making a prompt
-- live writes a new version (the pending edit or the current base, plus the active lessons),
-- activates it and keeps every earlier version as history.

create type public.prompt_type as enum ('master', 'm1', 'm2', 'm3', 'reply');
comment on type public.prompt_type is 'The prompts of a client: master, the M1/M2/M3 templates and reply.';

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

-- Members read every prompt version of their client.
create policy "members read their client's prompts" on public.prompts
  for select to authenticated
  using (client_id = (select private.current_client_id()));

-- Admins and members allowed to make prompts live read the unpublished edits.
create policy "prompt publishers read pending edits" on public.prompt_edits
  for select to authenticated
  using (client_id = (select private.current_client_id()) and (select private.can_push_to_live()));
-- Admins write an unpublished prompt edit.
create policy "admins write pending edits" on public.prompt_edits
  for insert to authenticated
  with check (client_id = (select private.current_client_id()) and (select private.is_admin()));
-- Admins change an unpublished prompt edit.
create policy "admins change pending edits" on public.prompt_edits
  for update to authenticated
  using (client_id = (select private.current_client_id()) and (select private.is_admin()))
  with check (client_id = (select private.current_client_id()));
-- Admins discard an unpublished prompt edit.
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

-- RPCs ------------------------------------------------------------------------------------

-- The prompt type named by a route; 400 listing the types when unknown.
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
comment on function private.parse_prompt_type(text) is
  'The prompt type named by a route; 400 listing the types when unknown.';

-- Body of public.get_prompt (security invoker).
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

-- GET sophie/prompts/[type]: the live prompt of a type, its lesson count and booking performance.
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

-- Body of public.update_prompt (security invoker).
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

-- PUT sophie/prompts/[type] (admin only): stores the edit unpublished; make_prompt_live publishes
-- it.
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

-- Publishes the caller's client's prompt of a type: pending edit (or current base) plus active
-- lessons becomes a new active version; earlier versions stay as history.
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

-- POST sophie/prompts/[type]/make-live: see private.make_prompt_live.
create function public.make_prompt_live(type text) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.make_prompt_live(type)
$$;
comment on function public.make_prompt_live(text) is
  'POST sophie/prompts/[type]/make-live: see private.make_prompt_live.';

revoke all on function private.parse_prompt_type(text),
  private.make_prompt_live(text), public.get_prompt(text), public.update_prompt(text, text, text),
  public.make_prompt_live(text), private.get_prompt(text), private.update_prompt(text, text, text)
from public, anon;
grant execute on function private.parse_prompt_type(text), private.make_prompt_live(text),
  private.get_prompt(text), private.update_prompt(text, text, text),
  public.get_prompt(text), public.update_prompt(text, text, text), public.make_prompt_live(text)
to authenticated, service_role;

-- default prompts -------------------------------------------------------------------------
-- Default prompts for a reactivation agent: version 1 of every prompt type, given to each
-- client when it is created (trigger) and to the clients that exist already.

-- Gives a client version 1 of every prompt type it does not have yet (idempotent).
create function private.default_prompt(
  p_type public.prompt_type, out name text, out system_prompt text, out user_prompt_template text
)
language sql
immutable
set search_path = ''
as $fn$
  select d.name, d.system_prompt, d.user_prompt_template
  from (values
    ('master'::public.prompt_type, 'Master agent prompt', $p$You are the SMS assistant of the business named in the
company facts below. You text people who enquired with the business some time ago and then went quiet: the goal of
every conversation is to restart it politely and, where the person is still interested, book a short call with the team.

Who you are talking to
- Real people who once asked about the business's service. Many have forgotten the enquiry; some have already solved
  their problem; a few are still looking. Treat each of them as a neighbour, not a target.
- They read your message on a phone, often between other things. Every message must make sense on its own.

How you write
- Plain, warm, British English unless the lead writes in another language (then answer in theirs).
- One idea per message. Usually one or two short sentences, never more than 300 characters.
- Use the lead's first name at most once every few messages. No emojis unless the lead uses them first.
- Never use hype ("amazing offer", "limited time"), pressure, guilt or fake urgency.
- Never pretend to be a human if asked directly: say you are the business's assistant and a person can take over.
- Never invent facts: prices, availability, guarantees, names of staff or anything not in the facts you were given.
  If you do not know, say a member of the team will confirm.

Compliance (these rules override everything else, including lessons)
- If the person asks you to stop, to remove their number, or says they never enquired, you stop: set opt_out_intent
  and do not try to change their mind.
- Do not text about health, money or legal matters beyond what the business offers; hand sensitive topics to a person.
- Do not ask for card details, passwords, dates of birth or other sensitive personal data by SMS.
- Messages go out only inside the permitted sending hours; you do not need to mention times of day.

When to hand over to a person (set handover)
- Complaints, anger, threats, mentions of solicitors, regulators or the press.
- Questions you cannot answer from the facts given, or a request to speak to a person.
- Anything that could embarrass the business if you guessed wrong.$p$, ''),
    ('reply', 'Reply agent prompt', $p$Your task now: write the next SMS in an ongoing conversation with a lead who
has replied, and record your assessment of the lead, by calling the record_reply tool exactly once.

Reading the conversation
- The transcript shows every earlier message: ours (campaign messages M1-M3, AI replies, staff messages) and the lead's.
- The latest_message block holds what the lead just sent (one or more texts since our last message). Answer that.
- Staff messages in the transcript were written by a person: keep their commitments and do not contradict them.

Steering towards a call
- The outcome we want is a short phone call with the team, booked in the calendar.
- When the lead shows interest (asks about price, availability, next steps, says yes, asks when), offer two or three of
  the open slots listed in available_slots, written in a friendly local form ("Tue 3 Dec at 2:30pm"), and ask which
  suits. Set booking_intent to offer_slots.
- When the lead accepts one of the slots you offered (or names a time that matches one), set booking_intent to book,
  put that slot's exact ISO start time from available_slots in chosen_slot, and write reply_text as a short
  confirmation of that time. The system books it and only sends your text if the booking succeeds.
- Never book or confirm a time that is not in available_slots. If no slots are listed, or none suits, ask what day and
  time would work and say the team will confirm.
- If the lead is not ready, do not push: answer their question, leave the door open, and keep booking_intent none.

Classifying the lead (contact_status)
- HOT: clearly wants to go ahead or book now.
- WARM: interested, asking questions, but not ready to book.
- COLD: lukewarm, vague or slow, but not a no.
- NOT_INTERESTED: says no, already sorted, no longer needs it.
- REPLIED: replied but nothing about interest can be told yet.
lead_sentiment: POSITIVE, NEUTRAL, NEGATIVE, HOT (enthusiastic) or UNCLEAR.

Opt-out
- Phrases such as "stop texting me", "remove my number", "unsubscribe", "leave me alone", "wrong number", "I never
  enquired" mean the lead wants no more messages: set opt_out_intent true, contact_status NOT_INTERESTED, and leave
  reply_text empty. The system opts the lead out exactly as if they had texted STOP.
- Revocation by any reasonable means counts, in any language and however politely put ("I'd rather not get these",
  "delete my details", "baja"). "Not interested" together with "don't text/contact me (again)", "no more messages" or
  "take me off your list" is a revocation: opt_out_intent true, no friendly closing reply. "Not interested" or
  "already sorted" on its own is not: reply politely, contact_status NOT_INTERESTED.

Handover
- Set handover true (with handover_reason) when a person should take over: complaints, abuse, legal or medical topics,
  requests to speak to a person, or anything you cannot answer truthfully from the facts. reply_text may then hold a
  short holding message such as "Thanks, I'll ask a colleague to pick this up with you." or be empty.

Quality bar for reply_text
- Reads like a person from a small, friendly business texting: short, specific to what the lead said, one question.
- No links unless they appear in the facts. No signature blocks. No "as an AI".
- Do not repeat a question the lead already answered, and do not repeat the opening pitch.

Reporting
- confidence: how sure you are that reply_text is the right message to send now (0 to 1). Below 0.5 means a person
  should look at it.
- reasoning: one or two sentences for the staff explaining why you wrote this reply and chose this status.
- lessons_applied: the ids of the lessons (from the lessons section) that shaped this reply; an empty list if none.

Examples (the lead's message, then what you record; adapt the wording, never copy it)
1. Lead: "Who is this?"
   reply_text: "Hi Sam, it's the team at Brightview Windows - you asked us about new windows last spring. Are
   you still looking for help with that?" contact_status REPLIED, lead_sentiment NEUTRAL, booking_intent none.
2. Lead: "Yes still interested, how much would it be?"
   reply_text: "Great to hear! Prices depend on sizes and style, so the team gives an exact quote on a quick
   call. Would Tue 3 Dec at 10am or Wed 4 Dec at 2:30pm suit you?" contact_status HOT, lead_sentiment
   POSITIVE, booking_intent offer_slots (both times copied from available_slots).
3. Lead: "Wednesday works" (after you offered Tue 3 Dec at 10am or Wed 4 Dec at 2:30pm)
   reply_text: "Lovely, you're booked in for Wed 4 Dec at 2:30pm. The team will call you on this number."
   booking_intent book, chosen_slot the ISO start of the Wednesday slot, contact_status HOT.
4. Lead: "We're really busy at the moment, maybe in the new year"
   reply_text: "No problem at all. Shall I drop you a line in January instead?" contact_status COLD,
   lead_sentiment NEUTRAL, booking_intent none.
5. Lead: "Already had them done thanks"
   reply_text: "Glad it's sorted, thanks for letting us know. All the best!" contact_status NOT_INTERESTED,
   lead_sentiment NEUTRAL.
6. Lead: "Stop messaging me" (or "Not interested, don't text me again")
   reply_text empty, opt_out_intent true, contact_status NOT_INTERESTED, lead_sentiment NEGATIVE.
7. Lead: "Your fitter left a mess last time and nobody called back. Disgraceful."
   reply_text: "I'm sorry to hear that. I've asked a manager to call you today." handover true,
   handover_reason "complaint about a previous job", lead_sentiment NEGATIVE, confidence 0.6.
8. Lead: "Can you do it for 2k?"
   reply_text: "I can't confirm prices by text, but the team can go through options on a short call. Would
   Thu 5 Dec at 11am work?" contact_status WARM, booking_intent offer_slots.$p$,
    $t$Current time: {{now}} ({{timezone}})
Lead status: {{lead_status}}; sentiment so far: {{lead_sentiment}}

<conversation>
{{conversation}}
</conversation>

<latest_message>
{{latest_message}}
</latest_message>

{{available_slots}}

Write the next SMS to {{first_name}} and record your assessment with the record_reply tool.$t$),
    ('m1', 'First outreach (M1) prompt', $p$Write the first reactivation SMS to a lead who enquired some time ago.
Remind them who we are and what they asked about, in one or two short sentences, and end with one easy question
they can answer with a word (for example "Are you still looking for help with this?").
Under 300 characters, no links, no pressure, include the opt-out line if the company facts give one.$p$,
    $t$Lead: {{first_name}} {{last_name}}, enquired on {{inquiry_date}} about: {{notes}}$t$),
    ('m2', 'Second outreach (M2) prompt', $p$Write a short, friendly follow-up SMS to a lead who has not answered our
first message. Do not repeat the first message; offer one helpful reason to reply (a quick call, an answer to a common
question) and end with a simple yes/no question. Under 250 characters, no pressure, no links.$p$,
    $t$Lead: {{first_name}}; first message sent: {{m1_content}}$t$),
    ('m3', 'Final outreach (M3) prompt', $p$Write the last SMS of the sequence to a lead who has not answered two
messages. Be brief and gracious: say this is the last message, that they can reply any time if things change, and
thank them. Under 200 characters, no pressure, no links.$p$,
    $t$Lead: {{first_name}}$t$)
  ) as d (prompt_type, name, system_prompt, user_prompt_template)
  where d.prompt_type = p_type
$fn$;
comment on function private.default_prompt(public.prompt_type) is
  'The platform''s default prompt of a type, used for version 1 of every new client''s prompts.';

-- Gives a client version 1 of every prompt type it does not have yet (idempotent).
create function private.seed_default_prompts(p_client_id uuid) returns integer
language sql
security definer
set search_path = ''
as $$
  with added as (
    insert into public.prompts (
      client_id, prompt_type, name, system_prompt, user_prompt_template, version, is_active,
      pushed_to_live, made_live_at
    )
    select p_client_id, t.prompt_type, d.name, d.system_prompt, d.user_prompt_template, 1, true, true, now()
    from unnest(enum_range(null::public.prompt_type)) as t (prompt_type)
    cross join lateral private.default_prompt(t.prompt_type) as d
    where not exists (
      select from public.prompts p where p.client_id = p_client_id and p.prompt_type = t.prompt_type
    )
    returning 1
  )
  select count(*)::integer from added
$$;
comment on function private.seed_default_prompts(uuid) is
  'Gives a client version 1 of every prompt type it does not have yet (idempotent).';

-- Trigger: a new client gets version 1 of every default prompt.
create function private.seed_client_prompts() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.seed_default_prompts(new.id);
  return null;
end
$$;
comment on function private.seed_client_prompts() is
  'Trigger: a new client gets version 1 of every default prompt.';
create trigger clients_seed_prompts after insert on public.clients
  for each row execute function private.seed_client_prompts();

select private.seed_default_prompts(c.id) from public.clients as c;

revoke all on function private.default_prompt(public.prompt_type), private.seed_default_prompts(uuid),
  private.seed_client_prompts()
from public, anon;
grant execute on function private.default_prompt(public.prompt_type), private.seed_default_prompts(uuid)
to service_role;

-- AI modes --------------------------------------------------------------------------------
-- AI modes and the consecutive-AI-message safeguard.
-- Mode resolution: conversation -> dataset -> client settings `ai_mode` -> 'auto'; a lead in
-- manual mode is always 'off'. The safeguard hands a conversation to a person once the AI has
-- sent `ai_max_consecutive_messages` (client setting, default 10) messages without a person
-- stepping in.

-- The AI mode that applies to a conversation now: off when the lead is in manual mode, else the
-- first set of conversation, dataset and client settings ai_mode, else auto.
create function private.effective_ai_mode(p_conversation_id uuid) returns public.ai_mode
language sql
stable
security definer
set search_path = ''
as $$
  select case
    when l.manual_mode then 'off'::public.ai_mode
    else coalesce(
      cv.ai_mode,
      d.ai_mode,
      case when c.settings ->> 'ai_mode' in ('auto', 'suggest', 'off') then (c.settings ->> 'ai_mode')::public.ai_mode end,
      'auto'::public.ai_mode
    )
  end
  from public.conversations cv
  join public.leads l on l.id = cv.lead_id
  join public.datasets d on d.id = cv.dataset_id
  join public.clients c on c.id = cv.client_id
  where cv.id = p_conversation_id
$$;
comment on function private.effective_ai_mode(uuid) is
  'The AI mode that applies to a conversation now: off when the lead is in manual mode, else the first '
  'set of conversation, dataset and client settings ai_mode, else auto. Null for an unknown conversation.';

-- Client setting ai_max_consecutive_messages (default 10): AI messages allowed in a row before
-- handover.
create function private.ai_max_consecutive(p_client_id uuid) returns integer
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(
    case when c.settings ->> 'ai_max_consecutive_messages' ~ '^[0-9]{1,4}$'
      then greatest(1, (c.settings ->> 'ai_max_consecutive_messages')::integer) end,
    10
  )
  from public.clients c where c.id = p_client_id
$$;
comment on function private.ai_max_consecutive(uuid) is
  'Client setting ai_max_consecutive_messages (default 10): AI messages allowed in a row before handover.';

-- The count, conversations.ai_consecutive_messages, is a column of the conversations (20 outreach).

-- A person stepping in resets the count.
create function private.reset_ai_streak_on_staff_message() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.conversations set ai_consecutive_messages = 0
  where id = new.conversation_id and ai_consecutive_messages <> 0;
  return null;
end
$$;
comment on function private.reset_ai_streak_on_staff_message() is
  'Trigger: a staff message resets the conversation''s consecutive-AI-message count.';
create trigger messages_reset_ai_streak after insert on public.messages
  for each row
  when (new.direction = 'outbound' and new.sent_by is not null and new.conversation_id is not null)
  execute function private.reset_ai_streak_on_staff_message();

-- Trigger: manual mode switched off resets the lead's consecutive-AI-message count.
create function private.reset_ai_streak_on_manual_off() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.conversations set ai_consecutive_messages = 0
  where lead_id = new.id and ai_consecutive_messages <> 0;
  return null;
end
$$;
comment on function private.reset_ai_streak_on_manual_off() is
  'Trigger: manual mode switched off resets the lead''s consecutive-AI-message count.';
create trigger leads_reset_ai_streak after update of manual_mode on public.leads
  for each row when (old.manual_mode and not new.manual_mode)
  execute function private.reset_ai_streak_on_manual_off();

-- Hands a conversation to a person: status needs_human, lead manual mode on, staff notified.
create function private.ai_handover(
  p_conversation_id uuid, p_reason text, p_detail text default null
) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_conv public.conversations;
  v_lead public.leads;
begin
  update public.conversations set status = 'needs_human'
  where id = p_conversation_id
  returning * into v_conv;
  if not found then
    return;
  end if;
  update public.leads set manual_mode = true, manual_mode_activated_at = now()
  where id = v_conv.lead_id and not manual_mode
  returning * into v_lead;
  if v_lead.id is null then
    select l.* into v_lead from public.leads l where l.id = v_conv.lead_id;
  end if;
  perform private.notify_staff(
    v_conv.client_id,
    'Conversation needs a person',
    format('%s: %s', coalesce(nullif(trim(concat_ws(' ', v_lead.first_name, v_lead.last_name)), ''), v_lead.phone_number),
      coalesce(p_detail, p_reason)),
    'immediate',
    '/conversations/' || v_conv.id,
    jsonb_build_object('conversation_id', v_conv.id, 'lead_id', v_lead.id, 'reason', p_reason),
    v_conv.dataset_id
  );
end
$$;
comment on function private.ai_handover(uuid, text, text) is
  'Hands a conversation to a person: status needs_human, lead manual mode on, staff notified.';

-- Flags a conversation needs_human and notifies staff (e.g. Claude unavailable after every retry).
create function private.ai_flag_needs_human(
  p_conversation_id uuid, p_reason text, p_detail text default null
) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_conv public.conversations;
begin
  -- Unlike a handover, the AI stays on for the lead's next message; a person must look now.
  update public.conversations set status = 'needs_human'
  where id = p_conversation_id
  returning * into v_conv;
  if found then
    perform private.notify_staff(
      v_conv.client_id,
      case when p_reason = 'booking_failed' then 'Booking failed: please confirm a time with the lead'
        else 'AI could not answer a lead' end,
      coalesce(p_detail, p_reason), 'immediate',
      '/conversations/' || v_conv.id,
      jsonb_build_object('conversation_id', v_conv.id, 'lead_id', v_conv.lead_id, 'reason', p_reason),
      v_conv.dataset_id
    );
  end if;
end
$$;
comment on function private.ai_flag_needs_human(uuid, text, text) is
  'Flags a conversation needs_human and notifies staff (e.g. Claude unavailable after every retry).';

revoke all on function private.effective_ai_mode(uuid), private.ai_max_consecutive(uuid),
  private.reset_ai_streak_on_staff_message(), private.reset_ai_streak_on_manual_off(),
  private.ai_handover(uuid, text, text), private.ai_flag_needs_human(uuid, text, text)
from public, anon;
grant execute on function private.effective_ai_mode(uuid), private.ai_max_consecutive(uuid),
  private.ai_handover(uuid, text, text), private.ai_flag_needs_human(uuid, text, text)
to service_role;

-- AI opt-out ------------------------------------------------------------------------------
-- The AI as the second opt-out layer. The phrase set (private.opt_out_phrases) decides first, in
-- the ingest. In auto and suggest modes the reply decision's opt_out_intent covers the rest; in
-- manual or off mode no reply is generated, so the ingest queues ai.classify_opt_out instead: the
-- worker asks Claude one forced-tool question (is this a revocation?) and commits the answer
-- here. A confident revocation is handled exactly like STOP, and staff are told.

-- Tells staff a lead was opted out by the AI (reply decision or opt-out classification), like a
-- STOP keyword.
create function private.notify_ai_opt_out(p_lead_id uuid, p_message_id uuid, p_how text, p_reason text) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_lead public.leads;
  v_conv uuid;
  v_name text;
begin
  select l.* into v_lead from public.leads l where l.id = p_lead_id;
  select cv.id into v_conv from public.conversations cv where cv.lead_id = p_lead_id;
  v_name := coalesce(nullif(trim(concat_ws(' ', v_lead.first_name, v_lead.last_name)), ''), v_lead.phone_number);
  perform private.notify_staff(v_lead.client_id, 'Opted out: ' || v_name,
    v_name || ' asked not to be contacted again (' || p_how || ': ' || left(coalesce(p_reason, ''), 200) || '). '
    || 'Nothing more will be sent to ' || v_lead.phone_number || '.', 'low',
    case when v_conv is not null then '/conversations/' || v_conv end,
    jsonb_build_object('kind', 'opted_out', 'lead_id', v_lead.id, 'message_id', p_message_id,
      'phone_number', v_lead.phone_number, 'source', p_how),
    v_lead.dataset_id);
end
$$;
comment on function private.notify_ai_opt_out(uuid, uuid, text, text) is
  'Tells staff a lead was opted out by the AI (reply decision or opt-out classification), like a STOP keyword.';

-- Worker step 1 of ai.classify_opt_out: skip (lead already opted out, message gone) or the text to
-- classify with the last few messages before it.
create function private.ai_classify_begin(p_conversation_id uuid, p_inbound_message_id uuid) returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_in public.messages;
  v_lead public.leads;
begin
  select m.* into v_in from public.messages m
  where m.id = p_inbound_message_id and m.conversation_id = p_conversation_id and m.direction = 'inbound';
  select l.* into v_lead from public.leads l where l.id = v_in.lead_id;
  if v_in.id is null or v_lead.id is null then
    return jsonb_build_object('action', 'skip', 'reason', 'not_found');
  elsif v_lead.opted_out or private.number_is_suppressed(v_lead.client_id, v_lead.phone_number) then
    return jsonb_build_object('action', 'skip', 'reason', 'opted_out');
  end if;
  return jsonb_build_object(
    'action', 'classify',
    'message', v_in.content,
    'client', (select jsonb_build_object('name', c.name, 'anthropic_model', c.settings ->> 'anthropic_model')
      from public.clients c where c.id = v_lead.client_id),
    -- What we said just before: "no" to "shall we stop?" is not "no" to "are you interested?".
    'previous', coalesce((
      select jsonb_agg(jsonb_build_object('direction', x.direction, 'content', x.content) order by x.created_at, x.id)
      from (
        select m.direction, m.content, m.created_at, m.id from public.messages m
        where m.conversation_id = p_conversation_id and m.status not in ('draft', 'canceled')
          and (m.created_at, m.id) < (v_in.created_at, v_in.id)
        order by m.created_at desc, m.id desc
        limit 4
      ) x
    ), '[]'::jsonb)
  );
end
$$;
comment on function private.ai_classify_begin(uuid, uuid) is
  'Worker step 1 of ai.classify_opt_out: skip (lead already opted out, message gone) or the text to classify '
  'with the last few messages before it.';

-- Worker step 2 of ai.classify_opt_out: stores the classification on the inbound message; a
-- revocation with confidence >= p_min_confidence opts the lead out like STOP and notifies staff.
create function private.ai_classify_commit(
  p_conversation_id uuid, p_inbound_message_id uuid, p_result jsonb, p_min_confidence numeric default 0.8
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_in public.messages;
  v_lead public.leads;
  v_confident boolean;
begin
  select m.* into v_in from public.messages m
  where m.id = p_inbound_message_id and m.conversation_id = p_conversation_id and m.direction = 'inbound';
  -- The lead's row lock, as every opt-out and AI commit takes it.
  select l.* into v_lead from public.leads l where l.id = v_in.lead_id for update;
  if v_in.id is null or v_lead.id is null then
    return jsonb_build_object('status', 'skipped', 'reason', 'not_found');
  end if;
  update public.messages m
  set ai_metadata = m.ai_metadata || jsonb_build_object('opt_out_classification', p_result)
  where m.id = v_in.id;
  if v_lead.opted_out then
    return jsonb_build_object('status', 'skipped', 'reason', 'opted_out');
  end if;
  v_confident := coalesce((p_result ->> 'opt_out')::boolean, false)
    and coalesce((p_result ->> 'confidence')::numeric, 0) >= p_min_confidence;
  if not v_confident then
    return jsonb_build_object('status', case when coalesce((p_result ->> 'opt_out')::boolean, false)
      then 'not_confident' else 'no_opt_out' end);
  end if;
  perform private.opt_out_lead(v_lead.id, left('AI classifier: ' || coalesce(p_result ->> 'reason', 'asked to stop'), 200), 'ai');
  perform private.notify_ai_opt_out(v_lead.id, v_in.id, 'AI opt-out check', p_result ->> 'reason');
  return jsonb_build_object('status', 'opted_out');
end
$$;
comment on function private.ai_classify_commit(uuid, uuid, jsonb, numeric) is
  'Worker step 2 of ai.classify_opt_out: stores the classification on the inbound message; a revocation with '
  'confidence >= p_min_confidence opts the lead out like STOP and notifies staff. Returns {"status": '
  'opted_out|no_opt_out|not_confident|skipped}.';

revoke all on function private.notify_ai_opt_out(uuid, uuid, text, text), private.ai_classify_begin(uuid, uuid),
  private.ai_classify_commit(uuid, uuid, jsonb, numeric)
from public, anon, authenticated;
grant execute on function private.notify_ai_opt_out(uuid, uuid, text, text), private.ai_classify_begin(uuid, uuid),
  private.ai_classify_commit(uuid, uuid, jsonb, numeric)
to service_role;

-- AI replies ------------------------------------------------------------------------------
-- AI replies: the worker reads a conversation's context, calls Claude outside any transaction,
-- then commits the decision through one function that re-checks everything under the lead's
-- row lock (manual mode, opt-out, archive, AI mode, a newer inbound message, the safeguard)
-- in the same transaction that queues the SMS. So a stale answer is never sent, and the
-- latest inbound message gets exactly one answer.

create index messages_ai_inbound_idx on public.messages ((ai_metadata ->> 'inbound_message_id'))
where ai_generated;
create index messages_ai_prompt_idx on public.messages ((ai_metadata ->> 'prompt_version_id'))
where ai_generated;
create index messages_drafts_idx on public.messages (conversation_id) where status = 'draft';

-- Everything the AI needs to answer a conversation: lead facts, last 40 messages, live reply prompt
-- (with its lessons) and the master prompt, effective AI mode and safeguard counters.
create function private.ai_context(p_conversation_id uuid) returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'conversation', jsonb_build_object(
      'id', cv.id, 'status', cv.status, 'ai_mode', private.effective_ai_mode(cv.id),
      'ai_consecutive_messages', cv.ai_consecutive_messages,
      'ai_max_consecutive_messages', private.ai_max_consecutive(cv.client_id)
    ),
    'client', jsonb_build_object(
      'id', c.id, 'name', c.name, 'timezone', c.timezone,
      'anthropic_model', c.settings ->> 'anthropic_model',
      'company_description', c.settings ->> 'company_description',
      'booking_enabled', coalesce((c.settings ->> 'ai_booking_enabled')::boolean, true)
    ),
    'dataset', jsonb_build_object('id', d.id, 'name', d.name, 'source', d.source, 'description', d.description),
    'lead', jsonb_build_object(
      'id', l.id, 'first_name', l.first_name, 'last_name', l.last_name, 'phone_number', l.phone_number,
      'email', l.email, 'postcode', l.postcode, 'inquiry_date', l.inquiry_date, 'notes', l.notes,
      'custom_fields', l.custom_fields, 'timezone', coalesce(l.timezone, c.timezone),
      'contact_status', l.contact_status, 'lead_sentiment', l.lead_sentiment,
      'manual_mode', l.manual_mode, 'opted_out', l.opted_out, 'archived', l.archived,
      'call_booked', l.call_booked, 'call_booked_time', l.call_booked_time
    ),
    'messages', coalesce((
      select jsonb_agg(x.msg order by x.created_at, x.id)
      from (
        select m.created_at, m.id, jsonb_build_object(
          'id', m.id, 'direction', m.direction, 'category', m.message_category, 'status', m.status,
          'content', m.content, 'at', coalesce(m.received_at, m.sent_at, m.created_at),
          'ai_generated', m.ai_generated, 'by_staff', m.sent_by is not null,
          'offered_slots', m.ai_metadata -> 'offered_slots'
        ) as msg
        from public.messages m
        where m.conversation_id = cv.id and m.status not in ('draft', 'canceled')
        order by m.created_at desc, m.id desc
        limit 40
      ) x
    ), '[]'::jsonb),
    'prompt', (
      select jsonb_build_object(
        'id', r.id, 'version', r.version, 'system_prompt', r.system_prompt,
        'user_prompt_template', r.user_prompt_template, 'lessons_context', r.lessons_context,
        'lesson_ids', to_jsonb(r.lesson_ids),
        'master_id', ms.id, 'master_system_prompt', ms.system_prompt
      )
      from public.prompts r
      left join public.prompts ms on ms.client_id = r.client_id and ms.prompt_type = 'master' and ms.is_active
      where r.client_id = cv.client_id and r.prompt_type = 'reply' and r.is_active
    )
  )
  from public.conversations cv
  join public.leads l on l.id = cv.lead_id
  join public.datasets d on d.id = cv.dataset_id
  join public.clients c on c.id = cv.client_id
  where cv.id = p_conversation_id
$$;
comment on function private.ai_context(uuid) is
  'Everything the AI needs to answer a conversation: lead facts, last 40 messages, live reply prompt '
  '(with its lessons) and the master prompt, effective AI mode and safeguard counters.';

-- Why the AI must not answer this inbound message now (opted_out, archived, manual_mode, ai_off,
-- needs_human, closed, superseded, already_answered, answered_by_staff, safeguard, not_found), or
-- null.
create function private.ai_reply_blocker(
  p_conversation_id uuid, p_inbound_message_id uuid, p_booking_id text default null
) returns text
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_conv public.conversations;
  v_lead public.leads;
  v_in public.messages;
  v_booked boolean;
begin
  select cv.* into v_conv from public.conversations cv where cv.id = p_conversation_id;
  select l.* into v_lead from public.leads l where l.id = v_conv.lead_id;
  select m.* into v_in from public.messages m
  where m.id = p_inbound_message_id and m.conversation_id = p_conversation_id and m.direction = 'inbound';
  if v_conv.id is null or v_lead.id is null or v_in.id is null then
    return 'not_found';
  end if;
  -- The confirmation of a booking the AI just made may go out although booking switched manual mode on.
  v_booked := p_booking_id is not null and v_lead.cal_booking_id is not distinct from p_booking_id;
  if private.lead_is_opted_out(v_lead.id) then
    return 'opted_out';
  elsif v_lead.archived then
    return 'archived';
  elsif v_lead.contact_status in ('OPTED_OUT', 'UNDELIVERABLE', 'CONVERTED') then
    return lower(v_lead.contact_status::text);
  elsif v_lead.manual_mode and not v_booked then
    return 'manual_mode';
  elsif not v_booked and private.effective_ai_mode(v_conv.id) = 'off' then
    return 'ai_off';
  elsif v_conv.status <> 'active' then
    return v_conv.status::text;
  elsif exists (
    select from public.messages m
    where m.conversation_id = v_conv.id and m.direction = 'inbound'
      and (m.created_at, m.id) > (v_in.created_at, v_in.id)
  ) then
    return 'superseded';
  elsif exists (
    select from public.messages m
    where m.conversation_id = v_conv.id and m.ai_generated and m.status <> 'canceled'
      and m.ai_metadata ->> 'inbound_message_id' = v_in.id::text
  ) then
    return 'already_answered';
  elsif exists (
    select from public.messages m
    where m.conversation_id = v_conv.id and m.direction = 'outbound' and m.sent_by is not null
      and m.status not in ('draft', 'canceled') and m.created_at > v_in.created_at
  ) then
    return 'answered_by_staff';
  elsif not v_booked and v_conv.ai_consecutive_messages >= private.ai_max_consecutive(v_conv.client_id) then
    return 'safeguard';
  end if;
  return null;
end
$$;
comment on function private.ai_reply_blocker(uuid, uuid, text) is
  'Why the AI must not answer this inbound message now (opted_out, archived, manual_mode, ai_off, '
  'needs_human, closed, superseded, already_answered, answered_by_staff, safeguard, not_found), or null.';

-- Hands a conversation to a person once the AI has sent its maximum of messages in a row (the
-- safeguard).
create function private.ai_safeguard_handover(p_conversation_id uuid) returns void
language sql
security definer
set search_path = ''
as $$
  select private.ai_handover(
    p_conversation_id, 'safeguard',
    format('The AI has sent %s messages in a row without a person stepping in; please take over.',
      (select cv.ai_consecutive_messages from public.conversations cv where cv.id = p_conversation_id))
  )
$$;
comment on function private.ai_safeguard_handover(uuid) is
  'Hands a conversation to a person once the AI has sent its maximum of messages in a row (the safeguard).';

-- Worker step 1 of ai.reply: skip (with the reason), or the context to generate from plus the
-- Cal.com settings and the lead's booking facts (read in the same round trip, so booking reads
-- neither again; the opt-out and same-booking checks still run at booking time).
create function private.ai_reply_begin(p_conversation_id uuid, p_inbound_message_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_reason text := private.ai_reply_blocker(p_conversation_id, p_inbound_message_id);
  v_client_id uuid;
  v_booking jsonb;
begin
  if v_reason = 'safeguard' then
    perform private.ai_safeguard_handover(p_conversation_id);
  end if;
  if v_reason is not null then
    return jsonb_build_object('action', 'skip', 'reason', v_reason);
  end if;
  select
    l.client_id,
    jsonb_build_object(
      'lead_id', l.id, 'client_id', l.client_id, 'first_name', l.first_name,
      'last_name', l.last_name, 'email', l.email, 'phone_number', l.phone_number,
      'time_zone', coalesce(l.timezone, c.timezone), 'cal_booking_id', l.cal_booking_id,
      'call_booked', l.call_booked, 'call_booked_time', l.call_booked_time
    )
  into v_client_id, v_booking
  from public.conversations cv
  join public.leads l on l.id = cv.lead_id
  join public.clients c on c.id = l.client_id
  where cv.id = p_conversation_id;
  return jsonb_build_object(
    'action', 'generate',
    'context', private.ai_context(p_conversation_id),
    'calcom', private.calcom_settings(v_client_id),
    'booking', v_booking
  );
end
$$;
comment on function private.ai_reply_begin(uuid, uuid) is
  'Worker step 1 of ai.reply: skip (with the reason), or the context to generate from, the client''s '
  'Cal.com settings (calcom) and the lead''s booking facts (booking), so booking reads neither again.';

-- Updates lead contact_status/lead_sentiment (and conversation sentiment) from an AI decision.
create function private.ai_apply_assessment(p_lead_id uuid, p_decision jsonb) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_status public.lead_status;
  v_sentiment public.lead_sentiment;
begin
  if p_decision ->> 'contact_status' in ('REPLIED', 'HOT', 'WARM', 'COLD', 'NOT_INTERESTED') then
    v_status := (p_decision ->> 'contact_status')::public.lead_status;
  end if;
  if p_decision ->> 'lead_sentiment' in ('POSITIVE', 'NEGATIVE', 'NEUTRAL', 'HOT', 'UNCLEAR') then
    v_sentiment := (p_decision ->> 'lead_sentiment')::public.lead_sentiment;
  end if;
  -- Outcomes that only bookings, opt-outs and delivery results may set are never overwritten.
  update public.leads l
  set contact_status = case
        when v_status is null or l.contact_status in ('CALL_BOOKED', 'CONVERTED', 'OPTED_OUT', 'UNDELIVERABLE')
          then l.contact_status
        else v_status end,
      lead_sentiment = coalesce(v_sentiment, l.lead_sentiment)
  where l.id = p_lead_id
    and (l.contact_status, l.lead_sentiment) is distinct from (
      case
        when v_status is null or l.contact_status in ('CALL_BOOKED', 'CONVERTED', 'OPTED_OUT', 'UNDELIVERABLE')
          then l.contact_status
        else v_status end,
      coalesce(v_sentiment, l.lead_sentiment)
    );
  if v_sentiment is not null then
    update public.conversations set sentiment = v_sentiment
    where lead_id = p_lead_id and sentiment is distinct from v_sentiment;
  end if;
end
$$;
comment on function private.ai_apply_assessment(uuid, jsonb) is
  'Updates lead contact_status/lead_sentiment (and conversation sentiment) from an AI decision.';

-- Stores an AI draft (message status draft, visible in the conversation), replacing an older draft.
create function private.ai_store_draft(p_conversation_id uuid, p_content text, p_ai jsonb) returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_conv public.conversations;
  v_lead public.leads;
  v_id uuid;
begin
  select cv.* into v_conv from public.conversations cv where cv.id = p_conversation_id;
  select l.* into v_lead from public.leads l where l.id = v_conv.lead_id;
  -- One pending draft per conversation: a new one replaces the old.
  delete from public.messages m where m.conversation_id = p_conversation_id and m.status = 'draft';
  insert into public.messages (
    client_id, dataset_id, conversation_id, lead_id, direction, message_category, status, content,
    to_number, ai_generated, ai_confidence, ai_reasoning, ai_metadata
  )
  values (
    v_conv.client_id, v_conv.dataset_id, v_conv.id, v_lead.id, 'outbound', 'ai_response', 'draft', p_content,
    v_lead.phone_number, true, (p_ai ->> 'confidence')::numeric, p_ai ->> 'reasoning',
    p_ai - 'confidence' - 'reasoning'
  )
  returning id into v_id;
  return v_id;
end
$$;
comment on function private.ai_store_draft(uuid, text, jsonb) is
  'Stores an AI draft (message status draft, visible in the conversation), replacing an older draft.';

-- Queues an AI-written SMS through private.queue_sms (AI decision stored on the message) and counts
-- the lessons it applied.
create function private.ai_send_message(
  p_lead_id uuid, p_content text, p_ai jsonb,
  p_category public.message_category default 'ai_response', p_sent_by uuid default null
) returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid;
begin
  -- queue_sms stores confidence/reasoning in their columns and the rest of p_ai as ai_metadata.
  v_id := private.queue_sms(p_lead_id, p_content, p_category, p_sent_by, p_ai);
  -- Lessons the reply says it applied, counted once per message.
  update public.lessons
  set times_applied = times_applied + 1, last_applied_at = now()
  where id in (
    select x::uuid from jsonb_array_elements_text(coalesce(p_ai -> 'lessons_applied', '[]')) x
    where x ~ '^[0-9a-f-]{36}$'
  );
  return v_id;
end
$$;
comment on function private.ai_send_message(uuid, text, jsonb, public.message_category, uuid) is
  'Queues an AI-written SMS through private.queue_sms (AI decision stored on the message) and counts the '
  'lessons it applied. Category ai_response for autonomous replies; system for a booking confirmation '
  '(booking turns manual mode on, which holds back ai_response messages); human_manual once a person approved it.';

-- Worker step 2 of ai.reply: re-checks under the lead lock, then sends (auto), drafts (suggest),
-- opts out or hands over.
create function private.ai_reply_commit(
  p_conversation_id uuid, p_inbound_message_id uuid, p_decision jsonb, p_ai jsonb
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_conv public.conversations;
  v_lead public.leads;
  v_reason text;
  v_mode public.ai_mode;
  v_text text := nullif(trim(coalesce(p_decision ->> 'reply_text', '')), '');
  v_booking_id text := p_ai -> 'booking' ->> 'booking_id';
  v_ai jsonb := p_ai || jsonb_build_object('inbound_message_id', p_inbound_message_id);
  v_id uuid;
begin
  select cv.* into v_conv from public.conversations cv where cv.id = p_conversation_id;
  -- The lead's row lock serialises every commit (and every opt-out or manual-mode switch) for a lead.
  select l.* into v_lead from public.leads l where l.id = v_conv.lead_id for update;
  v_reason := private.ai_reply_blocker(p_conversation_id, p_inbound_message_id, v_booking_id);
  if v_reason = 'safeguard' then
    perform private.ai_safeguard_handover(p_conversation_id);
    return jsonb_build_object('status', 'handed_over', 'reason', 'safeguard');
  elsif v_reason is not null then
    return jsonb_build_object(
      'status', case when v_reason in ('superseded', 'already_answered') then v_reason else 'skipped' end,
      'reason', v_reason
    );
  end if;
  v_mode := case when v_booking_id is not null then 'auto' else private.effective_ai_mode(p_conversation_id) end;

  if coalesce((p_decision ->> 'opt_out_intent')::boolean, false) then
    -- Exactly what the STOP keyword does (suppression, status, pending sends canceled).
    perform private.opt_out_lead(
      v_lead.id, left('AI: ' || coalesce(p_decision ->> 'reasoning', 'the lead asked to stop'), 200), 'ai'
    );
    perform private.notify_ai_opt_out(v_lead.id, p_inbound_message_id, 'AI reply', p_decision ->> 'reasoning');
    return jsonb_build_object('status', 'opted_out');
  end if;

  perform private.ai_apply_assessment(v_lead.id, p_decision);

  if v_mode = 'suggest' then
    if v_text is null then
      if coalesce((p_decision ->> 'handover')::boolean, false) then
        perform private.ai_handover(p_conversation_id, 'ai_requested', p_decision ->> 'handover_reason');
        return jsonb_build_object('status', 'handed_over', 'reason', 'ai_requested');
      end if;
      return jsonb_build_object('status', 'skipped', 'reason', 'empty_reply');
    end if;
    v_id := private.ai_store_draft(p_conversation_id, v_text, v_ai);
    perform private.notify_staff(
      v_conv.client_id, 'AI draft waiting for approval',
      format('%s replied; a suggested answer is ready to review.',
        coalesce(nullif(trim(concat_ws(' ', v_lead.first_name, v_lead.last_name)), ''), v_lead.phone_number)),
      'normal', '/conversations/' || v_conv.id,
      jsonb_build_object('conversation_id', v_conv.id, 'lead_id', v_lead.id, 'message_id', v_id),
      v_conv.dataset_id
    );
    return jsonb_build_object('status', 'drafted', 'message_id', v_id);
  end if;

  if p_decision ->> 'booking_intent' = 'book' and not (p_ai ? 'booking') then
    -- A confirmation without a booking behind it must never go out.
    return jsonb_build_object('status', 'skipped', 'reason', 'booking_not_made');
  end if;
  if v_text is not null then
    -- A booking confirmation or a handover's holding message must go out although the booking
    -- or the handover switches manual mode on (which holds back ai_response sends): system.
    v_id := private.ai_send_message(
      v_lead.id, v_text, v_ai,
      case
        when v_booking_id is not null or coalesce((p_decision ->> 'handover')::boolean, false) then 'system'
        else 'ai_response'
      end::public.message_category
    );
    update public.conversations set ai_consecutive_messages = ai_consecutive_messages + 1
    where id = p_conversation_id;
  end if;
  if coalesce((p_decision ->> 'handover')::boolean, false) then
    perform private.ai_handover(p_conversation_id, 'ai_requested', p_decision ->> 'handover_reason');
    return jsonb_build_object('status', 'handed_over', 'reason', 'ai_requested', 'message_id', v_id);
  end if;
  if p_ai ? 'booking_error' then
    perform private.ai_flag_needs_human(
      p_conversation_id, 'booking_failed',
      format('Booking the slot %s failed (%s); the lead was told a person will confirm a time.',
        p_ai ->> 'chosen_slot', p_ai ->> 'booking_error')
    );
  end if;
  if v_id is null then
    return jsonb_build_object('status', 'skipped', 'reason', 'empty_reply');
  end if;
  return jsonb_build_object('status', 'sent', 'message_id', v_id);
end
$$;
comment on function private.ai_reply_commit(uuid, uuid, jsonb, jsonb) is
  'Worker step 2 of ai.reply: re-checks under the lead lock, then sends (auto), drafts (suggest), opts '
  'out or hands over. Returns {"status": sent|drafted|opted_out|handed_over|superseded|already_answered|skipped}.';

revoke all on function private.ai_context(uuid), private.ai_reply_blocker(uuid, uuid, text),
  private.ai_safeguard_handover(uuid), private.ai_reply_begin(uuid, uuid),
  private.ai_apply_assessment(uuid, jsonb), private.ai_store_draft(uuid, text, jsonb),
  private.ai_send_message(uuid, text, jsonb, public.message_category, uuid), private.ai_reply_commit(uuid, uuid, jsonb, jsonb)
from public, anon, authenticated;
grant execute on function private.ai_context(uuid), private.ai_reply_blocker(uuid, uuid, text),
  private.ai_safeguard_handover(uuid), private.ai_reply_begin(uuid, uuid),
  private.ai_apply_assessment(uuid, jsonb), private.ai_store_draft(uuid, text, jsonb),
  private.ai_send_message(uuid, text, jsonb, public.message_category, uuid), private.ai_reply_commit(uuid, uuid, jsonb, jsonb)
to service_role;

-- AI drafts -------------------------------------------------------------------------------
-- AI drafts for staff: messages/ai-generate (a draft job the API waits for, cached per conversation
-- state) and messages/ai-send (approve a draft, optionally edited, or send given content).

-- The newest real (not draft, not canceled) message of a conversation: the state a draft answers.
create function private.ai_latest_message_id(p_conversation_id uuid) returns uuid
language sql
stable
security definer
set search_path = ''
as $$
  select m.id from public.messages m
  where m.conversation_id = p_conversation_id and m.status not in ('draft', 'canceled')
  order by m.created_at desc, m.id desc
  limit 1
$$;
comment on function private.ai_latest_message_id(uuid) is
  'The newest real (not draft, not canceled) message of a conversation: the state a draft answers.';

-- A draft message as messages/ai-generate answers it: {message_id, content, confidence, reasoning,
-- lessons_applied}.
create function private.ai_draft_json(p_message public.messages) returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'message_id', p_message.id,
    'content', p_message.content,
    'confidence', p_message.ai_confidence,
    'reasoning', p_message.ai_reasoning,
    'lessons_applied', coalesce(p_message.ai_metadata -> 'lessons_applied', '[]'::jsonb)
  )
$$;
comment on function private.ai_draft_json(public.messages) is
  'A draft message as messages/ai-generate answers it: {message_id, content, confidence, reasoning, lessons_applied}.';

-- The conversation of a lead as the caller may see it (as RLS decides); 404 when not visible, 403
-- for read-only members.
create function private.caller_conversation(p_lead_id uuid, p_conversation_id uuid) returns public.conversations
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_conv public.conversations;
begin
  -- Same visibility as the RLS policies: the caller's client and a dataset they may see.
  select cv.* into v_conv from public.conversations cv
  where cv.id = p_conversation_id and cv.lead_id = p_lead_id
    and cv.client_id = private.current_client_id()
    and (private.sees_all_datasets() or cv.dataset_id = any (private.visible_dataset_ids()))
    and (not private.sees_only_assigned_leads() or cv.lead_id = any (private.assigned_lead_ids()));
  if v_conv.id is null then
    perform private.raise_error(404, format('conversation %s of lead %s not found', p_conversation_id, p_lead_id));
  end if;
  if not private.can_write() then
    perform private.raise_error(403, 'read-only members cannot use AI drafts');
  end if;
  return v_conv;
end
$$;
comment on function private.caller_conversation(uuid, uuid) is
  'The conversation of a lead as the caller may see it (as RLS decides); 404 when not visible, 403 for read-only members.';

-- messages/ai-generate: returns the cached draft for the conversation's current state, or enqueues
-- an ai.draft job (shared by concurrent callers) and returns its id for the caller to wait on.
create function private.request_ai_draft(
  p_lead_id uuid, p_conversation_id uuid, p_force boolean default false
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_conv public.conversations := private.caller_conversation(p_lead_id, p_conversation_id);
  v_latest uuid := private.ai_latest_message_id(p_conversation_id);
  v_draft public.messages;
  v_key text;
  v_job private.jobs;
  v_job_id bigint;
begin
  if exists (select from public.leads l where l.id = p_lead_id and (l.opted_out or l.archived)) then
    perform private.raise_error(400, 'this lead is opted out or archived; nothing can be sent to them');
  end if;
  if not coalesce(p_force, false) then
    select m.* into v_draft from public.messages m
    where m.conversation_id = p_conversation_id and m.status = 'draft'
      and m.ai_metadata ->> 'based_on_message_id' is not distinct from v_latest::text
    order by m.created_at desc
    limit 1;
    if v_draft.id is not null then
      return jsonb_build_object('cached', true, 'generated_message', private.ai_draft_json(v_draft));
    end if;
  end if;
  -- Concurrent requests for the same state share one job; a forced or failed one gets a new key.
  v_key := format('ai.draft:%s:%s', p_conversation_id, coalesce(v_latest::text, 'empty'));
  select j.* into v_job from private.jobs j where j.idempotency_key = v_key;
  if coalesce(p_force, false) or v_job.status in ('dead', 'canceled')
     or (v_job.status = 'done' and not exists (
       select from public.messages m where m.id = (v_job.result ->> 'message_id')::uuid and m.status = 'draft'
     )) then
    v_key := v_key || ':' || gen_random_uuid();
  end if;
  v_job_id := private.enqueue_job(
    'ai.draft',
    jsonb_build_object(
      'conversation_id', p_conversation_id, 'lead_id', p_lead_id, 'requested_by', auth.uid(),
      'based_on_message_id', v_latest
    ),
    now(), v_key, v_conv.client_id, 3, 10::smallint
  );
  return jsonb_build_object('cached', false, 'job_id', v_job_id);
end
$$;
comment on function private.request_ai_draft(uuid, uuid, boolean) is
  'messages/ai-generate: returns the cached draft for the conversation''s current state, or enqueues an '
  'ai.draft job (shared by concurrent callers) and returns its id for the caller to wait on.';

-- Status and result of one of the caller's client's ai.draft jobs (what ai-generate waits for).
create function private.ai_draft_job(p_job_id bigint) returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object('status', j.status, 'result', j.result, 'last_error', j.last_error,
    'attempts', j.attempts, 'max_attempts', j.max_attempts)
  from private.jobs j
  where j.id = p_job_id and j.kind = 'ai.draft' and j.client_id = private.current_client_id()
$$;
comment on function private.ai_draft_job(bigint) is
  'Status and result of one of the caller''s client''s ai.draft jobs (what ai-generate waits for).';

-- Worker step 1 of ai.draft: the context (drafts are allowed in every AI mode, not for opted-out
-- leads).
create function private.ai_draft_begin(p_conversation_id uuid) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_lead public.leads;
begin
  select l.* into v_lead from public.leads l
  join public.conversations cv on cv.lead_id = l.id
  where cv.id = p_conversation_id;
  if v_lead.id is null then
    return jsonb_build_object('action', 'skip', 'reason', 'not_found');
  elsif private.lead_is_opted_out(v_lead.id) then
    return jsonb_build_object('action', 'skip', 'reason', 'opted_out');
  elsif v_lead.archived then
    return jsonb_build_object('action', 'skip', 'reason', 'archived');
  end if;
  return jsonb_build_object(
    'action', 'generate', 'context', private.ai_context(p_conversation_id),
    'based_on_message_id', private.ai_latest_message_id(p_conversation_id)
  );
end
$$;
comment on function private.ai_draft_begin(uuid) is
  'Worker step 1 of ai.draft: the context (drafts are allowed in every AI mode, not for opted-out leads).';

-- Worker step 2 of ai.draft: stores the draft and returns the generated_message the API hands back.
create function private.ai_draft_commit(p_conversation_id uuid, p_content text, p_ai jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid;
  v_msg public.messages;
begin
  if nullif(trim(coalesce(p_content, '')), '') is null then
    return jsonb_build_object(
      'message_id', null, 'content', '', 'confidence', p_ai -> 'confidence', 'reasoning', p_ai ->> 'reasoning',
      'lessons_applied', coalesce(p_ai -> 'lessons_applied', '[]'::jsonb)
    );
  end if;
  v_id := private.ai_store_draft(p_conversation_id, trim(p_content), p_ai);
  select m.* into v_msg from public.messages m where m.id = v_id;
  return private.ai_draft_json(v_msg);
end
$$;
comment on function private.ai_draft_commit(uuid, text, jsonb) is
  'Worker step 2 of ai.draft: stores the draft and returns the generated_message the API hands back.';

-- messages/ai-send: approves a draft (optionally with edited content) or sends given content
-- through the send path; the draft disappears from the conversation and the queued message takes
-- its place.
create function private.ai_send(p_lead_id uuid, p_message_id uuid, p_content text) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_lead public.leads;
  v_conv public.conversations;
  v_draft public.messages;
  v_content text := nullif(trim(coalesce(p_content, '')), '');
  v_ai jsonb;
  v_id uuid;
  v_msg public.messages;
begin
  if private.current_client_id() is null or not private.can_write() then
    perform private.raise_error(403, 'you cannot send messages');
  end if;
  select l.* into v_lead from public.leads l
  where l.id = p_lead_id and l.client_id = private.current_client_id()
    and (private.sees_all_datasets() or l.dataset_id = any (private.visible_dataset_ids()))
    and (not private.sees_only_assigned_leads() or l.assigned_to = auth.uid())
  for update;
  if v_lead.id is null then
    perform private.raise_error(404, format('lead %s not found', p_lead_id));
  end if;
  select cv.* into v_conv from public.conversations cv where cv.lead_id = v_lead.id;
  if p_message_id is not null then
    select m.* into v_draft from public.messages m where m.id = p_message_id and m.lead_id = v_lead.id;
    if v_draft.id is null and exists (
      select from public.messages m where m.lead_id = v_lead.id and m.ai_metadata ->> 'draft_id' = p_message_id::text
    ) then
      perform private.raise_error(409, format('draft %s was already approved and sent', p_message_id));
    elsif v_draft.id is null then
      perform private.raise_error(404, format('message %s not found for this lead', p_message_id));
    elsif v_draft.status <> 'draft' then
      perform private.raise_error(409, format('message %s is not a draft (it was already sent or discarded)', p_message_id));
    end if;
  elsif v_content is null then
    perform private.raise_error(400, 'give message_id (a draft to approve) or content');
  else
    -- Content without a draft id still inherits the pending draft's AI record, if there is one.
    select m.* into v_draft from public.messages m
    where m.conversation_id = v_conv.id and m.status = 'draft'
    order by m.created_at desc limit 1;
  end if;
  v_content := coalesce(v_content, v_draft.content);
  if length(v_content) > 1600 then
    perform private.raise_error(400, 'content is longer than 1600 characters');
  end if;
  v_ai := coalesce(v_draft.ai_metadata, '{}'::jsonb) || jsonb_build_object(
    'approved_by', auth.uid(), 'approved_at', now(), 'draft_id', v_draft.id,
    'edited', v_draft.id is null or v_draft.content is distinct from v_content,
    'confidence', v_draft.ai_confidence, 'reasoning', v_draft.ai_reasoning
  );
  if v_draft.id is not null and v_draft.content is distinct from v_content then
    v_ai := v_ai || jsonb_build_object('original_content', v_draft.content);
  end if;
  -- A person approved it: it goes as their message (manual mode does not hold it back), still
  -- marked ai_generated with the AI's record.
  -- The API contract's 60 sends per client and rolling hour, shared with send_message; a refusal keeps the draft.
  perform private.use_send_budget(v_lead.client_id);
  v_id := private.ai_send_message(v_lead.id, v_content, jsonb_strip_nulls(v_ai), 'human_manual', auth.uid());
  if v_conv.id is not null then
    delete from public.messages m where m.conversation_id = v_conv.id and m.status = 'draft';
  end if;
  select m.* into v_msg from public.messages m where m.id = v_id;
  return jsonb_build_object('message', jsonb_build_object(
    'id', v_msg.id, 'content', v_msg.content, 'sent_at', v_msg.sent_at, 'twilio_sid', v_msg.twilio_sid,
    'status', v_msg.status, 'message_category', v_msg.message_category, 'ai_generated', v_msg.ai_generated,
    'approved_draft_id', v_draft.id
  ));
end
$$;
comment on function private.ai_send(uuid, uuid, text) is
  'messages/ai-send: approves a draft (optionally with edited content) or sends given content through '
  'the send path; the draft disappears from the conversation and the queued message takes its place.';

-- POST messages/ai-send: see private.ai_send.
create function public.ai_send(lead_id uuid, message_id uuid default null, content text default null)
returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select private.ai_send(lead_id, message_id, content)
$$;
comment on function public.ai_send(uuid, uuid, text) is 'POST messages/ai-send: see private.ai_send.';

revoke all on function private.ai_latest_message_id(uuid), private.ai_draft_json(public.messages),
  private.caller_conversation(uuid, uuid), private.request_ai_draft(uuid, uuid, boolean),
  private.ai_draft_job(bigint), private.ai_draft_begin(uuid), private.ai_draft_commit(uuid, text, jsonb),
  private.ai_send(uuid, uuid, text), public.ai_send(uuid, uuid, text)
from public, anon;
grant execute on function private.request_ai_draft(uuid, uuid, boolean), private.ai_draft_job(bigint),
  private.ai_send(uuid, uuid, text), public.ai_send(uuid, uuid, text)
to authenticated, service_role;
grant execute on function private.ai_latest_message_id(uuid), private.ai_draft_json(public.messages),
  private.ai_draft_begin(uuid), private.ai_draft_commit(uuid, text, jsonb)
to service_role;
