"""Supabase Auth for the product: where it is, with which keys, through the `supabase` client.

With `SUPABASE_URL` and `SUPABASE_SERVICE_ROLE_KEY` set, the project's own Auth is used. Without
them the local Auth stand-in (`dbr.dev.standins.auth`, started by `dbr up` on
`auth_standin_port`) answers, with keys minted from the local JWT secret exactly like the
well-known keys of `supabase start`.
"""

from __future__ import annotations

from dbr.auth import mint_token
from dbr.settings import Settings
from supabase import (
    AsyncClient,
    AsyncClientOptions,
    Client,
    ClientOptions,
    acreate_client,
    create_client,
)

_TEN_YEARS = 10 * 365 * 24 * 3600


def uses_standin(settings: Settings) -> bool:
    """True when no Supabase project is configured: the local Auth stand-in serves Auth."""
    return not (settings.supabase_url and settings.supabase_service_role_key)


def base_url(settings: Settings) -> str:
    """The Supabase project URL the `supabase` client is given (it adds /auth/v1)."""
    if not uses_standin(settings):
        assert settings.supabase_url
        return settings.supabase_url.rstrip("/")
    return f"http://127.0.0.1:{settings.auth_standin_port}"


def service_role_key(settings: Settings) -> str:
    if not uses_standin(settings):
        assert settings.supabase_service_role_key
        return settings.supabase_service_role_key
    return mint_token(settings, user_id=None, role="service_role", ttl_seconds=_TEN_YEARS)


def anon_key(settings: Settings) -> str:
    if settings.supabase_anon_key:
        return settings.supabase_anon_key
    return mint_token(settings, user_id=None, role="anon", ttl_seconds=_TEN_YEARS)


async def admin_client(settings: Settings) -> AsyncClient:
    """A service-role client for `auth.admin` calls (invites). Server side: no session is kept
    or refreshed in the background."""
    # Implicit flow: links it has Auth e-mail must work in the user's browser, which does not
    # hold a PKCE verifier made on this server.
    options = AsyncClientOptions(
        auto_refresh_token=False, persist_session=False, flow_type="implicit"
    )
    return await acreate_client(base_url(settings), service_role_key(settings), options)


def user_client(settings: Settings) -> Client:
    """A client with the public (anon) key, as a frontend holds it: sign in, get user, sign out."""
    options = ClientOptions(auto_refresh_token=False)
    return create_client(base_url(settings), anon_key(settings), options)
