"""The outreach engine: campaigns, sms.send through the Twilio stand-in, the twilio-webhook
edge function, opt-out at every layer, stranded sends and chaos. The Twilio stand-in, the
functions server and worker processes are shared fixtures (tests/support/fixtures.py);
builders are in tests/support/outreach.py and tests/outreach/rules.py."""
