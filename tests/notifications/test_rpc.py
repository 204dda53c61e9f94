"""The notification RPCs as a PostgREST client sees them: statuses and the contract's error
body for notifications/send and the preferences, per role."""

from __future__ import annotations

import uuid

from psycopg.types.json import Jsonb

from tests.support import acting_as, make_client, make_user, refusal

SEND = "select public.notify_user(%s, %s, %s, %s, %s)"


def test_send_refusals_per_role_and_tenant(db, team):
    other_client = make_client(db, "Elsewhere")
    outsider = make_user(db, other_client, "admin")
    cases = [
        (team.rep, (team.admin, ["in_app"], "normal", "Hi", "x"), 403, "FORBIDDEN"),
        (team.viewer, (team.rep, ["email"], "normal", "Hi", "x"), 403, "FORBIDDEN"),
        (team.admin, (outsider, ["in_app"], "normal", "Hi", "x"), 404, "NOT_FOUND"),
        (team.admin, (uuid.uuid4(), ["in_app"], "normal", "Hi", "x"), 404, "NOT_FOUND"),
        (team.admin, (team.rep, [], "normal", "Hi", "x"), 400, "VALIDATION_ERROR"),
        (team.admin, (team.rep, ["in_app"], "urgent", "Hi", "x"), 400, "VALIDATION_ERROR"),
        (team.admin, (team.rep, ["in_app"], "normal", "", "x"), 400, "VALIDATION_ERROR"),
    ]
    for caller, args, status, code in cases:
        err = refusal(db, caller, SEND, *args)
        assert (err.status, err.code) == (status, code), (args, err)
    n = db.execute(
        "select count(*) as n from public.notifications where client_id = %s", (team.client_id,)
    ).fetchone()["n"]
    assert n == 0, "nothing was stored by a refused call"


def test_a_manager_notifies_a_rep_and_anyone_notifies_themselves(db, team):
    with acting_as(db, team.manager) as c:
        out = c.execute(SEND + " as r", (team.rep, ["in_app"], "low", "FYI", "x")).fetchone()["r"]
    assert out["channels"] == ["in_app"] and out["deliveries"] == []
    with acting_as(db, team.viewer) as c:
        mine = c.execute(SEND + " as r", (team.viewer, ["in_app"], "low", "Note", "x")).fetchone()
    assert mine["r"]["duplicate"] is False


def test_preference_errors_name_the_key(db, team):
    err = refusal(
        db,
        team.rep,
        "select public.update_notification_preferences(channels => %s)",
        Jsonb({"hot_lead": ["pigeon"]}),
    )
    assert err.status == 400 and err.body["details"]["key"] == "channels.hot_lead"
    err = refusal(db, team.rep, "select public.update_notification_preferences(digest_hour => 25)")
    assert err.status == 400 and err.body["details"]["key"] == "digest_hour"
