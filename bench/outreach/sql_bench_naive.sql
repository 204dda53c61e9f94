-- Row-by-row baselines for bench/outreach/sql_bench.py (loaded into the bench database only).
create schema if not exists bench;

-- The seed's start: "Get all READY leads, queue M1 messages", one lead at a time.
create or replace function bench.naive_start(p_dataset uuid, p_limit integer) returns integer
language plpgsql as $$
declare
  r public.leads;
  v_client public.clients;
  v_campaign public.campaigns;
  v_conv uuid;
  v_msg uuid;
  n integer := 0;
begin
  select c.* into v_campaign from public.campaigns c where c.dataset_id = p_dataset;
  select cl.* into v_client from public.clients cl where cl.id = v_campaign.client_id;
  for r in
    select l.* from public.leads l
    where l.dataset_id = p_dataset and l.contact_status = 'READY' and not l.archived and not l.opted_out
    order by l.created_at limit p_limit
  loop
    continue when exists (
      select from public.suppressions s where s.client_id = r.client_id and s.phone_number = r.phone_number);
    insert into public.conversations (client_id, dataset_id, lead_id) values (r.client_id, r.dataset_id, r.id)
    on conflict (lead_id) do update set updated_at = now() returning id into v_conv;
    insert into public.messages (client_id, dataset_id, conversation_id, lead_id, direction, message_category,
      status, content, from_number, to_number)
    values (r.client_id, r.dataset_id, v_conv, r.id, 'outbound', 'm1', 'pending',
      private.with_opt_out_line(private.render_template(private.sequence_template(v_campaign, v_client.settings, 1),
        r, v_client.name), private.client_opt_out_line(v_client.settings)),
      v_client.twilio_phone_number, r.phone_number)
    returning id into v_msg;
    perform private.enqueue_job('sms.send', jsonb_build_object('message_id', v_msg), now(), 'sms.send:' || v_msg,
      r.client_id, 5, 100::smallint);
    update public.leads set sequence_step = 1 where id = r.id;
    n := n + 1;
  end loop;
  return n;
end $$;

-- A row-by-row tick: every lead of every active campaign, in list order, decided one by one.
create or replace function bench.naive_tick(p_now timestamptz) returns integer
language plpgsql as $$
declare
  c public.campaigns;
  v_client public.clients;
  r public.leads;
  v_step integer;
  v_queued integer;
  v_total integer := 0;
  v_budget integer;
  v_used integer;
  v_conv uuid;
  v_msg uuid;
begin
  for c in
    select cp.* from public.campaigns cp join public.datasets d on d.id = cp.dataset_id
    where d.campaign_status = 'active'
  loop
    select cl.* into v_client from public.clients cl where cl.id = c.client_id;
    v_queued := 0;
    v_budget := coalesce((v_client.settings ->> 'sms_per_hour')::integer, 60);
    for r in select l.* from public.leads l where l.dataset_id = c.dataset_id order by l.created_at loop
      exit when v_queued >= c.rate_limit_messages_per_minute;
      continue when r.archived or r.opted_out or r.manual_mode;
      continue when not private.in_send_window(p_now, coalesce(r.timezone, v_client.timezone), c.hours_start,
        c.hours_end, c.days);
      v_step := case
        when r.contact_status = 'READY' and c.started_at + c.m1_delay_hours * interval '1 hour' <= p_now then 1
        when r.contact_status = 'M1_SENT' and r.m1_sent_at + c.m2_delay_hours * interval '1 hour' <= p_now
          and (r.reply_received_at is null or r.reply_received_at < r.m1_sent_at) then 2
        when r.contact_status = 'M2_SENT' and r.m2_sent_at + c.m3_delay_hours * interval '1 hour' <= p_now
          and (r.reply_received_at is null or r.reply_received_at < r.m2_sent_at) then 3
      end;
      continue when v_step is null;
      continue when exists (
        select from public.messages m where m.lead_id = r.id and m.message_category = ('m' || v_step)::public.message_category);
      continue when exists (
        select from public.suppressions s where s.client_id = r.client_id and s.phone_number = r.phone_number);
      select count(*) into v_used from public.messages m
      where m.client_id = r.client_id and m.direction = 'outbound' and m.created_at > p_now - interval '1 hour';
      exit when v_used >= v_budget;
      insert into public.conversations (client_id, dataset_id, lead_id) values (r.client_id, r.dataset_id, r.id)
      on conflict (lead_id) do update set updated_at = now() returning id into v_conv;
      insert into public.messages (client_id, dataset_id, conversation_id, lead_id, direction, message_category,
        status, content, from_number, to_number, created_at)
      values (r.client_id, r.dataset_id, v_conv, r.id, 'outbound', ('m' || v_step)::public.message_category, 'pending',
        private.render_template(private.sequence_template(c, v_client.settings, v_step), r, v_client.name),
        v_client.twilio_phone_number, r.phone_number, p_now)
      returning id into v_msg;
      perform private.enqueue_job('sms.send', jsonb_build_object('message_id', v_msg), p_now, 'sms.send:' || v_msg,
        r.client_id, 5, 100::smallint);
      v_queued := v_queued + 1;
    end loop;
    v_total := v_total + v_queued;
  end loop;
  return v_total;
end $$;
