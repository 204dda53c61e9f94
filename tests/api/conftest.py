"""The API's foundation: auth, the contract's error bodies, OpenAPI, generated requests,
every RPC's error paths, PostgREST's status rules and the shared rate limits. Fixtures: the
root conftest's (`api`, `db`, `token_for`) and the shared ones in tests/support/fixtures.py."""
