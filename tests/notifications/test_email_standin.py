"""The Resend stand-in speaks Resend's wire format (driven through plain HTTP and through our
httpx client), including idempotency, and our client maps its errors."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from dbr.dev.standins.email import EmailStandin
from dbr.providers.email import LOCAL_API_KEY, EmailClient, EmailError, base_url
from dbr.settings import Settings

AUTH = {"Authorization": f"Bearer {LOCAL_API_KEY}"}
MAIL = {"from": "DBR <n@dbr.test>", "to": "jo@example.test", "subject": "Hi", "text": "Hello"}


def test_send_and_fetch(email: EmailStandin) -> None:
    r = httpx.post(f"{email.base_url}/emails", json=MAIL, headers=AUTH)
    assert r.status_code == 200 and set(r.json()) == {"id"}
    got = httpx.get(f"{email.base_url}/emails/{r.json()['id']}", headers=AUTH).json()
    assert got["object"] == "email" and got["to"] == ["jo@example.test"]
    assert got["subject"] == "Hi" and got["last_event"] == "delivered"


@pytest.mark.parametrize(
    ("headers", "body", "status", "name"),
    [
        ({}, MAIL, 401, "missing_api_key"),
        ({"Authorization": "Bearer re_wrong"}, MAIL, 401, "validation_error"),
        (AUTH, {k: v for k, v in MAIL.items() if k != "to"}, 422, "missing_required_field"),
        (AUTH, {k: v for k, v in MAIL.items() if k != "text"}, 422, "missing_required_field"),
        (AUTH, MAIL | {"to": "not-an-address"}, 422, "validation_error"),
        (AUTH, MAIL | {"tags": [{"name": "a b", "value": "x"}]}, 422, "validation_error"),
        (AUTH | {"Idempotency-Key": "x" * 257}, MAIL, 400, "invalid_idempotency_key"),
    ],
)
def test_refusals_have_resends_shape(email, headers, body, status, name) -> None:
    r = httpx.post(f"{email.base_url}/emails", json=body, headers=headers)
    assert r.status_code == status
    assert r.json()["statusCode"] == status and r.json()["name"] == name and r.json()["message"]
    assert email.sent() == []


def test_idempotency_key_replays_the_first_answer_and_refuses_another_body(email) -> None:
    key = AUTH | {"Idempotency-Key": "notify-1"}
    first = httpx.post(f"{email.base_url}/emails", json=MAIL, headers=key).json()
    again = httpx.post(f"{email.base_url}/emails", json=MAIL, headers=key).json()
    assert first == again and len(email.sent()) == 1
    other = httpx.post(f"{email.base_url}/emails", json=MAIL | {"subject": "Other"}, headers=key)
    assert other.status_code == 409 and other.json()["name"] == "invalid_idempotent_request"
    assert len(email.sent()) == 1


def test_our_client_maps_errors(email) -> None:
    client = EmailClient(email.base_url, LOCAL_API_KEY, "DBR <n@dbr.test>")

    async def send(**kw):
        try:
            return await client.send(
                to="jo@example.test", subject="Hi", text="x", idempotency_key="k", **kw
            )
        finally:
            await client.aclose()

    email.fail_next(429)
    with pytest.raises(EmailError) as limited:
        asyncio.run(send())
    assert limited.value.retryable and limited.value.code == "rate_limit_exceeded"
    with pytest.raises(EmailError) as bad:
        asyncio.run(send(html=None, tags={"bad tag": "x"}))
    assert not bad.value.retryable and bad.value.status == 422
    assert asyncio.run(send()) == email.sent()[0]["id"]


def test_unreachable_resend_is_retryable() -> None:
    client = EmailClient("http://127.0.0.1:9", LOCAL_API_KEY, "n@dbr.test", timeout=2)

    async def send() -> str:
        try:
            return await client.send(to="a@b.test", subject="s", text="t", idempotency_key="k")
        finally:
            await client.aclose()

    with pytest.raises(EmailError) as down:
        asyncio.run(send())
    assert down.value.retryable and down.value.code == "network_error"


def test_without_a_key_the_stand_in_is_used(settings: Settings) -> None:
    local = settings.model_copy(update={"resend_api_key": None, "resend_base_url": None})
    assert base_url(local) == f"http://127.0.0.1:{settings.email_standin_port}"
    real = local.model_copy(update={"resend_api_key": "re_live"})
    assert base_url(real) == "https://api.resend.com"
