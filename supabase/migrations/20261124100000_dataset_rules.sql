-- Dataset rules enforced whatever path writes a dataset (PostgREST PATCH, RPC, service):
-- campaign status moves only along the allowed transitions, and the campaign dates are ordered.

create function private.campaign_transition_allowed(
  p_from public.campaign_status, p_to public.campaign_status
) returns boolean
language sql
immutable
set search_path = ''
as $$
  select p_from = p_to
    or (p_from, p_to) in (
      ('draft'::public.campaign_status, 'active'::public.campaign_status),
      ('active', 'paused'), ('active', 'completed'),
      ('paused', 'active'), ('paused', 'completed')
    )
$$;
comment on function private.campaign_transition_allowed(public.campaign_status, public.campaign_status) is
  'Campaign state machine: draft -> active; active -> paused | completed; paused -> active | completed; '
  'completed is final. Staying in the same status is always allowed.';

create function private.validate_dataset_change() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'UPDATE' and not private.campaign_transition_allowed(old.campaign_status, new.campaign_status) then
    perform private.raise_error(400, format('a campaign cannot go from %s to %s', old.campaign_status, new.campaign_status),
      jsonb_build_object('hint', 'Allowed: draft -> active, active -> paused or completed, paused -> active or completed; '
        'completed is final.'));
  end if;
  if new.campaign_end_date < new.campaign_start_date then
    perform private.raise_error(400, format('campaign_end_date (%s) is before campaign_start_date (%s)',
      new.campaign_end_date, new.campaign_start_date));
  end if;
  return new;
end
$$;
comment on function private.validate_dataset_change() is
  'Trigger: refuses invalid campaign status transitions and an end date before the start date (400).';

create trigger datasets_validate
before insert or update of campaign_status, campaign_start_date, campaign_end_date on public.datasets
for each row execute function private.validate_dataset_change();

revoke all on function private.campaign_transition_allowed(public.campaign_status, public.campaign_status)
from public, anon;
grant execute on function private.campaign_transition_allowed(public.campaign_status, public.campaign_status)
to authenticated, service_role;
