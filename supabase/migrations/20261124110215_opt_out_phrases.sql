-- Opt-out in every AI mode, without the AI: a maintained phrase set (data, one row per rule with
-- its reason) matched against a normalised form of the inbound text. It runs inside
-- private.ingest_inbound_sms, in the transaction that stores the message, before any AI mode is
-- looked at. The AI only ever adds opt-outs on top of it (ai.classify_opt_out, opt_out_intent).
--
-- How a message is read:
--   1. private.opt_out_normalise: accents folded to ASCII (más -> mas, usuń -> usun), lower case,
--      apostrophes dropped (don't -> dont), every other non-letter/digit (punctuation, emoji,
--      line breaks) one space, letters repeated 3+ times folded ("stoooop" -> "stop").
--   2. kind 'guard' rows blank out known harmless uses of opt-out words ("don't stop",
--      "stop by", "bus stop", "wrong number of windows", "unsubscribe from what").
--   3. kind 'phrase' rows match anywhere in what is left; kind 'keyword' rows only when the whole
--      message has at most max_words words (a keyword inside a short message: "stop please",
--      "no. stop.", but not a long message that happens to contain "stop").
-- Patterns are PostgreSQL regular expressions (ARE) over the normalised text: words separated by
-- one space, \m and \M for word starts and ends, ^ and $ for the whole message.

create table private.opt_out_phrases (
  id integer generated always as identity primary key,
  kind text not null check (kind in ('phrase', 'keyword', 'guard')),
  -- The check compiles the pattern (an invalid one is refused) and refuses one matching the empty text.
  pattern text not null unique check ('' !~ pattern),
  language text not null default 'en' check (language ~ '^[a-z]{2}$'),
  max_words integer check (max_words > 0),
  reason text not null check (length(reason) between 1 and 300),
  example text,
  created_at timestamptz not null default now(),
  check ((kind = 'keyword') = (max_words is not null))
);
comment on table private.opt_out_phrases is
  'The deterministic opt-out rules read by private.opt_out_match: regular expressions over the normalised '
  'inbound text (private.opt_out_normalise), each with the reason it exists. Maintained as data: add a row '
  'to catch a new form of "stop", or a guard to stop a harmless one being read as an opt-out.';
comment on column private.opt_out_phrases.kind is
  'phrase: an opt-out anywhere in the message. keyword: an opt-out word that counts only in a message of at '
  'most max_words words. guard: a harmless use of an opt-out word, blanked out before phrases and keywords.';
comment on column private.opt_out_phrases.pattern is
  'ARE regular expression over the normalised text (lower-case ASCII words separated by one space).';
comment on column private.opt_out_phrases.max_words is 'keyword only: the longest message (in words) it applies to.';
comment on column private.opt_out_phrases.example is 'A message the rule is for (documentation and tests).';

alter table private.opt_out_phrases enable row level security;

create function private.opt_out_normalise(p_text text) returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select trim(regexp_replace(
    regexp_replace(
      regexp_replace(
        lower(translate(
          coalesce(p_text, ''),
          'áàâäãåéèêëíìîïóòôöõúùûüñçłąęśżźćńŵŷÁÀÂÄÃÅÉÈÊËÍÌÎÏÓÒÔÖÕÚÙÛÜÑÇŁĄĘŚŻŹĆŃŴŶ',
          'aaaaaaeeeeiiiiooooouuuunclaeszzcnwyaaaaaaeeeeiiiiooooouuuunclaeszzcnwy'
        )),
        '[''’‘`´]', '', 'g'
      ),
      '[^a-z0-9]+', ' ', 'g'
    ),
    '([a-z])\1{2,}', '\1', 'g'
  ))
$$;
comment on function private.opt_out_normalise(text) is
  'The inbound text as the opt-out rules read it: accents folded, lower case, apostrophes dropped, '
  'punctuation/emoji/whitespace one space, letters repeated 3+ times folded ("STOOOP!! 😡" -> "stop").';

create type private.opt_out_prepare as (guarded text, rules text, rule_ids integer []);

create function private.opt_out_prepare(p_body text) returns private.opt_out_prepare
language sql
stable
security definer
set search_path = ''
as $$
  -- Two regular expressions per message, not one per rule: the guards as one alternation, then
  -- every rule that applies at this length as one alternation. The combined texts repeat across messages (one per message length up to the longest  -- noqa: LT05
  -- max_words), so PostgreSQL's compiled-regex cache keeps them.
  with n as (
    select private.opt_out_normalise(p_body) as t
  ),
  w as (
    select n.t, case when n.t = '' then 0 else array_length(string_to_array(n.t, ' '), 1) end as words
    from n
  ),
  g as (
    select
      w.words,
      coalesce(
        (select regexp_replace(w.t, string_agg('(?:' || p.pattern || ')', '|' order by p.id), ' ', 'g')
         from private.opt_out_phrases p where p.kind = 'guard'),
        w.t
      ) as t
    from w
  )
  select row(g.t, string_agg('(?:' || p.pattern || ')', '|' order by p.id), array_agg(p.id order by p.id))::private.opt_out_prepare  -- noqa: LT05
  from g
  left join private.opt_out_phrases p
    on p.kind in ('phrase', 'keyword') and (p.max_words is null or g.words <= p.max_words)
  group by g.t
$$;
comment on function private.opt_out_prepare(text) is
  'The inbound text normalised with the guards blanked out, and the opt-out rules that apply at its length '
  '(rule_ids) as one regular expression.';

create function private.is_opt_out_text(p_body text) returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(x.guarded ~ x.rules, false) from private.opt_out_prepare(p_body) x
$$;
comment on function private.is_opt_out_text(text) is
  'True when an inbound text is an opt-out by the phrase set (private.opt_out_phrases). The fast test: '
  'private.opt_out_match also names the rule.';

create function private.opt_out_match(p_body text) returns setof private.opt_out_phrases
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v private.opt_out_prepare;
  v_rule private.opt_out_phrases;
begin
  -- One combined test first (fast). Only a text that matches is tried rule by rule, in id order,
  -- to name the rule (regexp_match's capture groups over the combined expression cost more).
  select x.* into v from private.opt_out_prepare(p_body) x;
  if v.rules is null or not v.guarded ~ v.rules then
    return;
  end if;
  for v_rule in
    select p.* from private.opt_out_phrases p where p.id = any (v.rule_ids) order by p.id
  loop
    if v.guarded ~ v_rule.pattern then
      return next v_rule;
      return;
    end if;
  end loop;
end
$$;
comment on function private.opt_out_match(text) is
  'The opt-out rule an inbound text matches (guards applied first), or no row. Used by '
  'private.ingest_inbound_sms in every AI mode.';

revoke all on table private.opt_out_phrases from public, anon, authenticated;
grant select, insert, update, delete on table private.opt_out_phrases to service_role;
comment on type private.opt_out_prepare is 'private.opt_out_prepare''s result: guarded text, combined rules, their ids.';
revoke all on function private.opt_out_normalise(text), private.opt_out_prepare(text), private.is_opt_out_text(text),
  private.opt_out_match(text)
from public, anon, authenticated;
grant execute on function private.opt_out_normalise(text), private.opt_out_prepare(text), private.is_opt_out_text(text),
  private.opt_out_match(text)
to service_role;
