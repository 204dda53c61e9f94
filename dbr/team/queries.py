"""The team SQL in one place; single function calls go through dbr.db.call / call_as instead."""

from __future__ import annotations

# POST users, before Supabase Auth is called (as the inviter): 'new' or 'resend' (or the
# refusal), and the inviter's client. (email, role, permissions, allowed dataset ids)
INVITE_CHECK = """
select private.invite_check(%s, %s, %s, %s::uuid[]) as kind,
       private.current_client_id() as client_id
"""

# The invited membership, written as the inviter so RLS and the member triggers check it.
INSERT_INVITED_MEMBER = """
insert into public.client_members (client_id, user_id, email, first_name, last_name, role, status,
  can_view_all_leads, can_edit_lessons, can_push_to_live, can_manage_users, allowed_dataset_ids)
values (%s, %s, %s, %s, %s, %s, 'invited', %s, %s, %s, %s, %s::uuid[])
"""

# A member in GET users' shape, by user id or by e-mail (as the caller: RLS applies).
MEMBER_BY_USER = """
select private.member_json(m) as j from public.client_members m where m.user_id = %s
"""
MEMBER_BY_EMAIL = """
select private.member_json(m) as j from public.client_members m where lower(m.email) = %s
"""

# The Cal.com credentials of the caller's client (for the Cal.com routes), by user id.
CALLER_CALCOM = """
select private.integration_credentials(m.client_id, 'calcom') as c
from public.client_members m
where m.user_id = %s and m.status = 'active'
"""

# What the integration checks need of a client: its sender and settings.
CLIENT_SENDER = """
select c.twilio_phone_number, c.twilio_messaging_service_sid, c.settings
from public.clients c where c.id = %s
"""
