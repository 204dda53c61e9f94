-- analytics_overview and campaign_progress: the API contract's shape, figures on a known fixture,
-- zero days and DST-correct local days, the counters' answer equal to a count over the raw
-- rows, and who sees what (restricted members, assigned-leads-only members, other tenants).
begin;
set local search_path = public, extensions;
set local client_min_messages = warning;
select plan(40);

select * from tests.create_world() \gset
-- Client A works on London time. "Now" is fixed: 2026-03-30 12:00Z = 13:00 BST, the day
-- after the clocks went forward.
\set now '''2026-03-30 12:00Z'''
delete from messages where id = :'msg_a1';

-- Dataset A1: 10 leads. 8 had their M1 (4 on 2026-03-29, 4 on 2026-03-25); of those 4 replied,
-- 2 booked, 1 converted; 1 lead is HOT, 1 opted out.
insert into leads (client_id, dataset_id, phone_number, contact_status, lead_sentiment, m1_sent_at, reply_received_at,
  call_booked, opted_out, sequence_step)
select :'client_a', :'ds_a1', '+4478000000' || lpad(i::text, 2, '0'),
  (array['REPLIED', 'CALL_BOOKED', 'CONVERTED', 'HOT', 'M1_SENT', 'M1_SENT', 'OPTED_OUT', 'M1_SENT', 'READY', 'READY'])[i]::lead_status,
  (array['POSITIVE', 'POSITIVE', 'POSITIVE', 'HOT', null, null, 'NEGATIVE', null, null, null])[i]::lead_sentiment,
  case when i <= 4 then timestamptz '2026-03-29 09:00Z' when i <= 8 then timestamptz '2026-03-25 09:00Z' end,
  case when i <= 3 or i = 7 then timestamptz '2026-03-29 10:00Z' end,
  i in (2, 3), i = 7, case when i in (5, 6) then 2 when i <= 8 then 1 else 0 end
from generate_series(1, 10) i;
-- Sequence messages: 8 M1 (6 delivered, 1 undelivered, 1 failed), 2 M2 queued; 2 AI answers
-- sent; 4 replies; one on 2026-03-29 at 23:30Z, which is 00:30 BST on the 30th.
insert into messages (client_id, dataset_id, conversation_id, lead_id, direction, message_category, status, content,
  sent_at, received_at)
select l.client_id, l.dataset_id, tests.create_conversation(l.id), l.id, x.direction::message_direction,
  x.category::message_category, x.status::message_status, 'm', x.sent_at::timestamptz, x.received_at::timestamptz
from (select l.*, row_number() over (order by l.phone_number) as i from leads l where l.dataset_id = :'ds_a1'
  and l.phone_number like '+4478%') l
join (values
  (1, 'outbound', 'm1', 'delivered', '2026-03-29 09:00Z', null), (2, 'outbound', 'm1', 'delivered', '2026-03-29 09:00Z', null),
  (3, 'outbound', 'm1', 'delivered', '2026-03-29 09:00Z', null), (4, 'outbound', 'm1', 'delivered', '2026-03-29 09:00Z', null),
  (5, 'outbound', 'm1', 'delivered', '2026-03-25 09:00Z', null), (6, 'outbound', 'm1', 'delivered', '2026-03-25 09:00Z', null),
  (7, 'outbound', 'm1', 'undelivered', '2026-03-25 09:00Z', null), (8, 'outbound', 'm1', 'failed', null, null),
  (5, 'outbound', 'm2', 'pending', null, null), (6, 'outbound', 'm2', 'queued', null, null),
  (1, 'outbound', 'ai_response', 'sent', '2026-03-29 10:05Z', null), (2, 'outbound', 'ai_response', 'delivered', '2026-03-29 23:40Z', null),
  (1, 'inbound', 'lead_reply', 'received', null, '2026-03-29 10:00Z'), (2, 'inbound', 'lead_reply', 'received', null, '2026-03-29 23:30Z'),
  (3, 'inbound', 'lead_reply', 'received', null, '2026-03-29 10:00Z'), (7, 'inbound', 'lead_reply', 'received', null, '2026-03-29 10:00Z')
) x (i, direction, category, status, sent_at, received_at) on x.i = l.i;
-- Two bookings made on 2026-03-29 (one later cancelled) and one on 2026-03-30.
insert into bookings (client_id, dataset_id, lead_id, cal_booking_uid, start_time, end_time, source, status, created_at)
select l.client_id, l.dataset_id, l.id, 'uid-' || x.n, '2026-04-02 10:00Z', '2026-04-02 10:30Z', 'webhook',
  x.status::booking_status, x.created_at::timestamptz
from (values (1, '+447800000002', 'accepted', '2026-03-29 11:00Z'), (2, '+447800000003', 'cancelled', '2026-03-29 11:00Z'),
  (3, '+447800000003', 'accepted', '2026-03-30 08:00Z')) x (n, phone, status, created_at)
join leads l on l.phone_number = x.phone;

select tests.authenticate_as(:'a_admin');
select private.analytics_overview(:'ds_a1', 'week', :now) as o \gset
select is(
  array(select jsonb_object_keys(:'o'::jsonb) order by 1),
  array['metrics', 'sentiment_breakdown', 'status_breakdown', 'trends'], 'overview: the API contract''s top-level keys'
);
select is(
  array(select jsonb_object_keys(:'o'::jsonb -> 'metrics') order by 1),
  array['active_leads', 'calls_booked', 'conversion_rate', 'converted', 'hot_leads', 'messages_sent',
    'replies_received', 'reply_rate', 'total_leads'],
  'overview: the API contract''s metrics'
);
select is(
  :'o'::jsonb -> 'metrics' -> 'messages_sent',
  '{"m1": 7, "m2": 0, "m3": 0, "ai_responses": 2, "total": 9}'::jsonb,
  'messages_sent: handed to the carrier in the week (a failed M1 and queued M2s are not)'
);
select is((:'o'::jsonb -> 'metrics' ->> 'total_leads')::int, 11, 'total leads: the fixture''s 10 and the world''s one');
select is((:'o'::jsonb -> 'metrics' ->> 'replies_received')::int, 4, 'replies received in the week');
select is((:'o'::jsonb -> 'metrics' ->> 'reply_rate')::numeric, 50.0, 'reply rate: 4 of the 8 leads messaged');
select is((:'o'::jsonb -> 'metrics' ->> 'converted')::int, 1, 'converted: one lead of the cohort');
select is((:'o'::jsonb -> 'metrics' ->> 'conversion_rate')::numeric, 12.5, 'conversion rate: 1 of 8');
select is((:'o'::jsonb -> 'metrics' ->> 'calls_booked')::int, 2, 'calls booked: the two standing bookings');
select is((:'o'::jsonb -> 'metrics' ->> 'hot_leads')::int, 1, 'hot leads');
select is(
  :'o'::jsonb -> 'sentiment_breakdown',
  '{"POSITIVE": 3, "NEGATIVE": 1, "NEUTRAL": 0, "HOT": 1, "UNCLEAR": 0}'::jsonb,
  'every sentiment, zeros included'
);
select is(
  (select count(*) from jsonb_object_keys(:'o'::jsonb -> 'status_breakdown'))::int, 14, 'every status present'
);
select is(
  (:'o'::jsonb -> 'status_breakdown' ->> 'READY')::int, 3, 'status READY: two fixture leads and the world''s lead'
);
select is(
  (select array_agg(e ->> 'date' order by e ->> 'date') from jsonb_array_elements(:'o'::jsonb -> 'trends' -> 'daily_messages') e),
  array['2026-03-24', '2026-03-25', '2026-03-26', '2026-03-27', '2026-03-28', '2026-03-29', '2026-03-30'],
  'a week is the last 7 local days, today included'
);
select is(
  :'o'::jsonb -> 'trends' -> 'daily_messages',
  '[{"date": "2026-03-24", "count": 0}, {"date": "2026-03-25", "count": 3}, {"date": "2026-03-26", "count": 0},
    {"date": "2026-03-27", "count": 0}, {"date": "2026-03-28", "count": 0}, {"date": "2026-03-29", "count": 5},
    {"date": "2026-03-30", "count": 1}]'::jsonb,
  'daily messages with zero days; 23:40Z on the 29th is the 30th in London (BST)'
);
select is(
  :'o'::jsonb -> 'trends' -> 'daily_replies' -> 5, '{"date": "2026-03-29", "count": 3}'::jsonb,
  'daily replies: three on the 29th'
);
select is(
  :'o'::jsonb -> 'trends' -> 'daily_replies' -> 6, '{"date": "2026-03-30", "count": 1}'::jsonb,
  'daily replies: the 23:30Z reply counts on the 30th'
);
select is(
  :'o'::jsonb -> 'trends' -> 'daily_bookings',
  '[{"date": "2026-03-24", "count": 0}, {"date": "2026-03-25", "count": 0}, {"date": "2026-03-26", "count": 0},
    {"date": "2026-03-27", "count": 0}, {"date": "2026-03-28", "count": 0}, {"date": "2026-03-29", "count": 1},
    {"date": "2026-03-30", "count": 1}]'::jsonb,
  'daily bookings: standing bookings by the day they were made'
);

-- Periods.
select is(
  jsonb_array_length(private.analytics_overview(:'ds_a1', 'today', :now) -> 'trends' -> 'daily_messages'), 1,
  'today: one day'
);
select is(
  (private.analytics_overview(:'ds_a1', 'today', :now) -> 'metrics' ->> 'reply_rate')::numeric, 0.0,
  'today: nobody messaged today, so the rate is 0'
);
select is(
  jsonb_array_length(private.analytics_overview(:'ds_a1', 'month', :now) -> 'trends' -> 'daily_messages'), 30,
  'month: 30 days'
);
select is(
  (private.analytics_overview(null, 'all', :now) -> 'trends' -> 'daily_messages' -> 0 ->> 'date'),
  '2026-03-25', 'all: from the first day with data (the world''s messages are dated today)'
);

-- The counters' answer is the raw rows' answer, for every period and scope.
select is(
  (select count(*) from (values ('today'), ('week'), ('month'), ('all')) r (t), (values (null), (:'ds_a1'::uuid), (:'ds_a2'::uuid)) d (id)
    where private.analytics_overview(d.id, r.t, :now) is distinct from private.analytics_overview(d.id, r.t, :now, true))::int,
  0, 'the counters give the same overview as counting the raw rows'
);

-- Campaign progress.
select private.analytics_campaign_progress(:'ds_a1', :now) -> 'campaign_progress' as p \gset
select is(
  (:'p'::jsonb -> 'steps' -> 0) - 'step',
  '{"waiting": 3, "queued": 0, "sent": 0, "delivered": 6, "undelivered": 1, "failed": 1, "canceled": 0,
    "received": 8, "replies": 4, "reply_rate": 50.0, "opt_outs": 1, "opt_out_rate": 12.5}'::jsonb,
  'M1: two fixture leads and the world''s lead wait; 8 received; 4 replied, 1 opted out'
);
select is(
  (:'p'::jsonb -> 'steps' -> 1) - 'step',
  '{"waiting": 1, "queued": 2, "sent": 0, "delivered": 0, "undelivered": 0, "failed": 0, "canceled": 0,
    "received": 0, "replies": 0, "reply_rate": 0, "opt_outs": 0, "opt_out_rate": 0}'::jsonb,
  'M2: two queued (ours pending and Twilio''s queued); lead 8 waits (5 and 6 have theirs queued)'
);
select is((:'p'::jsonb -> 'totals' ->> 'delivery_error_rate')::numeric, 25.0, 'delivery errors: 2 of 8 M1s');
select is(:'p'::jsonb -> 'estimated_completion', 'null'::jsonb, 'no estimate for a draft campaign');
select is(:'p'::jsonb -> 'estimate' ->> 'reason', 'the campaign is draft', 'and it says why');
select tests.clear_authentication();
update datasets set campaign_status = 'active' where id = :'ds_a1';
update campaigns set started_at = '2026-03-30 11:00Z', rate_limit_messages_per_minute = 2, hours_start = 9, hours_end = 21,
  days = array['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], m2_delay_hours = 48, m3_delay_hours = 96
where dataset_id = :'ds_a1';
select tests.authenticate_as(:'a_admin');
select private.analytics_campaign_progress(:'ds_a1', :now) -> 'campaign_progress' as p \gset
-- 3 leads need 3 messages, 3 (M1 sent, no reply) need 2: 15 messages at 2/min capped by the
-- client's 60/h budget, inside 09:00-21:00 (now is 13:00 BST); the 3 leads still waiting for
-- M1 get it within 3 minutes, then wait 48 h for M2 and 96 h for M3.
select is((:'p'::jsonb -> 'estimate' ->> 'remaining_messages')::int, 15, 'remaining sequence messages');
select is(
  (:'p'::jsonb ->> 'estimated_completion')::timestamptz, timestamptz '2026-03-30 12:00Z' + interval '144 hours 3 minutes',
  'estimated completion: the last M1s in 3 minutes, then the M2 and M3 delays'
);
select is(
  public.campaign_progress(:'ds_a1') -> 'campaign_progress' -> 'steps',
  private.analytics_campaign_progress(:'ds_a1', now(), true) -> 'campaign_progress' -> 'steps',
  'campaign progress from the counters equals the raw count'
);

-- Who sees what.
select tests.clear_authentication();
select tests.authenticate_as(:'a_restricted');
select is(
  (public.analytics_overview() -> 'metrics' ->> 'total_leads')::int, 10 + 1,
  'a member restricted to A1 sees A1''s figures only'
);
select tests.throws_status(format('select public.analytics_overview(%L)', :'ds_a2'), 404, null,
  'a dataset outside the restriction is not found');
select tests.throws_status(format('select public.campaign_progress(%L)', :'ds_a2'), 404, null,
  'nor its campaign progress');
select tests.clear_authentication();
select tests.authenticate_as(:'b_admin');
select is(
  (public.analytics_overview() -> 'metrics' ->> 'total_leads')::int, 1, 'another tenant sees only its own lead'
);
select tests.throws_status(format('select public.analytics_overview(%L)', :'ds_a1'), 404, null,
  'another tenant''s dataset is not found');
select tests.throws_status('select public.analytics_overview(null, ''year'')', 400, null, 'an unknown time_range is 400');

-- A member without a dataset list sees only the leads assigned to it: its figures are counted
-- from those rows (it reads no counters).
select tests.clear_authentication();
select tests.create_user('assigned@a.test', :'client_a', 'sales_rep', p_can_view_all_leads => false) as assigned \gset
update leads set assigned_to = :'assigned' where phone_number in ('+447800000001', '+447800000002');
select tests.authenticate_as(:'assigned');
select is(
  (select count(*) from analytics_message_days)::int, 0, 'an assigned-leads-only member reads no counter rows'
);
select is(
  private.analytics_overview(null, 'week', :now) -> 'metrics' -> 'messages_sent',
  '{"m1": 2, "m2": 0, "m3": 0, "ai_responses": 2, "total": 4}'::jsonb,
  'its overview counts its two leads'' messages only'
);
select tests.clear_authentication();
select tests.authenticate_as_anon();
select tests.throws_status('select public.analytics_overview()', 401, null, 'anonymous callers are refused');
select tests.clear_authentication();

select * from finish();
rollback;
