"""Email through Resend's HTTP API (httpx): the real API with RESEND_API_KEY, the local
stand-in (dbr/dev/standins/email.py) without.

    POST {base}/emails   Authorization: Bearer <key>   Idempotency-Key: <key>
    {"from", "to": [..], "subject", "text", "html", "tags": [{"name", "value"}]}  ->  {"id"}

Every send carries an Idempotency-Key: Resend answers a repeat of the same key (within 24 h)
with the first answer and sends nothing, so retrying after a timeout or a crash between the
send and the record can never email someone twice. Errors come back as
{"statusCode", "name", "message"} and are raised as `EmailError`.

Usage (the notify.email job):

    client = email_client(settings)
    email_id = await client.send(to="jo@x.test", subject="Hot lead", text="...", html="...",
                                 idempotency_key="notify-<delivery id>")
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

from dbr.errors import DbrError
from dbr.settings import Settings

log = logging.getLogger("dbr.email")

CLOUD_BASE_URL = "https://api.resend.com"
# The stand-in's key: a fixed local value (not a secret: it only exists on this machine).
LOCAL_API_KEY = "re_local_standin_key"


class EmailError(DbrError):
    """Resend refused or failed a send. `status` is Resend's HTTP status (502 when Resend was
    not reached), `code` Resend's error name (validation_error, rate_limit_exceeded...) or
    network_error / timeout / invalid_response."""

    status = 502

    @property
    def retryable(self) -> bool:
        """Worth retrying with the same idempotency key: Resend down, slow, rate limiting, a
        concurrent request with the same key, or a key problem an operator can fix."""
        if self.code in ("network_error", "timeout", "concurrent_idempotent_requests"):
            return True
        return self.status >= 500 or self.status in (401, 403, 429)


def has_credentials(settings: Settings) -> bool:
    return bool(settings.resend_api_key)


def standin_base_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.email_standin_port}"


def base_url(settings: Settings) -> str:
    """An explicit override, Resend itself (with a key), or the local stand-in."""
    if settings.resend_base_url:
        return settings.resend_base_url.rstrip("/")
    return CLOUD_BASE_URL if has_credentials(settings) else standin_base_url(settings)


def api_key(settings: Settings) -> str:
    return settings.resend_api_key or LOCAL_API_KEY


@dataclass
class EmailClient:
    base_url: str
    api_key: str
    sender: str
    timeout: float = 15.0
    _http: httpx.AsyncClient | None = field(default=None, repr=False)

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.base_url,
                timeout=self.timeout,
                headers={"Authorization": f"Bearer {self.api_key}", "User-Agent": "dbr-notify/1"},
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def send(
        self,
        *,
        to: str | list[str],
        subject: str,
        text: str,
        html: str | None = None,
        idempotency_key: str,
        tags: dict[str, str] | None = None,
    ) -> str:
        """Sends one email; returns Resend's email id. Raises EmailError."""
        body: dict[str, Any] = {
            "from": self.sender,
            "to": [to] if isinstance(to, str) else to,
            "subject": subject,
            "text": text,
        }
        if html is not None:
            body["html"] = html
        if tags:
            body["tags"] = [{"name": k, "value": v} for k, v in tags.items()]
        try:
            resp = await self._client().post(
                "/emails", json=body, headers={"Idempotency-Key": idempotency_key}
            )
        except httpx.TimeoutException as exc:
            raise EmailError(f"Resend did not answer in time: {exc}", code="timeout") from exc
        except httpx.HTTPError as exc:
            raise EmailError(f"Resend unreachable: {exc}", code="network_error") from exc
        try:
            data = resp.json()
        except ValueError:
            data = None
        if resp.status_code >= 400 or not isinstance(data, dict):
            err = data if isinstance(data, dict) else {}
            what = err.get("message", resp.text[:200])
            raise EmailError(
                f"Resend {resp.status_code} {err.get('name', '')}: {what}",
                status=resp.status_code if resp.status_code >= 400 else 502,
                code=str(
                    err.get("name") or ("invalid_response" if resp.status_code < 400 else "error")
                ),
                details=err or None,
            )
        email_id = data.get("id")
        if not isinstance(email_id, str) or not email_id:
            raise EmailError("Resend answered without an email id", code="invalid_response")
        return email_id


def email_client(settings: Settings) -> EmailClient:
    return EmailClient(base_url(settings), api_key(settings), settings.notify_email_from)
