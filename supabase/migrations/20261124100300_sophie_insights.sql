-- Sophie's insights: the minimal table the lead detail (GET /api/leads/[id]) reads. The
-- Sophie issue fills it (review jobs) and adds the agree/disagree/dismiss flow; for now only
-- trusted roles write it, members read their client's rows of datasets they may see.

create type public.insight_severity as enum ('critical', 'urgent', 'warning', 'suggestion', 'info');
create type public.insight_status as enum ('pending', 'viewed', 'approved_and_learned', 'dismissed', 'taught_sophie');

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
