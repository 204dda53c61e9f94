-- Pure helpers of the send rules: phone numbers as Twilio sends them, keywords, the opt-out
-- line, template merge fields, the schedule window in a lead's local time (DST-correct) and
-- the forward-only order of message statuses.

-- small pure helpers -----------------------------------------------------------------------
create function private.sms_e164(p_raw text) returns text
language sql
immutable
set search_path = ''
as $$
  -- Twilio sends E.164. Tolerates separators, a 00 prefix, and a '+' lost to form decoding.
  select case
    when v ~ '^\+[1-9][0-9]{6,14}$' then v
    when v ~ '^[1-9][0-9]{9,14}$' then '+' || v
  end
  from (
    select case when r like '00%' then '+' || substr(r, 3) else r end as v
    from (select regexp_replace(coalesce(p_raw, ''), '[[:space:]().-]', '', 'g') as r) x
  ) y
$$;
comment on function private.sms_e164(text) is 'A phone number as E.164, or null when it is not one.';

create function private.has_opt_out_instruction(p_text text) returns boolean
language sql
immutable
set search_path = ''
as $$
  select coalesce(p_text ~* '((reply|text|txt|send|respond)( with)?[[:space:]]+["''“]?(stop|end|unsubscribe))|opt[- ]?out|unsubscribe', false)
$$;
comment on function private.has_opt_out_instruction(text) is
  'True when a text already tells the reader how to opt out ("Reply STOP...", "opt out", "unsubscribe").';

create function private.sms_keyword(p_body text) returns text
language sql
immutable
set search_path = ''
as $$
  -- The whole message, trimmed of spaces and punctuation, upper-cased: the way carriers and
  -- Twilio read keywords ("stop", " Stop! ", "STOP." all count; "please stop" does not).
  select case
    when k in ('STOP', 'STOPALL', 'STOP ALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'OPTOUT', 'OPT OUT', 'REVOKE')
      then 'STOP'
    when k in ('START', 'UNSTOP', 'YES') then 'START'
    when k in ('HELP', 'INFO') then 'HELP'
  end
  from (
    select upper(regexp_replace(
      regexp_replace(coalesce(p_body, ''), '^[[:space:][:punct:]]+|[[:space:][:punct:]]+$', '', 'g'),
      '[[:space:]]+', ' ', 'g'
    )) as k
  ) x
$$;
comment on function private.sms_keyword(text) is
  'STOP, START or HELP when an inbound body is one of the opt-out, opt-in or help keywords; else null.';

create function private.client_opt_out_line(p_settings jsonb) returns text
language sql
immutable
set search_path = ''
as $$
  select coalesce(nullif(trim(p_settings ->> 'opt_out_line'), ''), 'Reply STOP to opt out')
$$;

create function private.with_opt_out_line(p_content text, p_line text) returns text
language sql
immutable
set search_path = ''
as $$
  select case
    when private.has_opt_out_instruction(p_content) then p_content
    when length(p_content) + length(p_line) + 1 <= 1600 then p_content || E'\n' || p_line
    else left(p_content, 1599 - length(p_line)) || E'\n' || p_line
  end
$$;
comment on function private.with_opt_out_line(text, text) is
  'Appends the opt-out line unless the text already has an opt-out instruction (keeps within 1,600 chars).';

create function private.render_template(p_template text, p_lead public.leads, p_company text) returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  v_rest text := coalesce(p_template, '');
  v_out text := '';
  v_open integer;
  v_close integer;
  v_inner text;
  v_key text;
  v_val text;
begin
  -- {field} or {field|fallback}. Known fields come from the lead and the client; anything else
  -- is looked up in the lead's custom_fields. An empty field takes the fallback ("there" for
  -- names when none is given), and the spacing around a dropped word is tidied. A scan with
  -- strpos, not a regexp_matches query: the tick renders thousands of messages per statement.
  loop
    v_open := strpos(v_rest, '{');
    exit when v_open = 0;
    v_close := strpos(substr(v_rest, v_open + 1), '}');
    exit when v_close = 0;
    v_inner := substr(v_rest, v_open + 1, v_close - 1);
    if v_inner !~ '^[[:space:]]*[A-Za-z_][A-Za-z0-9_]*[[:space:]]*(\|[^{}]*)?$' then
      v_out := v_out || left(v_rest, v_open);
      v_rest := substr(v_rest, v_open + 1);
      continue;
    end if;
    v_key := trim(split_part(v_inner, '|', 1));
    v_val := case lower(v_key)
      when 'first_name' then p_lead.first_name
      when 'last_name' then p_lead.last_name
      when 'full_name' then concat_ws(' ', p_lead.first_name, p_lead.last_name)
      when 'name' then concat_ws(' ', p_lead.first_name, p_lead.last_name)
      when 'company_name' then p_company
      when 'company' then p_company
      when 'business_name' then p_company
      when 'email' then p_lead.email
      when 'postcode' then p_lead.postcode
      when 'phone_number' then p_lead.phone_number
      else coalesce(p_lead.custom_fields ->> v_key, p_lead.custom_fields ->> lower(v_key))
    end;
    v_val := coalesce(
      nullif(trim(v_val), ''),
      case when strpos(v_inner, '|') > 0 then trim(substr(v_inner, strpos(v_inner, '|') + 1)) end,
      case when lower(v_key) in ('first_name', 'name', 'full_name') then 'there' end,
      ''
    );
    v_out := v_out || left(v_rest, v_open - 1) || v_val;
    v_rest := substr(v_rest, v_open + v_close + 1);
  end loop;
  v_out := v_out || v_rest;
  if strpos(v_out, '  ') > 0 or v_out ~ '[ \t][,.!?;:]' then
    v_out := regexp_replace(v_out, '[ \t]{2,}', ' ', 'g');
    v_out := regexp_replace(v_out, '[ \t]+([,.!?;:])', '\1', 'g');
  end if;
  return trim(v_out);
end
$$;
comment on function private.render_template(text, public.leads, text) is
  'Fills {first_name}, {last_name}, {full_name}, {company_name}, {email}, {postcode} and custom fields, '
  'with {field|fallback} for empty values ("Hi {first_name|there}" -> "Hi there").';

-- schedule window ------------------------------------------------------------------------
create function private.in_send_window(
  p_at timestamptz, p_tz text, p_hours_start integer, p_hours_end integer, p_days text []
) returns boolean
language sql
stable
set search_path = ''
as $$
  select extract(hour from l) >= p_hours_start
    and extract(hour from l) < p_hours_end
    and (array['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'])[extract(isodow from l)::integer] = any (p_days)
  from (select p_at at time zone p_tz as l) x
$$;
comment on function private.in_send_window(timestamptz, text, integer, integer, text []) is
  'True when p_at falls inside the sending window [hours_start, hours_end) on an allowed day, in p_tz local time.';

create function private.next_send_window(
  p_at timestamptz, p_tz text, p_hours_start integer, p_hours_end integer, p_days text []
) returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  v_local timestamp := p_at at time zone p_tz;
  v_day date := v_local::date;
  v_candidate timestamptz;
begin
  if private.in_send_window(p_at, p_tz, p_hours_start, p_hours_end, p_days) then
    return p_at;
  end if;
  -- The next allowed day's opening hour, converted from local wall time to an instant in that
  -- zone: a DST change between now and then moves the UTC instant, never the local hour.
  for i in 0..7 loop
    v_candidate := ((v_day + i) + make_interval(hours => p_hours_start)) at time zone p_tz;
    if v_candidate > p_at
       and (array['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'])[extract(isodow from v_day + i)::integer] = any (p_days) then
      return v_candidate;
    end if;
  end loop;
  return null;
end
$$;
comment on function private.next_send_window(timestamptz, text, integer, integer, text []) is
  'The first instant at or after p_at inside the sending window, evaluated in p_tz (DST-correct).';

-- message status: forward only -----------------------------------------------------------
create function private.message_status_rank(p_status public.message_status) returns integer
language sql
immutable
set search_path = ''
as $$
  select case p_status
    when 'draft' then 0 when 'pending' then 1 when 'sending' then 2 when 'queued' then 3
    when 'sent' then 4 when 'delivered' then 5 when 'undelivered' then 5 when 'failed' then 5
    when 'canceled' then 6 when 'received' then 6
  end
$$;
comment on function private.message_status_rank(public.message_status) is
  'Order of outbound states; a message only moves to a higher rank. Rank 5+ states are final.';

create function private.twilio_message_status(p_status text) returns public.message_status
language sql
immutable
set search_path = ''
as $$
  select case lower(p_status)
    when 'accepted' then 'queued' when 'scheduled' then 'queued' when 'queued' then 'queued'
    when 'sending' then 'queued' when 'sent' then 'sent' when 'delivered' then 'delivered'
    when 'read' then 'delivered' when 'undelivered' then 'undelivered' when 'failed' then 'failed'
    when 'canceled' then 'failed'
  end::public.message_status
$$;
comment on function private.twilio_message_status(text) is
  'Twilio''s message status mapped to ours; null for statuses that do not concern an outbound message.';

revoke all on function private.sms_e164(text), private.has_opt_out_instruction(text), private.sms_keyword(text),
  private.client_opt_out_line(jsonb), private.with_opt_out_line(text, text),
  private.render_template(text, public.leads, text),
  private.in_send_window(timestamptz, text, integer, integer, text []),
  private.next_send_window(timestamptz, text, integer, integer, text []),
  private.message_status_rank(public.message_status), private.twilio_message_status(text)
  from public, anon, authenticated;
grant execute on function private.sms_e164(text), private.has_opt_out_instruction(text), private.sms_keyword(text),
  private.render_template(text, public.leads, text),
  private.in_send_window(timestamptz, text, integer, integer, text []),
  private.next_send_window(timestamptz, text, integer, integer, text [])
  to service_role;
