"""Outreach: handing stored outbound messages to Twilio exactly once.

The database decides what may be sent (private.prepare_send re-checks opt-out, lead and
campaign state, the sending window, both rate limits and the number's pace at this very
moment); `sender` acts on the decision, `reconcile` settles an attempt whose result was never
recorded, and `queries` holds their SQL. The job handlers in workers/handlers/sms.py only map
the outcomes (`NotYet`, `SendLater`, `CannotSend`) onto the job queue.
"""
