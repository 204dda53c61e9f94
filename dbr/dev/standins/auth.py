"""Local stand-in for Supabase Auth (GoTrue): a real HTTP server on 127.0.0.1.

It speaks GoTrue's wire format (API version 2024-01-01) for what the product uses, under
`/auth/v1` like a Supabase project:

  POST /auth/v1/token?grant_type=password        sign in (signInWithPassword)
  POST /auth/v1/token?grant_type=refresh_token   refresh a session
  GET  /auth/v1/user                             the signed-in user (getUser)
  PUT  /auth/v1/user                             set the password / metadata (updateUser)
  POST /auth/v1/logout?scope=global|local|others sign out: revokes refresh tokens (signOut)
  POST /auth/v1/invite                           admin: invite by email (or resend a pending one)
  POST /auth/v1/admin/users                      admin: create a user
  GET  /auth/v1/admin/users/{id}                 admin: one user
  POST /auth/v1/recover                          send a password-recovery e-mail
  POST /auth/v1/verify, GET /auth/v1/verify      follow an invitation or recovery link
                                                 (token_hash, or email + token)
  GET  /auth/v1/health

It is backed by the local database's `auth.users` (bcrypt passwords with pgcrypto, as GoTrue
stores them) and signs access tokens with the local JWT secret (HS256), so PostgREST-style RLS
and the API accept them. Admin endpoints require a service_role token, as GoTrue does. Errors
are GoTrue's `{"code", "error_code", "msg"}`. Refresh tokens live in memory (a restart signs
everyone out, harmless locally); like GoTrue, sign-out cannot revoke an access token already
issued: the product refuses suspended members on every request instead.

Invitation e-mails are not sent: they are kept in `emails` (and `GET /_standin/emails`) with the
link and the one-time token, so a test or a developer can "click" them.

Tests start it in-process (`AuthStandin(database_url=..., settings=...).start()`); `dbr up` runs
`python -m dbr.dev.standins.auth --port 54343` when no Supabase project is configured.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import psycopg
from psycopg.rows import dict_row

from dbr.auth import InvalidToken, mint_token, verify_token
from dbr.dev.standins.http import Reply, Request, StandinServer
from dbr.settings import Settings

log = logging.getLogger("dbr.dev.standins.auth")

API_VERSION = "2024-01-01"
ACCESS_TOKEN_TTL = 3600

_USER_COLUMNS = """id, aud, role, email, email_confirmed_at, invited_at, confirmation_sent_at,
  last_sign_in_at, raw_app_meta_data, raw_user_meta_data, phone, created_at, updated_at,
  banned_until, coalesce(encrypted_password, '') <> '' as has_password"""


class AuthError(Exception):
    """A refusal in GoTrue's shape."""

    def __init__(self, status: int, error_code: str, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.error_code = error_code
        self.msg = msg


@dataclass(frozen=True)
class SentEmail:
    to: str
    kind: str  # "invite" or "recovery"
    token: str  # the one-time code ({{ .Token }} in GoTrue's templates)
    token_hash: str  # {{ .TokenHash }}
    link: str  # {{ .ConfirmationURL }}
    redirect_to: str | None


def token_hash(email: str, token: str) -> str:
    """GoTrue's hash of a one-time token: hex SHA-224 of email + token."""
    return hashlib.sha224((email.lower() + token).encode()).hexdigest()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class AuthStandin(StandinServer):
    thread_name = "auth-standin"

    def __init__(
        self, *, database_url: str, settings: Settings, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        super().__init__(host=host, port=port)
        self.database_url = database_url
        self.settings = settings
        self.emails: list[SentEmail] = []
        self.requests: list[tuple[str, str]] = []
        # refresh token -> (user id, session id)
        self._refresh: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """What a `supabase` client is created with (it adds /auth/v1)."""
        return self.origin

    # -- HTTP -------------------------------------------------------------------------------

    def respond(self, request: Request) -> Reply:
        try:
            return self._route(request)
        except AuthError as exc:
            return _reply(
                exc.status, {"code": exc.status, "error_code": exc.error_code, "msg": exc.msg}
            )
        except Exception:  # GoTrue answers 500 unexpected_failure; the details go to the log
            log.exception("%s %s failed", request.method, request.path)
            return _reply(
                500, {"code": 500, "error_code": "unexpected_failure", "msg": "Unexpected failure"}
            )

    def _route(self, request: Request) -> Reply:
        method, path = request.method, request.path.rstrip("/")
        query = {k: v[0] for k, v in request.query.items()}
        auth = request.headers.get("authorization")
        self.requests.append((method, path))
        if path == "/_standin/emails" and method == "GET":
            return _reply(200, {"emails": [e.__dict__ for e in self.emails]})
        if not path.startswith("/auth/v1"):
            raise AuthError(404, "not_found", "Not found")
        route = path.removeprefix("/auth/v1")
        if route == "/health" and method == "GET":
            return _reply(200, {"version": "standin", "name": "GoTrue", "description": "local"})
        if route == "/token" and method == "POST":
            grant = query.get("grant_type")
            if grant == "password":
                return _reply(200, self.sign_in_password(_json_body(request)))
            if grant == "refresh_token":
                return _reply(200, self.refresh(_json_body(request)))
            raise AuthError(400, "unsupported_grant_type", "unsupported_grant_type")
        if route == "/user" and method == "GET":
            return _reply(200, self.get_user(auth))
        if route == "/user" and method == "PUT":
            return _reply(200, self.update_user(auth, _json_body(request)))
        if route == "/logout" and method == "POST":
            self.logout(auth, query.get("scope", "global"))
            return _reply(204)
        if route == "/invite" and method == "POST":
            return _reply(200, self.invite(auth, _json_body(request), query.get("redirect_to")))
        if route == "/recover" and method == "POST":
            return _reply(200, self.recover(_json_body(request), query.get("redirect_to")))
        if route == "/admin/users" and method == "POST":
            return _reply(200, self.admin_create_user(auth, _json_body(request)))
        if route.startswith("/admin/users/") and method == "GET":
            return _reply(200, self.admin_get_user(auth, route.rsplit("/", 1)[1]))
        if route == "/verify" and method == "POST":
            return _reply(200, self.verify(_json_body(request)))
        if route == "/verify" and method == "GET":
            # The e-mail link: verify, then redirect with the session in the fragment.
            session = self.verify(query)
            target = query.get("redirect_to") or self.origin
            fragment = urlencode(
                {
                    "access_token": session["access_token"],
                    "refresh_token": session["refresh_token"],
                    "expires_in": session["expires_in"],
                    "token_type": "bearer",
                    "type": query.get("type", "invite"),
                }
            )
            return _reply(303, {}, {"Location": f"{target}#{fragment}"})
        raise AuthError(404, "not_found", f"{method} {route} is not served by the stand-in")

    # -- database ---------------------------------------------------------------------------

    def _db(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.database_url, autocommit=True, row_factory=dict_row)

    def _user_by(
        self, conn: psycopg.Connection[Any], where: str, *params: Any
    ) -> dict[str, Any] | None:
        return conn.execute(
            f"select {_USER_COLUMNS} from auth.users where {where}", params
        ).fetchone()

    def user_json(self, row: dict[str, Any]) -> dict[str, Any]:
        confirmed = row["email_confirmed_at"]
        return {
            "id": str(row["id"]),
            "aud": row["aud"] or "authenticated",
            "role": row["role"] or "authenticated",
            "email": row["email"],
            "phone": row["phone"] or "",
            "email_confirmed_at": _iso(confirmed),
            "confirmed_at": _iso(confirmed),
            "invited_at": _iso(row["invited_at"]),
            "confirmation_sent_at": _iso(row["confirmation_sent_at"]),
            "last_sign_in_at": _iso(row["last_sign_in_at"]),
            "app_metadata": row["raw_app_meta_data"]
            or {"provider": "email", "providers": ["email"]},
            "user_metadata": row["raw_user_meta_data"] or {},
            "identities": [],
            "created_at": _iso(row["created_at"]),
            "updated_at": _iso(row["updated_at"]),
            "banned_until": _iso(row["banned_until"]),
            "is_anonymous": False,
        }

    def session_json(self, row: dict[str, Any], session_id: str | None = None) -> dict[str, Any]:
        session_id = session_id or str(uuid.uuid4())
        user = self.user_json(row)
        access = mint_token(
            self.settings,
            user_id=row["id"],
            email=row["email"],
            ttl_seconds=ACCESS_TOKEN_TTL,
            extra_claims={
                "iss": f"{self.origin}/auth/v1",
                "phone": user["phone"],
                "app_metadata": user["app_metadata"],
                "user_metadata": user["user_metadata"],
                "aal": "aal1",
                "amr": [{"method": "password", "timestamp": int(time.time())}],
                "session_id": session_id,
                "is_anonymous": False,
            },
        )
        refresh = secrets.token_urlsafe(16)
        with self._lock:
            self._refresh[refresh] = (user["id"], session_id)
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": ACCESS_TOKEN_TTL,
            "expires_at": int(time.time()) + ACCESS_TOKEN_TTL,
            "refresh_token": refresh,
            "user": user,
        }

    # -- endpoints --------------------------------------------------------------------------

    def sign_in_password(self, body: dict[str, Any]) -> dict[str, Any]:
        email, password = body.get("email"), body.get("password")
        if not email or not password:
            raise AuthError(400, "validation_failed", "Email and password are required")
        with self._db() as conn:
            row = conn.execute(
                "select id, email_confirmed_at, banned_until from auth.users"
                " where lower(email) = lower(%s) and deleted_at is null"
                "   and encrypted_password is not null and encrypted_password <> ''"
                "   and encrypted_password = extensions.crypt(%s, encrypted_password)",
                (email, password),
            ).fetchone()
            if row is None:
                raise AuthError(400, "invalid_credentials", "Invalid login credentials")
            if row["email_confirmed_at"] is None:
                raise AuthError(400, "email_not_confirmed", "Email not confirmed")
            if row["banned_until"] is not None and row["banned_until"].timestamp() > time.time():
                raise AuthError(400, "user_banned", "User is banned")
            user = self._user_by(
                conn,
                "id = %s",
                conn.execute(
                    "update auth.users set last_sign_in_at = now() where id = %s returning id",
                    (row["id"],),
                ).fetchone()["id"],
            )
        assert user is not None
        return self.session_json(user)

    def refresh(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            found = self._refresh.pop(str(body.get("refresh_token") or ""), None)
        if found is None:
            raise AuthError(
                400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found"
            )
        with self._db() as conn:
            user = self._user_by(conn, "id = %s", found[0])
        if user is None:
            raise AuthError(400, "user_not_found", "User not found")
        return self.session_json(user, found[1])

    def caller(self, authorization: str | None) -> dict[str, Any]:
        token = (authorization or "").removeprefix("Bearer ").removeprefix("bearer ").strip()
        if not token:
            raise AuthError(401, "no_authorization", "This endpoint requires a Bearer token")
        try:
            caller = verify_token(self.settings, token)
        except InvalidToken as exc:
            raise AuthError(403, "bad_jwt", f"invalid JWT: {exc}") from exc
        return {"role": caller.role, "sub": caller.user_id, "claims": caller.claims}

    def get_user(self, authorization: str | None) -> dict[str, Any]:
        who = self.caller(authorization)
        if who["sub"] is None:
            raise AuthError(403, "bad_jwt", "invalid claim: missing sub claim")
        with self._db() as conn:
            user = self._user_by(conn, "id = %s and deleted_at is null", who["sub"])
        if user is None:
            raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
        return self.user_json(user)

    def update_user(self, authorization: str | None, body: dict[str, Any]) -> dict[str, Any]:
        who = self.caller(authorization)
        if who["sub"] is None:
            raise AuthError(403, "bad_jwt", "invalid claim: missing sub claim")
        password = body.get("password")
        if password is not None and len(str(password)) < 6:
            raise AuthError(422, "weak_password", "Password should be at least 6 characters.")
        with self._db() as conn:
            conn.execute(
                "update auth.users set"
                " encrypted_password = coalesce(extensions.crypt(%s, extensions.gen_salt('bf')),"
                " encrypted_password),"
                " raw_user_meta_data = coalesce(raw_user_meta_data, '{}')"
                " || coalesce(%s::jsonb, '{}'),"
                " updated_at = now() where id = %s",
                (password, json.dumps(body["data"]) if body.get("data") else None, who["sub"]),
            )
            user = self._user_by(conn, "id = %s", who["sub"])
        if user is None:
            raise AuthError(404, "user_not_found", "User not found")
        return self.user_json(user)

    def logout(self, authorization: str | None, scope: str) -> None:
        who = self.caller(authorization)
        sub, session_id = str(who["sub"]), who["claims"].get("session_id")
        with self._lock:
            for token, (user_id, sid) in list(self._refresh.items()):
                if user_id != sub:
                    continue
                same = sid == session_id
                if (
                    scope == "global"
                    or (scope == "local" and same)
                    or (scope == "others" and not same)
                ):
                    del self._refresh[token]

    def _verify_recovery(self, body: dict[str, Any]) -> dict[str, Any]:
        hashed = body.get("token_hash") or body.get("token")
        if body.get("email") and body.get("token") and not body.get("token_hash"):
            hashed = token_hash(str(body["email"]), str(body["token"]))
        with self._db() as conn:
            row = conn.execute(
                "update auth.users set recovery_token = '',"
                " email_confirmed_at = coalesce(email_confirmed_at, now()),"
                " last_sign_in_at = now(), updated_at = now()"
                " where recovery_token = %s and recovery_sent_at > now() - interval '24 hours'"
                " returning id",
                (hashed or "",),
            ).fetchone()
            if row is None:
                raise AuthError(403, "otp_expired", "Email link is invalid or has expired")
            user = self._user_by(conn, "id = %s", row["id"])
        assert user is not None
        return self.session_json(user)

    def require_admin(self, authorization: str | None) -> None:
        if self.caller(authorization)["role"] != "service_role":
            raise AuthError(403, "not_admin", "User not allowed")

    def invite(
        self, authorization: str | None, body: dict[str, Any], redirect_to: str | None
    ) -> dict[str, Any]:
        self.require_admin(authorization)
        email = str(body.get("email") or "").strip().lower()
        if "@" not in email:
            raise AuthError(
                400, "validation_failed", "Unable to validate email address: invalid format"
            )
        data = body.get("data") or {}
        with self._db() as conn, conn.transaction():
            existing = self._user_by(
                conn, "lower(email) = %s and deleted_at is null for update", email
            )
            if existing is not None and existing["email_confirmed_at"] is not None:
                raise AuthError(
                    422,
                    "email_exists",
                    "A user with this email address has already been registered",
                )
            token = f"{secrets.randbelow(10**6):06d}"
            hashed = token_hash(email, token)
            if existing is None:
                user_id = uuid.uuid4()
                conn.execute(
                    "insert into auth.users (instance_id, id, aud, role, email, encrypted_password,"
                    " invited_at, confirmation_token, confirmation_sent_at, raw_app_meta_data,"
                    " raw_user_meta_data, created_at, updated_at)"
                    " values ('00000000-0000-0000-0000-000000000000', %s,"
                    " 'authenticated', 'authenticated',"
                    " %s, '', now(), %s, now(), %s, %s, now(), now())",
                    (
                        user_id,
                        email,
                        hashed,
                        json.dumps({"provider": "email", "providers": ["email"]}),
                        json.dumps(data),
                    ),
                )
            else:
                # A pending invitation: GoTrue sends it again with a fresh token.
                user_id = existing["id"]
                conn.execute(
                    "update auth.users set confirmation_token = %s, confirmation_sent_at = now(),"
                    " invited_at = now(),"
                    " raw_user_meta_data = coalesce(raw_user_meta_data, '{}') || %s::jsonb,"
                    " updated_at = now() where id = %s",
                    (hashed, json.dumps(data), user_id),
                )
            user = self._user_by(conn, "id = %s", user_id)
        assert user is not None
        query = {"token": hashed, "type": "invite"}
        if redirect_to:
            query["redirect_to"] = redirect_to
        link = f"{self.origin}/auth/v1/verify?{urlencode(query)}"
        self.emails.append(SentEmail(email, "invite", token, hashed, link, redirect_to))
        log.info("invitation for %s", email)
        return self.user_json(user)

    def admin_create_user(self, authorization: str | None, body: dict[str, Any]) -> dict[str, Any]:
        self.require_admin(authorization)
        email = str(body.get("email") or "").strip().lower()
        if "@" not in email:
            raise AuthError(
                400, "validation_failed", "Unable to validate email address: invalid format"
            )
        password = body.get("password")
        with self._db() as conn:
            if self._user_by(conn, "lower(email) = %s and deleted_at is null", email) is not None:
                raise AuthError(
                    422,
                    "email_exists",
                    "A user with this email address has already been registered",
                )
            row = conn.execute(
                "insert into auth.users (instance_id, id, aud, role, email, encrypted_password,"
                " email_confirmed_at, raw_app_meta_data, raw_user_meta_data,"
                " created_at, updated_at)"
                " values ('00000000-0000-0000-0000-000000000000', gen_random_uuid(),"
                " 'authenticated',"
                " 'authenticated', %s,"
                " coalesce(extensions.crypt(%s, extensions.gen_salt('bf')), ''),"
                " case when %s then now() end, %s, %s, now(), now()) returning id",
                (
                    email,
                    password,
                    bool(body.get("email_confirm")),
                    json.dumps(
                        {
                            "provider": "email",
                            "providers": ["email"],
                            **(body.get("app_metadata") or {}),
                        }
                    ),
                    json.dumps(body.get("user_metadata") or body.get("data") or {}),
                ),
            ).fetchone()
            user = self._user_by(conn, "id = %s", row["id"])
        assert user is not None
        return self.user_json(user)

    def admin_get_user(self, authorization: str | None, user_id: str) -> dict[str, Any]:
        self.require_admin(authorization)
        try:
            uid = uuid.UUID(user_id)
        except ValueError as exc:
            raise AuthError(404, "user_not_found", "User not found") from exc
        with self._db() as conn:
            user = self._user_by(conn, "id = %s", uid)
        if user is None:
            raise AuthError(404, "user_not_found", "User not found")
        return self.user_json(user)

    def recover(self, body: dict[str, Any], redirect_to: str | None) -> dict[str, Any]:
        """A recovery e-mail for an existing user; like GoTrue, the answer never says whether
        the address is known."""
        email = str(body.get("email") or "").strip().lower()
        if "@" not in email:
            raise AuthError(400, "validation_failed", "Unable to validate email address")
        token = f"{secrets.randbelow(10**6):06d}"
        hashed = token_hash(email, token)
        with self._db() as conn:
            row = conn.execute(
                "update auth.users set recovery_token = %s, recovery_sent_at = now()"
                " where lower(email) = %s and deleted_at is null returning id",
                (hashed, email),
            ).fetchone()
        if row is not None:
            query = {"token": hashed, "type": "recovery"}
            if redirect_to:
                query["redirect_to"] = redirect_to
            link = f"{self.origin}/auth/v1/verify?{urlencode(query)}"
            self.emails.append(SentEmail(email, "recovery", token, hashed, link, redirect_to))
        return {}

    def verify(self, body: dict[str, Any]) -> dict[str, Any]:
        kind = body.get("type")
        if kind == "recovery":
            return self._verify_recovery(body)
        if kind not in ("invite", "signup", "email"):
            raise AuthError(400, "validation_failed", f"Unsupported verification type {kind!r}")
        hashed = body.get("token_hash")
        if not hashed and body.get("email") and body.get("token"):
            hashed = token_hash(str(body["email"]), str(body["token"]))
        if not hashed and body.get("token"):
            hashed = body["token"]  # the link's form: ?token=<hash>
        if not hashed:
            raise AuthError(400, "validation_failed", "Verify requires a token or a token hash")
        with self._db() as conn:
            row = conn.execute(
                "update auth.users set email_confirmed_at = coalesce(email_confirmed_at, now()),"
                " confirmation_token = '', last_sign_in_at = now(), updated_at = now()"
                " where confirmation_token = %s"
                " and confirmation_sent_at > now() - interval '24 hours'"
                " returning id",
                (hashed,),
            ).fetchone()
            if row is None:
                raise AuthError(403, "otp_expired", "Email link is invalid or has expired")
            user = self._user_by(conn, "id = %s", row["id"])
        assert user is not None
        return self.session_json(user)


_HEADERS = {"X-Supabase-Api-Version": API_VERSION}


def _reply(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
    if body is None:
        return Reply(status, b"", {**_HEADERS, **(headers or {})})
    return Reply(status, body, {**_HEADERS, **(headers or {})})


def _json_body(request: Request) -> dict[str, Any]:
    try:
        data = request.json()
    except ValueError as exc:
        raise AuthError(400, "bad_json", "Could not parse request body as JSON") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AuthError(400, "bad_json", "Request body must be a JSON object")
    return data


def main(argv: list[str] | None = None) -> None:
    from dbr.settings import get_settings

    settings = get_settings()
    parser = argparse.ArgumentParser(description="Local stand-in for Supabase Auth (GoTrue).")
    parser.add_argument("--port", type=int, default=settings.auth_standin_port)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    standin = AuthStandin(
        database_url=settings.database_url, settings=settings, host=args.host, port=args.port
    )
    log.info("Auth stand-in on http://%s:%s/auth/v1", args.host, args.port)
    standin.serve_forever()


if __name__ == "__main__":
    main()
