-- GET /api/leads: the lead list with filters, search (names, email, phone in any format),
-- sort and the seed's pagination object.

create function private.like_escape(p_text text) returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select replace(replace(replace(p_text, '\', '\\'), '%', '\%'), '_', '\_')
$$;
comment on function private.like_escape(text) is 'Escapes LIKE wildcards (%, _ and backslash) so text matches literally.';

create function private.lead_search_conditions(p_search text) returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_term text := lower(btrim(p_search));
  v_words text [];
  v_word text;
  v_sql text := '';
begin
  if v_term is null or v_term = '' then
    return '';
  end if;
  if length(v_term) > 200 then
    perform private.raise_error(400, 'search is longer than 200 characters');
  end if;
  -- A term made only of phone characters is one number however it is spaced:
  -- "+44 (0)7700 900-123" -> "447700900123"; "07700 900123" -> "7700900123".
  if v_term ~ '^[0-9+()./ -]+$' and v_term ~ '[0-9]' then
    v_words := array[regexp_replace(v_term, '\s', '', 'g')];
  else
    v_words := regexp_split_to_array(v_term, '\s+');
  end if;
  foreach v_word in array v_words loop
    if v_word ~ '^[0-9+()./-]+$' and v_word ~ '[0-9]' then
      -- Phone digits: drop an international "00" or a national trunk "0", which never
      -- appear in the stored E.164 digits ("+44 (0)..." also loses the bracketed 0).
      v_word := regexp_replace(regexp_replace(v_word, '\(0\)', ''), '[^0-9]', '', 'g');
      v_word := coalesce(nullif(ltrim(v_word, '0'), ''), v_word);
    end if;
    if v_word ~ '^[^@]{3,}@.' then
      -- An email: the domain's trigrams ("gma", "com", ...) are in most rows and make the
      -- index scan slow, so the index looks for "local@" and the row check for the whole.
      v_sql := v_sql || format(
        ' and l.search_text like %L and strpos(l.search_text, %L) > 0',
        '%' || private.like_escape(split_part(v_word, '@', 1)) || '@%', v_word
      );
    else
      v_sql := v_sql || format(' and l.search_text like %L', '%' || private.like_escape(v_word) || '%');
    end if;
  end loop;
  return v_sql;
end
$$;
comment on function private.lead_search_conditions(text) is
  'SQL conditions (each a trigram-indexable LIKE on leads.search_text) for a search box term: '
  'every word must match; a phone-like term is matched by its digits without 00 / trunk-0 prefixes.';

-- GET /api/leads -----------------------------------------------------------------------------
-- The query runs in a security-definer function with the tenancy rule written out, because
-- under RLS Postgres may not use an index for a condition whose operator is not leakproof
-- (LIKE, lower(), enum equality): the trigram index would be ignored and every search would
-- scan the client's leads. The rule applied is exactly the leads select policy: the caller's
-- client, and only the datasets they may see (tests compare both for restricted members).
create function private.list_leads_page(
  p_dataset_id uuid,
  p_status public.lead_status,
  p_sentiment public.lead_sentiment,
  p_search text,
  p_archived boolean,
  p_manual_mode boolean,
  p_page integer,
  p_limit integer,
  p_sort text,
  p_order text
) returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_client uuid := private.require_member();
  v_visible uuid [] := private.visible_dataset_ids();
  v_assigned_only boolean := private.sees_only_assigned_leads();
  v_page integer := coalesce(p_page, 1);
  v_limit integer := coalesce(p_limit, 50);
  v_order text := lower(coalesce(p_order, 'desc'));
  v_sort text;
  v_search text;
  v_filters text := '';
  v_scope text := ' and l.client_id = $6';
  v_total bigint;
  v_rows jsonb;
begin
  if v_page < 1 then
    perform private.raise_error(400, format('page must be 1 or more (got %s)', v_page));
  end if;
  if v_limit not between 1 and 100 then
    perform private.raise_error(400, format('limit must be between 1 and 100 (got %s)', v_limit));
  end if;
  if v_order not in ('asc', 'desc') then
    perform private.raise_error(400, format('order must be asc or desc (got %s)', p_order));
  end if;
  v_sort := case coalesce(p_sort, 'created')
    when 'created' then 'l.created_at %1$s, l.id %1$s'
    when 'name' then 'lower(l.last_name) %1$s nulls last, lower(l.first_name) %1$s nulls last, l.id %1$s'
    when 'status' then 'l.contact_status %1$s, l.created_at desc, l.id desc'
    when 'reply_date' then 'l.reply_received_at %1$s nulls last, l.created_at desc, l.id desc'
  end;
  if v_sort is null then
    perform private.raise_error(400, format('sort must be one of name, status, reply_date, created (got %s)', p_sort));
  end if;
  v_sort := format(v_sort, v_order);
  if p_dataset_id is not null then
    -- One check of the dataset instead of a tenancy test per lead: a visible dataset's
    -- leads are all the caller's (composite foreign key), an invisible one lists nothing.
    if not exists (
      select from public.datasets d
      where d.id = p_dataset_id and d.client_id = v_client and (v_visible is null or d.id = any(v_visible))
    ) then
      return jsonb_build_object('leads', '[]'::jsonb, 'pagination', jsonb_build_object(
        'page', v_page, 'limit', v_limit, 'total', 0, 'pages', 0
      ));
    end if;
    v_scope := '';
  elsif v_visible is not null then
    v_scope := v_scope || ' and l.dataset_id = any($7)';
  end if;
  if v_assigned_only then
    -- A member without can_view_all_leads and without a dataset list: its assigned leads only.
    v_scope := v_scope || ' and l.assigned_to = auth.uid()';
  end if;

  -- Only the filters given become SQL, so every call gets a plan for exactly its filters.
  if p_dataset_id is not null then v_filters := v_filters || ' and l.dataset_id = $1'; end if;
  if p_status is not null then v_filters := v_filters || ' and l.contact_status = $2'; end if;
  if p_sentiment is not null then v_filters := v_filters || ' and l.lead_sentiment = $3'; end if;
  if p_archived is not null then v_filters := v_filters || ' and l.archived = $4'; end if;
  if p_manual_mode is not null then v_filters := v_filters || ' and l.manual_mode = $5'; end if;
  v_search := private.lead_search_conditions(p_search);

  if v_search <> '' then
    -- A search: the trigram index finds the matches and each is rechecked on its row, so
    -- one pass collects them; the count and the sorted page both come from that set,
    -- instead of a second, separately planned scan for the page.
    execute format(
      $q$
      with m as materialized (
        select l.id, l.first_name, l.last_name, l.phone_number, l.email, l.postcode,
          l.contact_status, l.lead_sentiment, l.latest_lead_reply, l.reply_received_at,
          l.call_booked, l.call_booked_time, l.manual_mode, l.archived, l.created_at
        from public.leads l
        where true %s
      )
      select (select count(*) from m),
        (select coalesce(jsonb_agg(to_jsonb(l)), '[]'::jsonb)
         from (select * from m l order by %s limit %s offset %s) l)
      $q$,
      v_scope || v_filters || v_search, v_sort, v_limit, (v_page::bigint - 1) * v_limit
    ) into v_total, v_rows
    using p_dataset_id, p_status, p_sentiment, p_archived, p_manual_mode, v_client, v_visible;
  else
    if v_filters in ('', ' and l.dataset_id = $1') and not v_assigned_only then
      -- No filter but the dataset: the exact count is the datasets' trigger-kept counter
      -- (a lead is visible exactly when its dataset is, unless the caller sees only its
      -- assigned leads), not a scan of the leads.
      execute 'select coalesce(sum(d.total_leads), 0) from public.datasets d'
        || ' where d.client_id = $2 and ($1 is null or d.id = $1) and ($3 is null or d.id = any($3))'
      into v_total using p_dataset_id, v_client, v_visible;
    else
      -- Filters of a dataset are counted from the covering index (index-only scan).
      execute 'select count(*) from public.leads l where true' || v_scope || v_filters
      into v_total using p_dataset_id, p_status, p_sentiment, p_archived, p_manual_mode, v_client, v_visible;
    end if;
    execute format(
      $q$
      select coalesce(jsonb_agg(jsonb_build_object(
          'id', l.id, 'first_name', l.first_name, 'last_name', l.last_name,
          'phone_number', l.phone_number, 'email', l.email, 'postcode', l.postcode,
          'contact_status', l.contact_status, 'lead_sentiment', l.lead_sentiment,
          'latest_lead_reply', l.latest_lead_reply, 'reply_received_at', l.reply_received_at,
          'call_booked', l.call_booked, 'call_booked_time', l.call_booked_time,
          'manual_mode', l.manual_mode, 'archived', l.archived, 'created_at', l.created_at
        )), '[]'::jsonb)
      from (
        select l.* from public.leads l
        where true %s
        order by %s
        limit %s offset %s
      ) l
      $q$,
      v_scope || v_filters, v_sort, v_limit, (v_page::bigint - 1) * v_limit
    ) into v_rows using p_dataset_id, p_status, p_sentiment, p_archived, p_manual_mode, v_client, v_visible;
  end if;

  return jsonb_build_object(
    'leads', v_rows,
    'pagination', jsonb_build_object(
      'page', v_page, 'limit', v_limit, 'total', v_total, 'pages', ceil(v_total::numeric / v_limit)::bigint
    )
  );
end
$$;
comment on function private.list_leads_page(
  uuid, public.lead_status, public.lead_sentiment, text, boolean, boolean, integer, integer, text, text
) is
  'Body of public.list_leads. Security definer so indexes serve non-leakproof conditions; applies the '
  'leads select policy explicitly (caller''s client, visible datasets only).';

create function public.list_leads(
  dataset_id uuid default null,
  status public.lead_status default null,
  sentiment public.lead_sentiment default null,
  search text default null,
  archived boolean default null,
  manual_mode boolean default null,
  page integer default 1,
  "limit" integer default 50,
  sort text default 'created',
  "order" text default 'desc'
) returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select private.list_leads_page(
    dataset_id, status, sentiment, search, archived, manual_mode, page, "limit", sort, "order"
  )
$$;
comment on function public.list_leads(
  uuid, public.lead_status, public.lead_sentiment, text, boolean, boolean, integer, integer, text, text
) is
  'GET /api/leads: visible leads filtered by dataset, status, sentiment, archived, manual mode and a '
  'search over names, email and phone (any format); sorted by name | status | reply_date | created; '
  'page >= 1, limit 1..100. Returns {"leads": [...], "pagination": {page, limit, total, pages}}.';

revoke all on function
  private.list_leads_page(uuid, public.lead_status, public.lead_sentiment, text, boolean, boolean, integer, integer, text, text),
  private.like_escape(text), private.lead_search_conditions(text),
  public.list_leads(uuid, public.lead_status, public.lead_sentiment, text, boolean, boolean, integer, integer, text, text)
from public, anon;
grant execute on function
  private.list_leads_page(uuid, public.lead_status, public.lead_sentiment, text, boolean, boolean, integer, integer, text, text),
  private.like_escape(text), private.lead_search_conditions(text),
  public.list_leads(uuid, public.lead_status, public.lead_sentiment, text, boolean, boolean, integer, integer, text, text)
to authenticated, service_role;
