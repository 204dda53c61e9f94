"""Datasets through their RPCs and their counters under load. Fixtures: the root conftest's
and the shared ones in tests/support/fixtures.py."""
