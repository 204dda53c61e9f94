"""Twilio client factory: the real API when credentials are set, the local stand-in otherwise.

The same `twilio` SDK code runs either way; only `client.api.base_url` changes (DESIGN §7).
Webhooks Twilio calls (status callbacks, inbound SMS) are signed with the account's auth
token over the PUBLIC URL Twilio called, so the receiver needs that token and that URL:
`webhook_auth_token()` and `status_callback_url()` give both, for the real account or the
stand-in's fixed local account.

Usage (the sms.send handler):

    client = await twilio_client(settings)            # async http client, built in the loop
    msg = await client.messages.create_async(to=..., from_=..., body=...,
                                             status_callback=status_callback_url(settings),
                                             validity_period=DEFAULT_VALIDITY_PERIOD)
"""

from __future__ import annotations

from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from dbr.settings import Settings

# The stand-in's account. Fixed values so the edge function, the stand-in, the workers and
# `dbr simulate reply` agree without configuration (not secrets: they only exist locally).
LOCAL_ACCOUNT_SID = "AC10ca1000000000000000000000000000"
LOCAL_AUTH_TOKEN = "10ca1a0e0e0e0e0e0e0e0e0e0e0e0e0e"
WEBHOOK_FUNCTION = "twilio-webhook"

# Seconds a message may wait in Twilio's queue before Twilio drops it: a marketing SMS that
# could not leave within the hour would otherwise arrive late, maybe outside the sending
# window. Twilio accepts 1..36000 (default 36000, i.e. ten hours).
DEFAULT_VALIDITY_PERIOD = 3600


def has_credentials(settings: Settings) -> bool:
    return bool(settings.twilio_account_sid and settings.twilio_auth_token)


def credentials(settings: Settings) -> tuple[str, str]:
    """(account SID, auth token): the real account's, or the stand-in's local account."""
    if has_credentials(settings):
        return str(settings.twilio_account_sid), str(settings.twilio_auth_token)
    return LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN


def base_url(settings: Settings) -> str | None:
    """Where the Messages API lives: an explicit override, the stand-in, or Twilio (None)."""
    if settings.twilio_base_url:
        return settings.twilio_base_url.rstrip("/")
    return None if has_credentials(settings) else standin_base_url(settings)


def standin_base_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.twilio_standin_port}"


def webhook_auth_token(settings: Settings) -> str:
    """The token Twilio signs webhooks with (X-Twilio-Signature)."""
    return credentials(settings)[1]


def webhook_url(settings: Settings) -> str:
    """The public URL of the twilio-webhook edge function, as Twilio calls it."""
    return f"{settings.public_webhook_base_url.rstrip('/')}/{WEBHOOK_FUNCTION}"


def status_callback_url(settings: Settings) -> str:
    return webhook_url(settings)


def local_functions_url(settings: Settings, name: str = WEBHOOK_FUNCTION) -> str:
    """The edge function served by the local functions server (`dbr up`)."""
    return f"http://127.0.0.1:{settings.functions_port}/functions/v1/{name}"


def _point(client: Client, settings: Settings) -> Client:
    url = base_url(settings)
    if url:
        client.api.base_url = url
    return client


def sync_client(settings: Settings) -> Client:
    """A blocking client (CLI, scripts, tests)."""
    sid, token = credentials(settings)
    return _point(Client(sid, token), settings)


async def twilio_client(settings: Settings, *, timeout: float = 15.0) -> Client:
    """A client on the SDK's aiohttp transport; call from inside the running event loop
    (aiohttp binds its session to it) and close with `await client.http_client.close()`."""
    sid, token = credentials(settings)
    http = AsyncTwilioHttpClient(timeout=timeout)
    return _point(Client(sid, token, http_client=http), settings)
