"""Shared code for the reactivation platform: settings, database access, auth, phones,
provider clients and the local stack. Both `api/` and `workers/` import from here."""
