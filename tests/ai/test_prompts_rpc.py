"""Prompt RPCs as PostgREST calls them (as the user): who may edit and publish, and the API
contract shapes of get/update/make-live."""

from __future__ import annotations

from tests.support import acting_as, make_client, make_user, refusal


def _rpc(db, user, sql: str, *args):
    with acting_as(db, user) as conn:
        return conn.execute(sql, args).fetchone()["r"]


def test_permissions_map_to_http_statuses(db):
    client = make_client(db, "Acme")
    admin = make_user(db, client, "admin")
    manager = make_user(db, client, "manager")
    publisher = make_user(db, client, "manager", can_push_to_live=True)

    for user in (manager, publisher):
        err = refusal(db, user, "select public.update_prompt('reply', 'Be brief.')")
        assert (err.status, err.code) == (403, "FORBIDDEN")
    err = refusal(db, manager, "select public.make_prompt_live('reply')")
    assert (err.status, err.code) == (403, "FORBIDDEN")
    err = refusal(db, admin, "select public.get_prompt('sms')")
    assert (err.status, err.code) == (400, "VALIDATION_ERROR")

    edit = _rpc(db, admin, "select public.update_prompt('m1', 'Be brief.') as r")
    assert edit["prompt_edit"]["is_live"] is False
    live = _rpc(db, publisher, "select public.make_prompt_live('m1') as r")
    assert set(live) == {"prompt", "changes_from_previous"}
    assert set(live["prompt"]) == {"id", "version", "is_active", "lessons_included", "made_live_at"}
    assert live["prompt"]["version"] == 2 and live["prompt"]["is_active"] is True
    assert live["changes_from_previous"]["base_prompt_changed"] is True

    current = _rpc(db, manager, "select public.get_prompt('m1') as r")
    assert current["prompt"]["system_prompt"] == "Be brief."
    assert current["prompt"]["version"] == 2 and current["lessons_included"] == 0
    assert current["performance"] == {"conversations_using": 0, "success_rate": 0}
