"""Lead management through the RPCs. Fixtures: the root conftest's and the shared ones in
tests/support/fixtures.py."""
