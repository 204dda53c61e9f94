"""Local stand-in for Resend's email API: a real HTTP server on 127.0.0.1.

It speaks Resend's wire format for what this product uses:
  POST /emails          send (JSON: from, to, subject, text/html, cc, bcc, reply_to, tags),
                        Authorization: Bearer <key>, optional Idempotency-Key  ->  {"id"}
  GET  /emails/{id}     the email as Resend returns it (object "email", last_event)
Errors have Resend's shape {"statusCode", "name", "message"}: 401 missing_api_key /
validation_error (bad key), 422 missing_required_field / validation_error, 400
invalid_idempotency_key, 409 invalid_idempotent_request (same key, another body).

Idempotency as Resend does it: a repeat of a key with the same body within 24 h gets the first
answer and sends nothing; with another body it is refused (409).

Tests start it in-process (`EmailStandin().start()`), read `sent()` and inject failures with
`fail_next(status, mode="reject"|"accept")` ("accept": the email IS sent, then the answer fails:
the window in which a crashed sender cannot know). `dbr up` runs it as
`python -m dbr.dev.standins.email --port 54344` when RESEND_API_KEY is unset; the same controls
are served over HTTP:
  GET    /_standin/emails[?to=]   what was sent
  DELETE /_standin/emails         forget everything
  POST   /_standin/failures       {"next": n, "status": 500|429|..., "mode": "reject"|"accept"}
"""

from __future__ import annotations

import argparse
import logging
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dbr.dev.standins.http import Reply, Request, StandinServer
from dbr.providers.email import LOCAL_API_KEY

log = logging.getLogger("dbr.dev.standins.email")

_ADDRESS = re.compile(
    r"^(?:[^<>@\s]+@[^<>@\s]+\.[^<>@\s]+|[^<>]*<[^<>@\s]+@[^<>@\s]+\.[^<>@\s]+>)$"
)
_NAMES = {
    400: "validation_error",
    401: "missing_api_key",
    403: "invalid_api_key",
    409: "invalid_idempotent_request",
    422: "validation_error",
    429: "rate_limit_exceeded",
    500: "application_error",
    503: "application_error",
}


@dataclass
class _Failure:
    status: int
    times: int
    mode: str  # "reject": nothing sent; "accept": sent, then the answer fails


@dataclass
class _State:
    emails: list[dict[str, Any]] = field(default_factory=list)
    idempotency: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    failures: list[_Failure] = field(default_factory=list)
    requests: int = 0


class ResendError(Exception):
    def __init__(self, status: int, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.name = status, message, name or _NAMES.get(status, "error")

    def body(self) -> dict[str, Any]:
        return {"statusCode": self.status, "name": self.name, "message": self.message}


def _addresses(value: Any, key: str, *, required: bool) -> list[str]:
    if value is None:
        if required:
            raise ResendError(422, f"Missing `{key}` field.", "missing_required_field")
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(a, str) for a in items):
        raise ResendError(
            422, f"Invalid `{key}` field. It must be a string or an array of strings."
        )
    if len(items) > 50:
        raise ResendError(422, f"Invalid `{key}` field. At most 50 recipients.")
    for address in items:
        if not _ADDRESS.match(address.strip()):
            raise ResendError(
                422,
                f"Invalid `{key}` field. The email address needs to follow the `email@example.com` "
                "or `Name <email@example.com>` format.",
            )
    return items


def validate(body: Any) -> dict[str, Any]:
    """The email Resend would accept from `body`, or ResendError as Resend would answer."""
    if not isinstance(body, dict):
        raise ResendError(422, "The request body must be a JSON object.")
    sender = body.get("from")
    if not sender:
        raise ResendError(422, "Missing `from` field.", "missing_required_field")
    _addresses(sender, "from", required=True)
    to = _addresses(body.get("to"), "to", required=True)
    if not to:
        raise ResendError(422, "Missing `to` field.", "missing_required_field")
    subject = body.get("subject")
    if not isinstance(subject, str) or not subject:
        raise ResendError(422, "Missing `subject` field.", "missing_required_field")
    if not body.get("html") and not body.get("text") and not body.get("react"):
        raise ResendError(422, "Missing `html` or `text` field.", "missing_required_field")
    for key in ("cc", "bcc", "reply_to"):
        _addresses(body.get(key), key, required=False)
    tags = body.get("tags") or []
    if not isinstance(tags, list) or not all(
        isinstance(t, dict)
        and re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(t.get("name", "")))
        and re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(t.get("value", "")))
        for t in tags
    ):
        raise ResendError(
            422,
            "Invalid `tags` field: names and values may only contain ASCII letters, "
            "numbers, underscores or dashes.",
        )
    return {
        "from": sender,
        "to": to,
        "subject": subject,
        "text": body.get("text"),
        "html": body.get("html"),
        "cc": body.get("cc"),
        "bcc": body.get("bcc"),
        "reply_to": body.get("reply_to"),
        "tags": tags,
    }


class EmailStandin(StandinServer):
    thread_name = "email-standin"

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, api_key: str = LOCAL_API_KEY
    ) -> None:
        super().__init__(host=host, port=port)
        self.api_key = api_key
        self._lock = threading.Lock()
        self._state = _State()

    def respond(self, request: Request) -> Reply:
        """One HTTP request: the API or a test control, answered in Resend's error shape."""
        try:
            try:
                body = request.json()
            except ValueError as exc:
                raise ResendError(400, "The request body is not valid JSON.") from exc
            if request.path.startswith("/_standin/"):
                status, out = self.control(request.method, request.path, request.query, body)
            elif request.path == "/emails" and request.method == "POST":
                status, out = self.send(
                    request.headers.get("authorization"),
                    request.headers.get("idempotency-key"),
                    body,
                )
            elif request.path.startswith("/emails/") and request.method == "GET":
                status, out = self.get(request.path.removeprefix("/emails/"))
            else:
                raise ResendError(404, "Not found", "not_found")
        except ResendError as exc:
            status, out = exc.status, exc.body()
        return Reply(status, out)

    @property
    def base_url(self) -> str:
        return self.origin

    # test controls --------------------------------------------------------------------
    def sent(self, to: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._state.emails if to is None or to in e["to"]]

    @property
    def requests(self) -> int:
        with self._lock:
            return self._state.requests

    def reset(self) -> None:
        with self._lock:
            self._state = _State()

    def fail_next(self, status: int = 500, *, times: int = 1, mode: str = "reject") -> None:
        if mode not in ("reject", "accept"):
            raise ValueError("mode is reject or accept")
        with self._lock:
            self._state.failures.append(_Failure(status, times, mode))

    # the API ---------------------------------------------------------------------------
    def _take_failure(self) -> _Failure | None:
        for failure in self._state.failures:
            if failure.times > 0:
                failure.times -= 1
                return failure
        return None

    def send(self, auth: str | None, idempotency_key: str | None, body: Any) -> tuple[int, Any]:
        with self._lock:
            self._state.requests += 1
            if not auth or not auth.startswith("Bearer ") or not auth[7:].strip():
                raise ResendError(
                    401, "Missing API key in the authorization header.", "missing_api_key"
                )
            if auth[7:].strip() != self.api_key:
                raise ResendError(401, "API key is invalid", "validation_error")
            if idempotency_key is not None and not 1 <= len(idempotency_key) <= 256:
                raise ResendError(
                    400,
                    "Idempotency keys, if present, must have between 1 and 256 characters.",
                    "invalid_idempotency_key",
                )
            email = validate(body)
            if idempotency_key is not None and idempotency_key in self._state.idempotency:
                first_id, first_body = self._state.idempotency[idempotency_key]
                if first_body != body:
                    raise ResendError(
                        409,
                        "Same idempotency key used with a different request payload. Change your "
                        "idempotency key or payload.",
                        "invalid_idempotent_request",
                    )
                return 200, {"id": first_id}
            failure = self._take_failure()
            if failure is not None and failure.mode == "reject":
                raise ResendError(failure.status, "Injected failure (nothing was sent).")
            email_id = str(uuid.uuid4())
            self._state.emails.append(
                email
                | {
                    "id": email_id,
                    "created_at": datetime.now(UTC).isoformat(),
                    "idempotency_key": idempotency_key,
                    "last_event": "delivered",
                }
            )
            if idempotency_key is not None:
                self._state.idempotency[idempotency_key] = (email_id, body)
            log.info("email %s to %s: %s", email_id, ", ".join(email["to"]), email["subject"])
            if failure is not None:
                raise ResendError(failure.status, "Injected failure (the email WAS sent).")
            return 200, {"id": email_id}

    def get(self, email_id: str) -> tuple[int, Any]:
        with self._lock:
            for e in self._state.emails:
                if e["id"] == email_id:
                    public = {k: v for k, v in e.items() if k != "idempotency_key"}
                    return 200, {"object": "email", **public}
        raise ResendError(404, "Email not found", "not_found")

    def control(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        if path == "/_standin/emails" and method == "GET":
            return 200, {"data": self.sent((query.get("to") or [None])[0])}
        if path == "/_standin/emails" and method == "DELETE":
            self.reset()
            return 200, {"ok": True}
        if path == "/_standin/failures" and method == "POST" and isinstance(body, dict):
            self.fail_next(
                int(body.get("status", 500)),
                times=int(body.get("next", 1)),
                mode=str(body.get("mode", "reject")),
            )
            return 200, {"ok": True}
        raise ResendError(404, "Not found", "not_found")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local stand-in for Resend's email API.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    standin = EmailStandin(host=args.host, port=args.port)
    log.info("email (Resend) stand-in on http://%s:%s", args.host, args.port)
    standin.serve_forever()


if __name__ == "__main__":
    main()
