"""The same event raised by two transactions at the same moment (two workers, a retried
webhook) still reaches each person once: the second insert waits for the first and then finds
the dedupe key taken."""

from __future__ import annotations

import threading

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

CALL = (
    "select private.notify_staff(%s, 'booking', 'Call booked', 'Thu 10:00', 'immediate', null,"
    " %s, %s, %s)"
)


def test_two_transactions_raising_one_event_notify_once(db, db_url, team):
    data = Jsonb(
        {"event": "booking_created", "booking_uid": "bk-race", "lead_id": str(team.lead_id)}
    )
    first_in = threading.Event()
    counts: list[int] = []

    def raise_event(hold: bool) -> None:
        with psycopg.connect(db_url, row_factory=dict_row) as conn:
            n = conn.execute(CALL, (team.client_id, data, team.dataset_id, team.lead_id)).fetchone()
            counts.append(next(iter(n.values())))
            if hold:
                first_in.set()
                threading.Event().wait(0.5)  # the other transaction is waiting on our rows
            conn.commit()

    a = threading.Thread(target=raise_event, args=(True,))
    a.start()
    assert first_in.wait(10)
    b = threading.Thread(target=raise_event, args=(False,))
    b.start()
    a.join(10)
    b.join(10)

    assert sorted(counts) == [0, 3], "the first notifies admin, manager and rep; the second no one"
    rows = db.execute(
        "select user_id, count(*) as n from public.notifications"
        " where client_id = %s and event = 'booking' group by user_id",
        (team.client_id,),
    ).fetchall()
    assert len(rows) == 3 and {r["n"] for r in rows} == {1}
    jobs = db.execute(
        "select count(*) as n from private.jobs where client_id = %s and kind like 'notify.%%'",
        (team.client_id,),
    ).fetchone()["n"]
    assert jobs == 3, "one email each (a booking's default channels: in-app and email), made once"
