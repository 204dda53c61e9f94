"""The bookings SQL in one place (procrastinate's queries.sql pattern); single function calls
go through dbr.db.call_as instead."""

from __future__ import annotations

# The lead as the booking needs it, with its client's Cal.com settings and whether the
# caller may change it (run as the person booking, RLS decides what they see).
LEAD = """
select l.id, l.client_id, l.first_name, l.last_name, l.email, l.phone_number,
       coalesce(l.timezone, c.timezone) as time_zone, l.cal_booking_id, l.call_booked,
       l.call_booked_time, coalesce(c.settings -> 'calcom', '{}'::jsonb) as calcom,
       private.can_write() as can_write
from public.leads l join public.clients c on c.id = l.client_id
where l.id = %s
"""

# The accepted booking with this Cal.com uid (a retried request for the call already booked).
ACCEPTED_BOOKING = """
select id, cal_booking_uid, start_time, end_time, booking_url
from public.bookings where cal_booking_uid = %s and status = 'accepted'
"""

# Tells the lead's staff that a booking attempt failed: (start time, Cal.com's message,
# start time, Cal.com's status, Cal.com's code, lead id); returns the notifications made.
NOTIFY_BOOKING_FAILED = """
select private.notify_staff(
    l.client_id, 'Booking failed',
    private.lead_display_name(l) || ' wanted a call'
      || coalesce(
           ' at ' || private.booking_when(l.client_id, %s::timestamptz), '')
      || ' but Cal.com refused or failed (' || %s
      || '). Please book it by hand.',
    'immediate',
    '/leads/' || l.id,
    jsonb_build_object('event', 'booking_failed', 'lead_id', l.id,
                       'start_time', %s::timestamptz,
                       'calcom_status', %s::integer, 'calcom_code', %s::text),
    l.dataset_id) as n
from public.leads l where l.id = %s
"""
