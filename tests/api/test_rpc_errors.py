"""Every public RPC's error paths as a PostgREST client sees them.

Each case is a real `POST /rpc/<name>` made the way PostgREST makes it (`dbr.rpc.call_rpc`:
role authenticated, the user's JWT claims, the API contract's request keys as named arguments bound
by their declared types); the status and body come from PostgREST's documented rules applied
to the real error (`dbr.postgrest`). Unknown and other tenants' ids must be 404 NOT_FOUND,
never PostgREST's 500 for a plain P0002.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from dbr.auth import Caller
from dbr.postgrest import contract_code, contract_error
from dbr.rpc import RpcError, call_rpc
from tests.support import caller_for, make_client, make_user

RANDOM = str(uuid.UUID(int=0x5EED))


@pytest.fixture(scope="module")
def world(db_url: str) -> dict[str, Any]:
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as db:
        a = make_client(db, "Errors A")
        b = make_client(db, "Errors B")
        w: dict[str, Any] = {
            "admin": make_user(db, a, "admin"),
            "manager": make_user(db, a, "manager"),
            "rep": make_user(db, a, "sales_rep"),
            "ro": make_user(db, a, "read_only"),
            "stranger": make_user(db, None),
            "admin_b": make_user(db, b, "admin"),
        }

        def dataset(client: uuid.UUID, name: str) -> str:
            return str(
                db.execute(
                    "insert into public.datasets (client_id, name) values (%s, %s) returning id",
                    (client, name),
                ).fetchone()["id"]
            )

        def lead(client: uuid.UUID, ds: str, phone: str) -> str:
            return str(
                db.execute(
                    "insert into public.leads (client_id, dataset_id, first_name, phone_number)"
                    " values (%s, %s, 'Sam', %s) returning id",
                    (client, ds, phone),
                ).fetchone()["id"]
            )

        w["ds"], w["ds_empty"], w["ds_b"] = dataset(a, "A"), dataset(a, "A empty"), dataset(b, "B")
        w["lead"], w["lead_b"] = (
            lead(a, w["ds"], "+447700900101"),
            lead(b, w["ds_b"], "+447700900102"),
        )
        w["conv_b"] = str(
            db.execute(
                "insert into public.conversations (client_id, dataset_id, lead_id)"
                " values (%s, %s, %s) returning id",
                (b, w["ds_b"], w["lead_b"]),
            ).fetchone()["id"]
        )
        # Sophie: an insight, a lesson and a message on each side.
        for side, client, ds, lead_id in (
            ("", a, w["ds"], w["lead"]),
            ("_b", b, w["ds_b"], w["lead_b"]),
        ):
            w["insight" + side] = str(
                db.execute(
                    "insert into public.sophie_insights (client_id, dataset_id, lead_id,"
                    " severity, category, title)"
                    " values (%s, %s, %s, 'warning', 'tone', 'Pushy') returning id",
                    (client, ds, lead_id),
                ).fetchone()["id"]
            )
            w["lesson" + side] = str(
                db.execute(
                    "insert into public.lessons (client_id, title) values (%s, 'Be warm')"
                    " returning id",
                    (client,),
                ).fetchone()["id"]
            )
        w["conv"] = str(
            db.execute(
                "insert into public.conversations (client_id, dataset_id, lead_id)"
                " values (%s, %s, %s) returning id",
                (a, w["ds"], w["lead"]),
            ).fetchone()["id"]
        )
        for side, client, ds, lead_id, conv in (
            ("", a, w["ds"], w["lead"], w["conv"]),
            ("_b", b, w["ds_b"], w["lead_b"], w["conv_b"]),
        ):
            w["msg" + side] = str(
                db.execute(
                    "insert into public.messages (client_id, dataset_id, conversation_id, lead_id,"
                    " direction, message_category, status, content)"
                    " values (%s, %s, %s, %s, 'outbound', 'human_manual', 'pending', 'Hi')"
                    " returning id",
                    (client, ds, conv, lead_id),
                ).fetchone()["id"]
            )
        w["job_b"] = db.execute(
            "insert into private.jobs (kind, client_id, status, attempts, finished_at)"
            " values ('test.dead', %s, 'dead', 5, now()) returning id",
            (b,),
        ).fetchone()["id"]
    return w


def _resolve(value: Any, w: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        found = w[value[1:]]
        return str(found) if isinstance(found, uuid.UUID) else found  # user ids are UUIDs
    if isinstance(value, dict):
        return {k: _resolve(v, w) for k, v in value.items()}
    return value


def _refusal(db_url: str, w: dict[str, Any], who: str, name: str, body: dict[str, Any]):
    with (
        psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn,
        pytest.raises(RpcError) as err,
    ):
        call_rpc(conn, ANON if who == "anon" else caller_for(w[who]), name, _resolve(body, w))
    return err.value.error


BAD, FORBIDDEN, GONE = (400, "VALIDATION_ERROR"), (403, "FORBIDDEN"), (404, "NOT_FOUND")
UNAUTHORIZED = (401, "UNAUTHORIZED")
ANON = Caller(user_id=None, role="anon", claims={"role": "anon"})

# (rpc, caller, body with $world references, (status, contract code))
CASES = [
    ("list_datasets", "admin", {"sort": "size"}, BAD),
    ("list_datasets", "stranger", {}, FORBIDDEN),
    ("get_dataset", "admin", {"id": "$ds_b"}, GONE),
    ("get_dataset", "admin", {"id": RANDOM}, GONE),
    ("get_dataset", "admin", {"id": "not-a-uuid"}, BAD),
    ("create_dataset", "admin", {"name": "  "}, BAD),
    ("create_dataset", "rep", {"name": "Mine"}, FORBIDDEN),
    ("create_dataset", "stranger", {"name": "Mine"}, FORBIDDEN),
    ("update_dataset", "admin", {"id": "$ds_b", "patch": {"name": "x"}}, GONE),
    ("update_dataset", "admin", {"id": "$ds", "patch": {"colour": "red"}}, BAD),
    ("update_dataset", "rep", {"id": "$ds", "patch": {"name": "x"}}, FORBIDDEN),
    ("delete_dataset", "admin", {"id": "$ds_b"}, GONE),
    ("delete_dataset", "manager", {"id": "$ds"}, FORBIDDEN),
    ("delete_dataset", "admin", {"id": RANDOM}, GONE),
    ("list_leads", "rep", {"limit": 101}, BAD),
    ("list_leads", "rep", {"page": 0}, BAD),
    ("list_leads", "rep", {"status": "SLEEPY"}, BAD),
    ("list_leads", "stranger", {}, FORBIDDEN),
    ("get_lead", "admin", {"id": "$lead_b"}, GONE),
    ("get_lead", "admin", {"id": RANDOM}, GONE),
    ("update_lead", "admin", {"id": "$lead", "patch": {"email": "not-an-email"}}, BAD),
    ("update_lead", "ro", {"id": "$lead", "patch": {"notes": "x"}}, FORBIDDEN),
    ("update_lead", "admin", {"id": "$lead_b", "patch": {"notes": "x"}}, GONE),
    ("update_lead", "admin", {"id": RANDOM, "patch": {"notes": "x"}}, GONE),
    ("toggle_lead_archive", "ro", {"id": "$lead"}, FORBIDDEN),
    ("toggle_lead_archive", "admin", {"id": "$lead_b"}, GONE),
    ("toggle_lead_archive", "admin", {"id": RANDOM}, GONE),
    ("set_lead_manual_mode", "admin", {"id": "$lead", "enabled": None}, BAD),
    ("set_lead_manual_mode", "ro", {"id": "$lead", "enabled": True}, FORBIDDEN),
    ("set_lead_manual_mode", "admin", {"id": "$lead_b", "enabled": True}, GONE),
    ("start_campaign", "admin", {"dataset_id": "$ds", "settings": {"speed": 9}}, BAD),
    ("start_campaign", "admin", {"dataset_id": "$ds_empty"}, BAD),
    ("start_campaign", "rep", {"dataset_id": "$ds"}, FORBIDDEN),
    ("start_campaign", "admin", {"dataset_id": "$ds_b"}, GONE),
    ("start_campaign", "admin", {"dataset_id": RANDOM}, GONE),
    ("pause_campaign", "admin", {"dataset_id": "$ds_empty"}, BAD),
    ("pause_campaign", "rep", {"dataset_id": "$ds"}, FORBIDDEN),
    ("pause_campaign", "admin", {"dataset_id": "$ds_b"}, GONE),
    ("resume_campaign", "admin", {"dataset_id": "$ds_empty"}, BAD),
    ("resume_campaign", "rep", {"dataset_id": "$ds"}, FORBIDDEN),
    ("resume_campaign", "admin", {"dataset_id": RANDOM}, GONE),
    ("send_message", "admin", {"lead_id": "$lead", "content": " "}, BAD),
    ("send_message", "admin", {"lead_id": "$lead", "content": "Hi", "message_category": "m1"}, BAD),
    ("send_message", "ro", {"lead_id": "$lead", "content": "Hi"}, FORBIDDEN),
    ("send_message", "admin", {"lead_id": "$lead_b", "content": "Hi"}, GONE),
    ("send_message", "admin", {"lead_id": RANDOM, "content": "Hi"}, GONE),
    ("get_conversation", "admin", {"id": "$conv_b"}, GONE),
    ("get_conversation", "admin", {"id": RANDOM}, GONE),
    ("get_conversation", "stranger", {"id": "$conv_b"}, GONE),
    ("retry_dead_job", "rep", {"job_id": "$job_b"}, FORBIDDEN),
    ("retry_dead_job", "admin", {"job_id": "$job_b"}, GONE),
    ("retry_dead_job", "admin", {"job_id": 987654321}, GONE),
    ("retry_dead_job", "admin", {"job_id": "x"}, BAD),
    ("get_prompt", "admin", {"type": "sms"}, BAD),
    ("update_prompt", "admin", {"type": "m1", "system_prompt": ""}, BAD),
    ("update_prompt", "manager", {"type": "m1", "system_prompt": "Be brief."}, FORBIDDEN),
    ("make_prompt_live", "admin", {"type": "bogus"}, BAD),
    ("make_prompt_live", "manager", {"type": "m1"}, FORBIDDEN),
    ("ai_send", "admin", {"lead_id": "$lead"}, BAD),
    ("ai_send", "ro", {"lead_id": "$lead", "content": "Hi"}, FORBIDDEN),
    ("ai_send", "admin", {"lead_id": "$lead_b", "content": "Hi"}, GONE),
    ("ai_send", "admin", {"lead_id": "$lead", "message_id": RANDOM}, GONE),
    ("list_users", "rep", {}, FORBIDDEN),
    ("list_users", "stranger", {}, FORBIDDEN),
    ("update_user", "admin", {"id": "$admin_b", "role": "manager"}, GONE),
    ("update_user", "admin", {"id": RANDOM, "role": "manager"}, GONE),
    ("update_user", "admin", {"id": "$rep", "role": "owner"}, BAD),
    ("update_user", "admin", {"id": "$rep", "permissions": {"can_fly": True}}, BAD),
    ("update_user", "rep", {"id": "$ro", "role": "manager"}, FORBIDDEN),
    ("suspend_user", "admin", {"id": "$admin"}, FORBIDDEN),
    ("suspend_user", "admin", {"id": "$admin_b"}, GONE),
    ("suspend_user", "rep", {"id": "$ro"}, FORBIDDEN),
    ("get_client_settings", "stranger", {}, FORBIDDEN),
    ("update_client_settings", "manager", {"company_name": "X"}, FORBIDDEN),
    ("update_client_settings", "admin", {"settings": {"colour": "red"}}, BAD),
    ("update_client_settings", "admin", {"company_email": "nope"}, BAD),
    ("get_integrations", "stranger", {}, FORBIDDEN),
    (
        "connect_twilio",
        "manager",
        {"account_sid": "AC" + "0" * 32, "auth_token": "0" * 32},
        FORBIDDEN,
    ),
    ("connect_twilio", "admin", {"account_sid": "AC1", "auth_token": "0" * 32}, BAD),
    ("connect_calcom", "manager", {"api_key": "cal_live_123456", "event_type_id": 1}, FORBIDDEN),
    ("connect_calcom", "admin", {"api_key": "cal_live_123456", "event_type_id": 0}, BAD),
    ("connect_anthropic", "rep", {"api_key": "sk-ant-12345678"}, FORBIDDEN),
    ("connect_anthropic", "admin", {"api_key": "short"}, BAD),
    ("disconnect_integration", "admin", {"service": "email"}, BAD),
    ("disconnect_integration", "rep", {"service": "twilio"}, FORBIDDEN),
    ("test_integrations", "manager", {}, FORBIDDEN),
    (
        "notify_user",
        "admin",
        {"user_id": "$rep", "channels": [], "priority": "immediate", "title": "T", "message": "M"},
        BAD,
    ),
    (
        "notify_user",
        "admin",
        {
            "user_id": "$rep",
            "channels": ["in_app"],
            "priority": "urgent",
            "title": "T",
            "message": "M",
        },
        BAD,
    ),
    (
        "notify_user",
        "rep",
        {
            "user_id": "$manager",
            "channels": ["in_app"],
            "priority": "normal",
            "title": "T",
            "message": "M",
        },
        FORBIDDEN,
    ),
    (
        "notify_user",
        "admin",
        {
            "user_id": "$admin_b",
            "channels": ["in_app"],
            "priority": "normal",
            "title": "T",
            "message": "M",
        },
        GONE,
    ),
    ("get_notification_preferences", "anon", {}, UNAUTHORIZED),
    ("update_notification_preferences", "rep", {"channels": {"new_reply": ["fax"]}}, BAD),
    ("update_notification_preferences", "rep", {"timezone": "Mars/Olympus"}, BAD),
    ("mark_notifications_read", "anon", {}, UNAUTHORIZED),
    ("unread_notification_count", "anon", {}, UNAUTHORIZED),
    ("analytics_overview", "admin", {"time_range": "year"}, BAD),
    ("analytics_overview", "admin", {"dataset_id": "$ds_b"}, GONE),
    ("analytics_overview", "stranger", {}, FORBIDDEN),
    ("analytics_overview", "anon", {}, UNAUTHORIZED),
    ("campaign_progress", "admin", {"dataset_id": "$ds_b"}, GONE),
    ("campaign_progress", "admin", {"dataset_id": RANDOM}, GONE),
    ("campaign_progress", "stranger", {"dataset_id": "$ds"}, FORBIDDEN),
    ("dataset_comparison", "stranger", {}, FORBIDDEN),
    ("dataset_comparison", "anon", {}, UNAUTHORIZED),
    ("sophie_impact", "stranger", {}, FORBIDDEN),
    ("sophie_impact", "anon", {}, UNAUTHORIZED),
    ("get_insights", "admin", {"severity": "huge"}, BAD),
    ("get_insights", "stranger", {}, FORBIDDEN),
    ("get_insight", "admin", {"id": "$insight_b"}, GONE),
    ("get_insight", "admin", {"id": RANDOM}, GONE),
    ("agree_insight", "rep", {"id": "$insight", "learning_note": "x"}, FORBIDDEN),
    ("agree_insight", "admin", {"id": "$insight_b", "learning_note": "x"}, GONE),
    (
        "agree_insight",
        "admin",
        {"id": "$insight", "learning_note": "x", "lesson_priority": 11},
        BAD,
    ),
    (
        "disagree_insight",
        "rep",
        {"id": "$insight", "teaching_note": "x", "correct_approach": "y"},
        FORBIDDEN,
    ),
    (
        "disagree_insight",
        "admin",
        {"id": "$insight_b", "teaching_note": "x", "correct_approach": "y"},
        GONE,
    ),
    (
        "disagree_insight",
        "admin",
        {"id": "$insight", "teaching_note": "", "correct_approach": "y"},
        BAD,
    ),
    ("dismiss_insight", "ro", {"id": "$insight"}, FORBIDDEN),
    ("dismiss_insight", "admin", {"id": "$insight_b"}, GONE),
    ("list_lessons", "admin", {"sort": "random"}, BAD),
    ("list_lessons", "stranger", {}, FORBIDDEN),
    (
        "create_lesson",
        "admin",
        {
            "lesson_type": "tone",
            "scope": "client_specific",
            "title": "T",
            "trigger": "x",
            "reasoning": "y",
            "priority": 11,
        },
        BAD,
    ),
    (
        "create_lesson",
        "rep",
        {
            "lesson_type": "tone",
            "scope": "client_specific",
            "title": "T",
            "trigger": "x",
            "reasoning": "y",
            "priority": 5,
        },
        FORBIDDEN,
    ),
    (
        "create_lesson",
        "admin",
        {
            "lesson_type": "tone",
            "scope": "universal",
            "title": "T",
            "trigger": "x",
            "reasoning": "y",
            "priority": 5,
        },
        FORBIDDEN,
    ),
    ("update_lesson", "admin", {"id": "$lesson_b", "patch": {"priority": 3}}, GONE),
    ("update_lesson", "admin", {"id": "$lesson", "patch": {"colour": "red"}}, BAD),
    ("update_lesson", "rep", {"id": "$lesson", "patch": {"priority": 3}}, FORBIDDEN),
    ("delete_lesson", "admin", {"id": "$lesson_b"}, GONE),
    ("delete_lesson", "rep", {"id": "$lesson"}, FORBIDDEN),
    ("analyze_message", "admin", {"message_id": "$msg_b"}, GONE),
    ("analyze_message", "ro", {"message_id": "$msg"}, FORBIDDEN),
    ("analyze_conversation", "admin", {"conversation_id": "$conv_b"}, GONE),
    ("analyze_conversation", "stranger", {"conversation_id": "$conv"}, FORBIDDEN),
    ("detect_patterns", "admin", {"dataset_id": "$ds_b"}, GONE),
    ("detect_patterns", "admin", {"dataset_id": "$ds", "min_occurrences": 1}, BAD),
    ("detect_patterns", "ro", {"dataset_id": "$ds"}, FORBIDDEN),
]


@pytest.mark.parametrize(
    ("name", "who", "body", "expected"),
    CASES,
    ids=[f"{n}-{w}-{'-'.join(b) or 'nobody'}-{e[0]}" for n, w, b, e in CASES],
)
def test_rpc_error_status_and_code(db_url, world, name, who, body, expected):
    err = _refusal(db_url, world, who, name, body)
    assert (err.status, contract_code(err)) == expected, err
    assert err.message
    # The raised refusals carry the API contract's code in PostgREST's body itself (supabase-js
    # hands this object to the frontend as `error`).
    # Postgres' own errors keep their SQLSTATE there: a malformed uuid (22P02, 400) and an
    # anonymous call of an RPC not granted to anon (42501, 401).
    if err.code not in ("22P02", "42501"):
        assert err.body["code"] == expected[1], err.body
    assert set(contract_error(err)["error"]) == {"code", "message", "details"}


def test_every_public_rpc_has_error_cases(db_url):
    with psycopg.connect(db_url) as conn:
        names = {
            r[0]
            for r in conn.execute(
                "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
                " where n.nspname = 'public' and p.prokind = 'f'"
                " and has_function_privilege('authenticated', p.oid, 'execute')"
                " and p.prorettype <> 'trigger'::regtype"
                " and not exists (select from pg_depend d"
                " where d.objid = p.oid and d.deptype = 'e')"
            )
        }
    assert names - {c[0] for c in CASES} == set()


def test_anonymous_callers_get_401(db_url, world):
    # The RPCs are not granted to anon: PostgREST answers 42501 with 401 for a request
    # without a user's token.
    with (
        psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn,
        pytest.raises(RpcError) as err,
    ):
        call_rpc(conn, ANON, "get_dataset", {"id": world["ds"]})
    assert (err.value.error.status, contract_code(err.value.error)) == (401, "UNAUTHORIZED")


def test_unknown_argument_is_pgrst202(db_url, world):
    # The old p_ names are not the contract's keys: PostgREST finds no such function.
    err = _refusal(db_url, world, "admin", "start_campaign", {"p_dataset_id": world["ds"]})
    assert err.status == 404 and err.code == "PGRST202"
    assert "public.start_campaign(p_dataset_id)" in err.message


def test_raise_error_bodies_are_taken_verbatim(db_url, world):
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        admin = caller_for(world["admin"])
        made = call_rpc(conn, admin, "create_dataset", {"name": "Verbatim", "description": "d"})
        ds = made["dataset"]["id"]
        conn.execute(
            "insert into public.leads (client_id, dataset_id, first_name, phone_number)"
            " select client_id, id, 'Jo', '+447700900103' from public.datasets where id = %s",
            (ds,),
        )
        # POST /api/campaigns/start's body, schedule nested as the API contract has it.
        started = call_rpc(
            conn,
            admin,
            "start_campaign",
            {
                "dataset_id": ds,
                "settings": {
                    "m1_delay_hours": 0,
                    "m2_delay_hours": 48,
                    "m3_delay_hours": 96,
                    "rate_limit_messages_per_minute": 1,
                    "schedule": {"hours_start": 8, "hours_end": 20, "days": ["mon", "tue"]},
                },
            },
        )
        assert started["campaign"]["dataset_id"] == ds
        assert started["campaign"]["status"] == "active"
        stored = conn.execute(
            "select hours_start, hours_end, days, m2_delay_hours from public.campaigns"
            " where dataset_id = %s",
            (ds,),
        ).fetchone()
        assert (stored["hours_start"], stored["hours_end"], stored["days"]) == (
            8,
            20,
            ["mon", "tue"],
        )
        assert stored["m2_delay_hours"] == 48
        paused = call_rpc(conn, admin, "pause_campaign", {"dataset_id": ds})
        assert paused["campaign"]["status"] == "paused"
        page = call_rpc(conn, admin, "list_leads", {"dataset_id": ds, "page": 1, "limit": 10})
        assert page["pagination"] == {"page": 1, "limit": 10, "total": 1, "pages": 1}


def test_the_pre_request_hook_limits_rpc_calls_as_through_postgrest(db_url, db):
    # The authenticator's pgrst.db_pre_request runs before each call: the 101st write-call of
    # a minute is 429 RATE_LIMITED with Retry-After, as PostgREST would answer it.
    client = make_client(db, "Busy")
    user = make_user(db, client, "admin")
    ds = db.execute(
        "insert into public.datasets (client_id, name) values (%s, 'Busy') returning id", (client,)
    ).fetchone()["id"]
    lead = db.execute(
        "insert into public.leads (client_id, dataset_id, first_name, phone_number)"
        " values (%s, %s, 'Al', '+447700900104') returning id",
        (client, ds),
    ).fetchone()["id"]
    caller = caller_for(user)
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        for _ in range(100):
            call_rpc(conn, caller, "toggle_lead_archive", {"id": str(lead)})
        with pytest.raises(RpcError) as err:
            call_rpc(conn, caller, "toggle_lead_archive", {"id": str(lead)})
    refused = err.value.error
    assert (refused.status, refused.code) == (429, "RATE_LIMITED")
    assert int(refused.headers["Retry-After"]) > 0
