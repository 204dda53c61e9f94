"""Staff notifications: delivering the email and SMS of a notification (or a daily digest).

The database decides who is told, on which channels and when (private.create_notifications,
private.notify_staff, quiet hours, the digest); this package only delivers what a notify.email
or notify.sms job hands it, through Resend (dbr.providers.email) or Twilio.
"""
