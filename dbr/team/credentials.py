"""A client's own credentials for Twilio, Cal.com and Anthropic, or the platform's.

Secrets are kept in Supabase Vault and read only here, by the workers, through
`private.integration_credentials(client_id, service)` (granted to the service login alone).
Nothing in this module logs a secret or puts one in an exception message.

    creds = ClientCredentials(pool, settings)            # one per worker process
    twilio = await creds.twilio(client_id)               # twilio.rest.Client for that client
    claude = await creds.anthropic(client_id)            # AsyncAnthropic
    calcom = await creds.calcom(client_id)               # CalcomClient

A client without credentials of its own gets the platform's (the settings'); clients are cached
for `ttl` seconds, so a reconnect takes effect within that time. Base URLs follow the
platform's: against the local stand-ins, a client's own account talks to the stand-ins too.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import time
from dataclasses import dataclass
from typing import Any

from anthropic import AsyncAnthropic
from psycopg_pool import AsyncConnectionPool
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from dbr.auth import Caller
from dbr.db import call_as
from dbr.providers import twilio as twilio_provider
from dbr.providers.anthropic import anthropic_client
from dbr.providers.calcom import CalcomClient, calcom_client
from dbr.settings import Settings
from dbr.team import queries

SERVICES = ("twilio", "calcom", "anthropic")


@dataclass(frozen=True)
class TwilioAccount:
    account_sid: str
    auth_token: str
    own: bool  # the client's own account (else the platform's)

    def __repr__(self) -> str:  # never the token
        return f"TwilioAccount({self.account_sid!r}, own={self.own})"


async def lookup(pool: AsyncConnectionPool, client_id: Any, service: str) -> dict[str, Any] | None:
    """The client's own credentials for `service` (config and secret), or None."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}")
    creds = await call_as(
        pool, None, "private.integration_credentials", p_client_id=client_id, p_service=service
    )
    return creds if creds else None


def twilio_account(settings: Settings, creds: dict[str, Any] | None) -> TwilioAccount:
    if creds and creds.get("account_sid") and creds.get("auth_token"):
        return TwilioAccount(str(creds["account_sid"]), str(creds["auth_token"]), True)
    sid, token = twilio_provider.credentials(settings)
    return TwilioAccount(sid, token, False)


def twilio_client_for(
    settings: Settings, account: TwilioAccount, *, timeout: float = 15.0
) -> Client:
    """An async-transport Twilio client for the account (build it inside the running loop)."""
    client = Client(
        account.account_sid, account.auth_token, http_client=AsyncTwilioHttpClient(timeout=timeout)
    )
    url = twilio_provider.base_url(settings)
    if url:
        client.api.base_url = url
    return client


def anthropic_for(settings: Settings, creds: dict[str, Any] | None, **kw: Any) -> AsyncAnthropic:
    if creds and creds.get("api_key"):
        kw.setdefault("timeout", 30.0)
        kw.setdefault("max_retries", 3)
        base = settings.anthropic_base_url or (
            None
            if settings.anthropic_api_key
            else f"http://127.0.0.1:{settings.anthropic_standin_port}"
        )
        if base:
            kw.setdefault("base_url", base)
        return AsyncAnthropic(api_key=str(creds["api_key"]), **kw)
    return anthropic_client(settings, **kw)


def calcom_for(settings: Settings, creds: dict[str, Any] | None) -> CalcomClient:
    platform = calcom_client(settings)
    if creds and creds.get("api_key"):
        return CalcomClient(
            platform.base_url,
            str(creds["api_key"]),
            default_event_type_id=platform.default_event_type_id,
            booking_page_base=platform._booking_page_base,
        )
    return platform


class ClientCredentials:
    """Per-client provider clients, cached for `ttl` seconds (one instance per worker)."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        settings: Settings,
        *,
        ttl: float = 60.0,
        platform: dict[str, Any] | None = None,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.ttl = ttl
        # Platform clients already built (by the worker, or a test), used for clients without
        # credentials of their own: {"twilio": ..., "anthropic": ..., "calcom": ...}.
        self.platform = {k: v for k, v in (platform or {}).items() if v is not None}
        self._cache: dict[tuple[str, str], tuple[float, str, Any]] = {}

    async def _get(self, client_id: Any, service: str, build: Any) -> Any:
        key = (str(client_id), service)
        hit = self._cache.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[2]
        creds = await lookup(self.pool, client_id, service) if client_id else None
        # Same credentials as before: keep the client (and its connections) for another ttl.
        fingerprint = hashlib.sha256(json.dumps(creds, sort_keys=True).encode()).hexdigest()
        if hit and hit[1] == fingerprint:
            value = hit[2]
        elif creds is None and service in self.platform:
            value = self.platform[service]
        else:
            value = build(creds)
        self._cache[key] = (time.monotonic() + self.ttl, fingerprint, value)
        return value

    async def twilio(self, client_id: Any) -> Client:
        return await self._get(
            client_id,
            "twilio",
            lambda c: twilio_client_for(self.settings, twilio_account(self.settings, c)),
        )

    async def anthropic(self, client_id: Any) -> AsyncAnthropic:
        """Claude for the client; the use is recorded (claude.last_used of the integrations)."""
        client = await self._get(client_id, "anthropic", lambda c: anthropic_for(self.settings, c))
        if client_id:
            await self.note_used(client_id, "anthropic")
        return client

    async def calcom(self, client_id: Any) -> CalcomClient:
        return await self._get(client_id, "calcom", lambda c: calcom_for(self.settings, c))

    async def close(self) -> None:
        """Closes the clients built here (not the platform's: their owner closes them). The
        worker runtime calls it at shutdown, like every client in its context."""
        platform = [id(v) for v in self.platform.values()]
        built = {id(v): v for _, _, v in self._cache.values() if id(v) not in platform}
        self._cache.clear()
        for value in built.values():
            target = getattr(value, "http_client", None) if isinstance(value, Client) else value
            closer = getattr(target, "close", None)
            if closer is None:
                continue
            result = closer()
            if inspect.isawaitable(result):
                await result

    async def note_used(self, client_id: Any, service: str) -> None:
        """Records that the service was used for the client (GET settings/integrations shows it)."""
        await call_as(
            self.pool,
            None,
            "private.note_integration_used",
            p_client_id=client_id,
            p_service=service,
        )


async def client_calcom(
    pool: AsyncConnectionPool, settings: Settings, caller: Caller, platform: CalcomClient
) -> CalcomClient:
    """For an API request: the caller's client's own Cal.com, else `platform`."""
    if caller.user_id is None:
        return platform
    async with pool.connection() as conn:
        row = await (await conn.execute(queries.CALLER_CALCOM, (caller.user_id,))).fetchone()
    creds = row["c"] if row else None
    if not creds or not creds.get("api_key"):
        return platform
    return CalcomClient(
        platform.base_url,
        str(creds["api_key"]),
        default_event_type_id=platform.default_event_type_id,
        booking_page_base=platform._booking_page_base,
    )


async def twilio_for_client(ctx: Any, client_id: Any, platform: Client) -> Client:
    """For a worker job (`ctx` a workers.jobs.Context): the Twilio client of `client_id`'s own
    account, else `platform` (the worker's client). One ClientCredentials per worker."""
    creds = ctx.clients.get("credentials")
    if creds is None:
        creds = ctx.clients["credentials"] = ClientCredentials(ctx.pool, ctx.settings)
    creds.platform.setdefault("twilio", platform)
    return await creds.twilio(client_id)
