"""The outreach SQL, in one place: every statement the sender and the reconcile run.

Only the attempt (prepare_send) must be on disk before Twilio is called. A result lost in a
database crash leaves the attempt unresolved, which the next try reconciles with Twilio, so
results commit without waiting for the WAL flush (`NO_FLUSH`)."""

from __future__ import annotations

NO_FLUSH = "set_config('synchronous_commit', 'off', true)"

# One message: the database's decision (send / defer / skip / reconcile) for this worker.
PREPARE_SEND = "select private.prepare_send(%s, %s) as d"

# The messages of one batch, in the given order, decided in one transaction.
PREPARE_SENDS = (
    "select private.prepare_send(m.id, %s) as d"
    " from unnest(%s::uuid[]) with ordinality as m(id, n) order by m.n"
)

# One result: (message id, sid, status, error code, error text, segments).
RECORD_SEND_RESULT = f"select private.record_send_result(%s, %s, %s, %s, %s, %s), {NO_FLUSH}"

# Several results in one statement, as parallel arrays of the same six fields.
RECORD_SEND_RESULTS = (
    "select count(private.record_send_result(r.id, r.sid, r.status, r.code, r.err, r.seg)),"
    f" {NO_FLUSH} from unnest(%s::uuid[], %s::text[], %s::text[], %s::int[], %s::text[],"
    " %s::int[]) as r(id, sid, status, code, err, seg)"
)

# What Twilio was found to hold for an interrupted attempt (or that it holds nothing).
RECONCILE_SEND = "select private.reconcile_send(%s, %s, %s, %s, %s) as outcome"

# A stranded send (sending, no SID, no live sms.send run) as the reconcile needs it.
STRANDED_SEND = "select private.stranded_send(%s) as d"
