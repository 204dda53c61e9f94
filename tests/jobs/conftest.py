"""The job runtime: the worker pool in-process and as `python -m workers`, wake-up signals.
Shared fixtures (Twilio stand-in, worker processes) are in tests/support/fixtures.py."""
