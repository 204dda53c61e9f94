"""Analytics tests: the shared database fixtures come from tests/conftest.py."""
