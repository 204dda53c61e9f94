"""Integration health: check each outside service for real with the client's credentials (or
the platform's) and record the result, its time and the error text.

  Twilio     the sender number is fetched from the account (IncomingPhoneNumbers); a
             Messaging Service sender is checked by fetching the account itself
  Cal.com    the client's event type is fetched (GET /v2/event-types/{id})
  Anthropic  a token count of a one-word message (no tokens are spent)

Run by the `team.test_integrations` job (enqueued by the test_integrations RPC). Error texts
come from the services' answers and never contain a credential.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import anthropic
from psycopg_pool import AsyncConnectionPool
from twilio.base.exceptions import TwilioException, TwilioRestException

from dbr.db import call
from dbr.providers.calcom import CalcomError
from dbr.settings import Settings
from dbr.team import queries
from dbr.team.credentials import (
    anthropic_for,
    calcom_for,
    lookup,
    twilio_account,
    twilio_client_for,
)

log = logging.getLogger("dbr.team.integrations")


@dataclass(frozen=True)
class Check:
    service: str
    ok: bool
    error: str | None = None


async def _client_row(pool: AsyncConnectionPool, client_id: Any) -> dict[str, Any]:
    async with pool.connection() as conn:
        row = await (await conn.execute(queries.CLIENT_SENDER, (client_id,))).fetchone()
    if row is None:
        raise LookupError(f"no client {client_id}")
    return row


async def check_twilio(
    settings: Settings, creds: dict[str, Any] | None, row: dict[str, Any]
) -> Check:
    account = twilio_account(settings, creds)
    number, service = row["twilio_phone_number"], row["twilio_messaging_service_sid"]
    if not number and not service:
        return Check("twilio", False, "no sender: connect a phone number or a Messaging Service")
    client = twilio_client_for(settings, account)
    try:
        if number:
            found = await client.incoming_phone_numbers.list_async(phone_number=number, limit=1)
            if not found:
                return Check(
                    "twilio",
                    False,
                    f"{number} is not a number of Twilio account {account.account_sid}",
                )
        else:
            await client.api.v2010.accounts(account.account_sid).fetch_async()
        return Check("twilio", True)
    except TwilioRestException as exc:
        return Check("twilio", False, f"Twilio answered {exc.status}: {exc.msg}")
    except TwilioException as exc:
        # A list page that failed carries Twilio's response: {"code", "message", "status"}.
        response = exc.args[1] if len(exc.args) > 1 else None
        status = getattr(response, "status_code", None)
        if status is not None:
            return Check("twilio", False, f"Twilio answered {status}: {_twilio_message(response)}")
        return Check("twilio", False, f"Twilio could not be reached: {exc.__class__.__name__}")
    except OSError as exc:
        return Check("twilio", False, f"Twilio could not be reached: {exc.__class__.__name__}")
    finally:
        http = client.http_client
        close = getattr(http, "close", None)
        if close is not None:
            await close()


async def check_calcom(
    settings: Settings, creds: dict[str, Any] | None, row: dict[str, Any]
) -> Check:
    calcom = calcom_for(settings, creds)
    event_type = (
        (creds or {}).get("event_type_id")
        or (row["settings"].get("calcom") or {}).get("event_type_id")
        or calcom.default_event_type_id
    )
    if not event_type:
        return Check("calcom", False, "no event type: connect Cal.com with an event type")
    try:
        await calcom.get_event_type(int(event_type))
        return Check("calcom", True)
    except CalcomError as exc:
        return Check("calcom", False, f"Cal.com: {exc}")


async def check_anthropic(
    settings: Settings, creds: dict[str, Any] | None, row: dict[str, Any]
) -> Check:
    model = (
        (creds or {}).get("model")
        or row["settings"].get("anthropic_model")
        or settings.anthropic_model
    )
    client = anthropic_for(settings, creds, max_retries=0, timeout=15.0)
    try:
        await client.messages.count_tokens(
            model=str(model), messages=[{"role": "user", "content": "ping"}]
        )
        return Check("anthropic", True)
    except anthropic.APIStatusError as exc:
        return Check("anthropic", False, f"Anthropic answered {exc.status_code}: {_message(exc)}")
    except anthropic.APIError as exc:
        return Check(
            "anthropic", False, f"Anthropic could not be reached: {exc.__class__.__name__}"
        )
    finally:
        await client.close()


def _twilio_message(response: Any) -> str:
    try:
        body = json.loads(response.text)
    except (TypeError, ValueError):
        return "no details"
    return str(body.get("message") if isinstance(body, dict) else "no details")[:300]


def _message(exc: anthropic.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    err = body.get("error") if isinstance(body.get("error"), dict) else {}
    return str(err.get("message") or exc.__class__.__name__)[:300]


async def check_integrations(
    pool: AsyncConnectionPool, settings: Settings, client_id: Any
) -> list[Check]:
    """Checks every service for the client and records each result; returns them."""
    row = await _client_row(pool, client_id)
    checks = [
        await check_twilio(settings, await lookup(pool, client_id, "twilio"), row),
        await check_calcom(settings, await lookup(pool, client_id, "calcom"), row),
        await check_anthropic(settings, await lookup(pool, client_id, "anthropic"), row),
    ]
    async with pool.connection() as conn, conn.transaction():
        for check in checks:
            await call(
                conn,
                "private.record_integration_test",
                p_client_id=client_id,
                p_service=check.service,
                p_ok=check.ok,
                p_error=check.error,
            )
    log.info(
        "integrations of %s: %s",
        client_id,
        ", ".join(f"{c.service} {'ok' if c.ok else 'failed'}" for c in checks),
    )
    return checks
