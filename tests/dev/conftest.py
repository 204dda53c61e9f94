"""Development tooling: the stand-ins driven through the real SDKs, type generation, local
migrations and the `dbr` command line. Shared fixtures are in tests/support/fixtures.py."""
