"""Supabase JWTs: minted locally with the project's secret, verified with PyJWT.

Verification accepts HS256 tokens signed with the project's JWT secret and, when a JWKS
URL is configured, asymmetric tokens (RS256/ES256) signed by the project's keys.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jwt

from dbr.settings import Settings


class InvalidToken(Exception):
    """The bearer token is missing, malformed, expired or wrongly signed."""


@dataclass(frozen=True)
class Caller:
    user_id: uuid.UUID | None
    role: str
    claims: dict[str, Any]


def mint_token(
    settings: Settings,
    *,
    user_id: uuid.UUID | str | None,
    email: str | None = None,
    role: str = "authenticated",
    ttl_seconds: int = 3600,
    extra_claims: dict[str, Any] | None = None,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": settings.jwt_audience,
        "role": role,
        "iat": now,
        "exp": now + ttl_seconds,
        "iss": "supabase-local",
    }
    if user_id is not None:
        claims["sub"] = str(user_id)
    if email:
        claims["email"] = email
    if extra_claims:
        claims.update(extra_claims)
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


@lru_cache(maxsize=4)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True)


def verify_token(settings: Settings, token: str) -> Caller:
    try:
        header = jwt.get_unverified_header(token)
        alg = header.get("alg")
        if alg == "HS256":
            key: Any = settings.jwt_secret
        elif settings.jwks_url and alg in ("RS256", "ES256"):
            key = _jwks_client(settings.jwks_url).get_signing_key_from_jwt(token).key
        else:
            raise InvalidToken(f"unsupported signing algorithm {alg!r}")
        claims = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=settings.jwt_audience,
            options={"require": ["exp", "role"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    role = claims.get("role")
    if role not in ("authenticated", "service_role", "anon"):
        raise InvalidToken(f"role {role!r} is not allowed")
    sub = claims.get("sub")
    try:
        user_id = uuid.UUID(sub) if sub else None
    except ValueError as exc:
        raise InvalidToken("sub is not a uuid") from exc
    if role == "authenticated" and user_id is None:
        raise InvalidToken("an authenticated token needs a sub")
    return Caller(user_id=user_id, role=role, claims=claims)
