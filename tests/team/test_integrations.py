"""Per-client credentials end to end: connect (RPC) -> Vault -> the test job checks each service
for real through the stand-ins with the client's own credentials -> GET settings/integrations;
the twilio-webhook function verifies a client's traffic with that client's token only; no
secret in any answer or log."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from dbr.db import async_pool
from dbr.dev import stack
from dbr.dev.standins.anthropic import AnthropicStandin
from dbr.dev.standins.calcom import CalcomStandin
from dbr.dev.standins.twilio import TwilioStandin, inbound_params, serve_in_thread, sign
from dbr.providers.calcom import STANDIN_EVENT_TYPE_ID
from dbr.providers.twilio import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from dbr.rpc import RpcError, call_rpc
from dbr.settings import Settings
from dbr.team.credentials import ClientCredentials
from tests.support import caller_for, make_client
from tests.team.conftest import add_member
from workers.handlers.team import integration_checks_job
from workers.jobs import Context, Job

CLAUDE_KEY = "sk-ant-client-own-key-" + "7" * 20
CAL_KEY = "cal_live_client_own_key_" + "8" * 16


def account() -> tuple[str, str]:
    return "AC" + uuid.uuid4().hex, uuid.uuid4().hex


def number() -> str:
    return "+4477009" + str(uuid.uuid4().int)[:5]


@pytest.fixture
def twilio() -> Iterator[Any]:
    with serve_in_thread(TwilioStandin()) as running:
        yield running


@pytest.fixture
def claude() -> Iterator[AnthropicStandin]:
    with AnthropicStandin(api_key=CLAUDE_KEY) as fake:
        yield fake


@pytest.fixture
def cal() -> Iterator[CalcomStandin]:
    with CalcomStandin(api_key=CAL_KEY) as fake:
        yield fake


@pytest.fixture
def team_services(
    settings: Settings, twilio: Any, claude: AnthropicStandin, cal: CalcomStandin
) -> Settings:
    return settings.model_copy(
        update={
            "twilio_account_sid": None,
            "twilio_auth_token": None,
            "twilio_base_url": twilio.base_url,
            "anthropic_api_key": None,
            "anthropic_base_url": claude.base_url,
            "calcom_api_key": None,
            "calcom_base_url": cal.base_url,
        }
    )


def run_test_job(db_url: str, settings: Settings, client_id: uuid.UUID) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        pool = async_pool(db_url, min_size=1, max_size=2)
        await pool.open()
        try:
            job = Job(1, "team.test_integrations", {"client_id": str(client_id)}, 0, 3)
            return await integration_checks_job(job, Context(pool, settings, "team-test"))
        finally:
            await pool.close()

    return asyncio.run(main())


def rpc(db: psycopg.Connection[Any], user: uuid.UUID, name: str, **body: Any) -> Any:
    return call_rpc(db, caller_for(user), name, body)


def test_connect_test_and_status(
    db: psycopg.Connection[Any],
    db_url: str,
    team_services: Settings,
    twilio: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    acme = make_client(db, "Integrations Acme")
    admin, _ = add_member(db, acme)
    sid, token = account()
    sender = number()
    twilio.standin.add_account(sid, token, [sender])

    answers = [
        rpc(db, admin, "connect_twilio", account_sid=sid, auth_token=token, phone_number=sender),
        rpc(db, admin, "connect_calcom", api_key=CAL_KEY, event_type_id=STANDIN_EVENT_TYPE_ID),
        rpc(db, admin, "connect_anthropic", api_key=CLAUDE_KEY, model="claude-haiku-4-5"),
    ]
    status = rpc(db, admin, "test_integrations")
    assert status["status"] == "queued"
    result = run_test_job(db_url, team_services, acme)
    assert result == {
        "twilio": {"ok": True, "error": None},
        "calcom": {"ok": True, "error": None},
        "anthropic": {"ok": True, "error": None},
    }, result
    integrations = rpc(db, admin, "get_integrations")["integrations"]
    assert integrations["twilio"]["connected"] and integrations["twilio"]["phone_number"] == sender
    assert integrations["twilio"]["last_tested"] is not None
    assert integrations["calcom"]["connected"]
    assert integrations["calcom"]["event_type_id"] == str(STANDIN_EVENT_TYPE_ID)
    assert (
        integrations["claude"]["connected"]
        and integrations["claude"]["model"] == "claude-haiku-4-5"
    )
    # Every member may read the status; nothing secret is in any of these answers.
    rep, _ = add_member(db, acme, "sales_rep")
    answers += [integrations, rpc(db, rep, "get_integrations"), rpc(db, admin, "list_users")]
    for secret in (token, CLAUDE_KEY, CAL_KEY):
        assert all(secret not in str(a) for a in answers)
        assert secret not in caplog.text

    # A wrong token, a number of another account, an unknown event type: each failure recorded
    # with its reason (and still no secret in it).
    other_sid, other_token = account()
    rpc(db, admin, "connect_twilio", account_sid=sid, auth_token=other_token, phone_number=sender)
    rpc(db, admin, "connect_calcom", api_key=CAL_KEY, event_type_id=999999)
    rpc(db, admin, "connect_anthropic", api_key="sk-ant-wrong-key-" + "1" * 20)
    result = run_test_job(db_url, team_services, acme)
    assert not any(check["ok"] for check in result.values()), result
    assert "401" in result["twilio"]["error"]
    assert "not found" in result["calcom"]["error"].lower()
    assert "401" in result["anthropic"]["error"]
    integrations = rpc(db, admin, "get_integrations")["integrations"]
    assert not integrations["twilio"]["connected"]
    assert integrations["twilio"]["last_error"] == result["twilio"]["error"]
    assert other_token not in str(integrations) and other_token not in caplog.text
    twilio.standin.add_account(other_sid, other_token, [])
    rpc(
        db,
        admin,
        "connect_twilio",
        account_sid=other_sid,
        auth_token=other_token,
        phone_number=sender,
    )
    result = run_test_job(db_url, team_services, acme)
    assert "is not a number of Twilio account" in result["twilio"]["error"]

    # Nor in the database server's log of this run.
    server_log = stack.Cluster.local(team_services).log_file
    if server_log.exists():
        text = server_log.read_text(errors="replace")
        for secret in (token, other_token, CLAUDE_KEY, CAL_KEY):
            assert secret not in text

    # Only admins connect or test.
    manager, _ = add_member(db, acme, "manager")
    with pytest.raises(RpcError) as refused:
        rpc(db, manager, "test_integrations")
    assert refused.value.error.status == 403


def test_workers_use_the_clients_own_credentials(
    db: psycopg.Connection[Any], db_url: str, team_services: Settings, twilio: Any
) -> None:
    acme = make_client(db, "Own creds")
    plain = make_client(db, "Platform creds")
    admin, _ = add_member(db, acme)
    sid, token = account()
    sender = number()
    twilio.standin.add_account(sid, token, [sender])
    rpc(db, admin, "connect_twilio", account_sid=sid, auth_token=token, phone_number=sender)
    rpc(db, admin, "connect_anthropic", api_key=CLAUDE_KEY)

    async def main() -> tuple[Any, ...]:
        pool = async_pool(db_url, min_size=1, max_size=2)
        await pool.open()
        try:
            creds = ClientCredentials(pool, team_services)
            own = await creds.twilio(acme)
            platform = await creds.twilio(plain)
            sent = await own.messages.create_async(to="+447911000222", from_=sender, body="hello")
            claude = await creds.anthropic(acme)
            await creds.close()
            return own.account_sid, platform.account_sid, sent.account_sid, claude.api_key
        finally:
            await pool.close()

    own_sid, platform_sid, sent_sid, claude_key = asyncio.run(main())
    assert (own_sid, sent_sid) == (sid, sid)
    assert platform_sid == LOCAL_ACCOUNT_SID
    assert claude_key == CLAUDE_KEY
    used = rpc(db, admin, "get_integrations")["integrations"]["claude"]["last_used"]
    assert used is not None


def test_webhook_is_verified_with_the_clients_own_token(
    db: psycopg.Connection[Any], functions_server: Any, tmp_path: Any
) -> None:
    acme = make_client(db, "Webhook own")
    other = make_client(db, "Webhook other")
    a_admin, _ = add_member(db, acme)
    b_admin, _ = add_member(db, other)
    a_sid, a_token = account()
    b_sid, b_token = account()
    a_number, b_number = number(), number()
    rpc(db, a_admin, "connect_twilio", account_sid=a_sid, auth_token=a_token, phone_number=a_number)
    rpc(db, b_admin, "connect_twilio", account_sid=b_sid, auth_token=b_token, phone_number=b_number)
    url = functions_server.twilio_webhook

    def deliver(token: str, account_sid: str, to: str) -> tuple[int, str]:
        params = inbound_params(account_sid=account_sid, from_="+447911000333", to=to, body="Hi")
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sign(token, url, params),
        }
        import httpx

        r = httpx.post(url, data=params, headers=headers, timeout=10)
        return r.status_code, params["MessageSid"]

    def stored(message_sid: str) -> bool:
        return (
            db.execute(
                "select count(*) as n from public.messages where twilio_sid = %s", (message_sid,)
            ).fetchone()["n"]
            == 1
        )

    status, msid = deliver(a_token, a_sid, a_number)
    assert status == 200 and stored(msid)
    # The platform's token, or another client's (even naming its own account), do not verify it.
    for token, acct in ((LOCAL_AUTH_TOKEN, LOCAL_ACCOUNT_SID), (b_token, b_sid), (b_token, a_sid)):
        status, msid = deliver(token, acct, a_number)
        assert status == 403 and not stored(msid)
    # A client without its own account is still verified with the platform's token.
    plain = make_client(db, "Webhook platform", twilio_phone_number=number())
    plain_number = db.execute(
        "select twilio_phone_number from public.clients where id = %s", (plain,)
    ).fetchone()["twilio_phone_number"]
    status, msid = deliver(LOCAL_AUTH_TOKEN, LOCAL_ACCOUNT_SID, plain_number)
    assert status == 200 and stored(msid)
    # Nothing secret in the function's log.
    log = functions_server.log.read_text(errors="replace")
    assert a_token not in log and b_token not in log
