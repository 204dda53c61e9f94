"""Local Twilio stand-in: the Programmable Messaging API on 127.0.0.1, for tests and `dbr up`.

Speaks the real wire format, so the real `twilio` SDK talks to it unchanged (point
`client.api.base_url` here):

  POST /2010-04-01/Accounts/{Sid}/Messages.json        create (form body, basic auth)
  GET  /2010-04-01/Accounts/{Sid}/Messages/{Sid}.json  fetch
  GET  /2010-04-01/Accounts/{Sid}/Messages.json        list, filters To/From/DateSent[<>=],
                                                       newest first, Twilio's paging fields
  GET  /2010-04-01/Accounts/{Sid}/IncomingPhoneNumbers.json?PhoneNumber=   the account's number

Besides its own account it can host more (a client's own Twilio account: `add_account`, or
POST /_standin/accounts {"sid", "token", "numbers"}); each authenticates with its own token,
and its messages' callbacks and its numbers' inbound replies are signed with that token, as
Twilio signs with the token of the account that owns the number.

It then behaves like Twilio after a send: status callbacks (queued, sent, delivered, or
undelivered for numbers marked so) are POSTed to the message's StatusCallback with a valid
X-Twilio-Signature, optionally out of order. Inbound replies are delivered, signed, to the
configured inbound webhook URL.

Control endpoints (JSON) for tests and people:
  GET    /_standin/messages[?to=]    what was sent (full records, incl. callback URL, validity)
  DELETE /_standin/messages          forget everything
  POST   /_standin/failures          {"next": n, "status": 429|500|503, "mode": "reject"|"accept"}
                                  ("accept": Twilio takes the message, then the response fails)
                                  {"to": {"+447...": 21211}}  per-number send errors
                                  {"undeliverable": ["+447..."]} delivery fails (30003)
  POST   /_standin/config            {"callbacks": bool, "callback_delay": s, "out_of_order": bool,
                                   "latency": s, "stall": bool, "inbound_url": url}
                                  (latency/stall delay the ANSWER after the message is
                                  stored: the window in which a crashed sender cannot know)
  POST   /_standin/inbound           {"from", "to", "body", ["url"], ["opt_out_type"]}
                                  deliver a reply
  GET    /_standin/callbacks         deliveries made (url, params, response status)

Run: `python -m dbr.dev.standins.twilio --port 54340 --inbound-url URL`, or in-process:
`with serve_in_thread(TwilioStandin()) as standin: standin.base_url`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import itertools
import logging
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from dbr.dev.standins.http import StandinServer
from dbr.providers.twilio import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN

log = logging.getLogger("dbr.dev.standins.twilio")

API = "/2010-04-01"
E164 = r"^\+[1-9][0-9]{6,14}$"
ERROR_TEXT = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "Invalid 'To' Phone Number",
    21408: "Permission to send an SMS has not been enabled for the region",
    21602: "Message body is required.",
    21603: "The 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21623: "Validity period must be between 1 and 36000 seconds",
    30003: "Unreachable destination handset",
}
_STATUS_FOR_CODE = {20003: 401, 20404: 404, 20429: 429, 20500: 500}

# GSM 03.38: the basic set costs one septet, the extension table two (escape + char).
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXT = set("^{}\\[~]|€\f")


def count_segments(body: str) -> tuple[int, str]:
    """(segments, encoding) as a carrier counts them: GSM-7 160/153, else UCS-2 70/67."""
    if all(c in _GSM_BASIC or c in _GSM_EXT for c in body):
        units = sum(2 if c in _GSM_EXT else 1 for c in body)
        single, multi, enc = 160, 153, "GSM-7"
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, multi, enc = 70, 67, "UCS-2"
    if units <= single:
        return 1, enc
    return -(-units // multi), enc


def _rfc2822(ts: datetime | None) -> str | None:
    return format_datetime(ts, usegmt=False).replace("-0000", "+0000") if ts else None


def new_sid(prefix: str = "SM") -> str:
    return prefix + secrets.token_hex(16)


def sign(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """X-Twilio-Signature for a POST of `params` to `url` (Twilio's own algorithm)."""
    return RequestValidator(auth_token).compute_signature(url, dict(params))


def inbound_params(
    *,
    account_sid: str,
    from_: str,
    to: str,
    body: str,
    message_sid: str | None = None,
    messaging_service_sid: str | None = None,
    opt_out_type: str | None = None,
) -> dict[str, str]:
    """The form fields Twilio posts for an incoming SMS."""
    sid = message_sid or new_sid()
    segments, _ = count_segments(body)
    params = {
        "ToCountry": "",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": body,
        "To": to,
        "NumSegments": str(segments),
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": from_,
        "ApiVersion": "2010-04-01",
    }
    if messaging_service_sid:
        params["MessagingServiceSid"] = messaging_service_sid
    if opt_out_type:
        params["OptOutType"] = opt_out_type
    return params


async def post_signed(
    session: aiohttp.ClientSession, url: str, auth_token: str, params: Mapping[str, str]
) -> tuple[int, str]:
    """POST a webhook the way Twilio does: form-encoded, signed over the URL and fields."""
    headers = {
        "X-Twilio-Signature": sign(auth_token, url, params),
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "TwilioProxy/1.1",
        "I-Twilio-Idempotency-Token": secrets.token_hex(16),
    }
    async with session.post(url, data=urlencode(dict(params)), headers=headers) as resp:
        return resp.status, await resp.text()


def _error(code: int, status: int | None = None, detail: str | None = None) -> web.Response:
    status = status or _STATUS_FOR_CODE.get(code, 400)
    return web.json_response(
        {
            "code": code,
            "message": detail or ERROR_TEXT.get(code, "Error"),
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status=status,
    )


@dataclass
class Failure:
    status: int
    code: int
    mode: str = "reject"  # reject: nothing stored; accept: stored, then the response fails


@dataclass
class TwilioStandin:
    account_sid: str = LOCAL_ACCOUNT_SID
    auth_token: str = LOCAL_AUTH_TOKEN
    inbound_url: str | None = None
    callbacks: bool = True
    callback_delay: float = 0.02
    out_of_order: bool = False
    latency: float = 0.0  # seconds between accepting a message and answering
    stall: bool = False  # accept messages but hold every answer until stall is switched off
    stalled: int = 0
    # Stall by itself once this many messages were accepted (a race-free "stall mid-batch").
    stall_after: int | None = None
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    callback_log: list[dict[str, Any]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    to_errors: dict[str, int] = field(default_factory=dict)
    undeliverable: set[str] = field(default_factory=set)
    accounts: dict[str, str] = field(default_factory=dict)  # more accounts: SID -> auth token
    number_owner: dict[str, str] = field(default_factory=dict)  # number -> SID (else ours)
    _session: aiohttp.ClientSession | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _seq: Iterator[int] = field(default_factory=itertools.count)
    _release: asyncio.Event | None = None

    def add_account(self, sid: str, token: str, numbers: list[str] | None = None) -> None:
        """Another Twilio account (a client's own), owning `numbers`."""
        self.accounts[sid] = token
        for number in numbers or []:
            self.number_owner[number] = sid

    def token_of(self, sid: str) -> str | None:
        return self.auth_token if sid == self.account_sid else self.accounts.get(sid)

    def owner_of(self, number: str | None) -> str:
        return self.number_owner.get(number or "", self.account_sid)

    def _released(self) -> asyncio.Event:
        if self._release is None:
            self._release = asyncio.Event()
        return self._release

    def set_stall(self, on: bool) -> None:
        """Call on the stand-in's loop. Switching off answers every held request."""
        self.stall = on
        if not on:
            self._released().set()
            self._release = None

    # ------------------------------------------------------------------ app

    def app(self) -> web.Application:
        app = web.Application()
        acct = API + "/Accounts/{account}"
        app.router.add_post(acct + "/Messages.json", self.create_message)
        app.router.add_get(acct + "/Messages.json", self.list_messages)
        app.router.add_get(acct + "/Messages/{sid}.json", self.fetch_message)
        app.router.add_get(acct + "/IncomingPhoneNumbers.json", self.list_numbers)
        app.router.add_post("/_standin/accounts", self.ctl_accounts)
        app.router.add_get("/_standin/messages", self.ctl_messages)
        app.router.add_delete("/_standin/messages", self.ctl_reset)
        app.router.add_post("/_standin/failures", self.ctl_failures)
        app.router.add_post("/_standin/config", self.ctl_config)
        app.router.add_post("/_standin/inbound", self.ctl_inbound)
        app.router.add_get("/_standin/callbacks", self.ctl_callbacks)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, _app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._session:
            await self._session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        return self._session

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ Messages API

    def _authorised(self, request: web.Request) -> bool:
        account = request.match_info["account"]
        token = self.token_of(account)
        if token is None:
            return False
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == account and secrets.compare_digest(pw, token)

    def _uri(self, sid: str | None = None, account: str | None = None) -> str:
        base = f"{API}/Accounts/{account or self.account_sid}/Messages"
        return f"{base}/{sid}.json" if sid else f"{base}.json"

    def _public(self, msg: dict[str, Any]) -> dict[str, Any]:
        """The resource as Twilio renders it (internal bookkeeping fields dropped)."""
        sid = msg["sid"]
        account = msg.get("account_sid") or self.account_sid
        return {
            "account_sid": account,
            "api_version": "2010-04-01",
            "body": msg["body"],
            "date_created": _rfc2822(msg["date_created"]),
            "date_sent": _rfc2822(msg["date_sent"]),
            "date_updated": _rfc2822(msg["date_updated"]),
            "direction": "outbound-api",
            "error_code": msg["error_code"],
            "error_message": msg["error_message"],
            "from": msg["from"],
            "messaging_service_sid": msg["messaging_service_sid"],
            "num_media": "0",
            "num_segments": str(msg["num_segments"]),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": msg["status"],
            "subresource_uris": {
                "media": f"{API}/Accounts/{account}/Messages/{sid}/Media.json",
                "feedback": f"{API}/Accounts/{account}/Messages/{sid}/Feedback.json",
            },
            "to": msg["to"],
            "uri": self._uri(sid, account),
        }

    async def create_message(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return _error(20003)
        form = await request.post()
        to = str(form.get("To", "")).strip()
        body = str(form.get("Body", ""))
        from_ = str(form.get("From", "")) or None
        service = str(form.get("MessagingServiceSid", "")) or None
        if not to:
            return _error(21604)
        if not body:
            return _error(21602)
        if not from_ and not service:
            return _error(21603)
        if not re.match(E164, to):
            return _error(21211, detail=f"The 'To' number {to} is not a valid phone number.")
        if len(body) > 1600:
            return _error(21617)
        validity = form.get("ValidityPeriod")
        if validity is not None and not (str(validity).isdigit() and 1 <= int(validity) <= 36000):
            return _error(21623)
        failure = self.failures.pop(0) if self.failures else None
        if failure and failure.mode == "reject":
            return _error(failure.code, failure.status)
        if to in self.to_errors:
            return _error(self.to_errors[to])
        now = datetime.now(UTC)
        segments, encoding = count_segments(body)
        msg: dict[str, Any] = {
            "seq": next(self._seq),
            "sid": new_sid(),
            "account_sid": request.match_info["account"],
            "to": to,
            "from": from_,
            "messaging_service_sid": service,
            "body": body,
            "status": "accepted" if service and not from_ else "queued",
            "num_segments": segments,
            "encoding": encoding,
            "error_code": None,
            "error_message": None,
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "status_callback": str(form.get("StatusCallback", "")) or None,
            "validity_period": int(validity) if validity is not None else None,
        }
        self.messages[msg["sid"]] = msg
        answer = self._public(msg)  # as accepted: later status changes are for callbacks
        self._spawn(self._lifecycle(msg))
        # Twilio has the message from here on; the caller learns it only with the response.
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.stall_after is not None and len(self.messages) > self.stall_after:
            self.stall = True
        if self.stall:
            self.stalled += 1
            try:
                await self._released().wait()
            finally:
                self.stalled -= 1
        if failure:  # "accept": Twilio has it, but the caller never learns the SID
            if failure.status == 0:
                assert request.transport is not None
                request.transport.close()
                return web.Response(status=500)
            return _error(failure.code, failure.status)
        return web.json_response(answer, status=201)

    async def fetch_message(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(20003)
        msg = self.messages.get(request.match_info["sid"])
        if not msg:
            return _error(20404)
        return web.json_response(self._public(msg))

    async def list_messages(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(20003)
        q = request.query
        account = request.match_info["account"]
        rows = sorted(
            (m for m in self.messages.values() if m.get("account_sid", account) == account),
            key=lambda m: m["seq"],
            reverse=True,
        )
        if q.get("To"):
            rows = [m for m in rows if m["to"] == q["To"]]
        if q.get("From"):
            rows = [m for m in rows if m["from"] == q["From"]]
        for key, value in q.items():
            if not key.startswith("DateSent"):
                continue
            op = key[len("DateSent") :] or "="
            if value[:2] in ("<=", ">="):
                op, value = value[:2], value[2:]
            bound = _parse_date(value)
            rows = [m for m in rows if _date_matches(m["date_sent"], op, bound)]
        try:
            size = max(1, min(1000, int(q.get("PageSize", 50))))
            page = max(0, int(q.get("Page", 0)))
        except ValueError:
            return _error(20001, 400, "Invalid paging parameters")
        start = page * size
        chunk = rows[start : start + size]
        params = {k: v for k, v in q.items() if k not in ("Page", "PageSize", "PageToken")}

        def page_uri(n: int) -> str:
            return self._uri() + "?" + urlencode({**params, "PageSize": size, "Page": n})

        has_next = start + size < len(rows)
        return web.json_response(
            {
                "messages": [self._public(m) for m in chunk],
                "start": start,
                "end": start + max(len(chunk) - 1, 0),
                "page": page,
                "page_size": size,
                "uri": page_uri(page),
                "first_page_uri": page_uri(0),
                "next_page_uri": page_uri(page + 1) if has_next else None,
                "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            }
        )

    # ------------------------------------------------------------------ behaviour after a send

    async def _lifecycle(self, msg: dict[str, Any]) -> None:
        """queued -> sent -> delivered|undelivered, each reported to StatusCallback."""
        await asyncio.sleep(self.callback_delay)
        now = datetime.now(UTC)
        msg["date_sent"] = msg["date_updated"] = now
        final = "undelivered" if msg["to"] in self.undeliverable else "delivered"
        if final == "undelivered":
            msg["error_code"], msg["error_message"] = 30003, ERROR_TEXT[30003]
        msg["status"] = final
        steps = ["queued", "sent", final]
        if self.out_of_order:
            steps.reverse()
        if not (self.callbacks and msg["status_callback"]):
            return
        for status in steps:
            await self._status_callback(msg, status)

    async def _status_callback(self, msg: dict[str, Any], status: str) -> None:
        account = msg.get("account_sid") or self.account_sid
        params = {
            "AccountSid": account,
            "ApiVersion": "2010-04-01",
            "From": msg["from"] or "",
            "MessageSid": msg["sid"],
            "MessageStatus": status,
            "SmsSid": msg["sid"],
            "SmsStatus": status,
            "To": msg["to"],
        }
        if msg["messaging_service_sid"]:
            params["MessagingServiceSid"] = msg["messaging_service_sid"]
        if status == "undelivered":
            params["ErrorCode"] = str(msg["error_code"])
        await self._deliver(msg["status_callback"], params, kind="status", account=account)

    async def _deliver(
        self, url: str, params: dict[str, str], *, kind: str, account: str | None = None
    ) -> tuple[int, str]:
        token = self.token_of(account or self.account_sid) or self.auth_token
        try:
            status, text = await post_signed(self._http(), url, token, params)
        except (aiohttp.ClientError, TimeoutError) as exc:
            status, text = 0, f"{exc.__class__.__name__}: {exc}"
        self.callback_log.append({"kind": kind, "url": url, "params": params, "status": status})
        if status != 200:
            log.warning("webhook %s to %s answered %s: %s", kind, url, status, text[:200])
        return status, text

    async def deliver_inbound(
        self, from_: str, to: str, body: str, *, url: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        target = url or self.inbound_url
        if not target:
            raise ValueError("no inbound webhook URL configured")
        account = self.owner_of(to)
        params = inbound_params(account_sid=account, from_=from_, to=to, body=body, **extra)
        status, text = await self._deliver(target, params, kind="inbound", account=account)
        return {"status": status, "body": text, "params": params}

    # ------------------------------------------------------------------ control endpoints

    def sent(self, to: str | None = None) -> list[dict[str, Any]]:
        rows = sorted(self.messages.values(), key=lambda m: m["seq"])
        return [dict(m) for m in rows if to is None or m["to"] == to]

    async def ctl_messages(self, request: web.Request) -> web.Response:
        rows = [
            {
                **self._public(m),
                "status_callback": m["status_callback"],
                "validity_period": m["validity_period"],
                "encoding": m["encoding"],
            }
            for m in self.sent(request.query.get("to"))
        ]
        return web.json_response({"messages": rows})

    async def ctl_reset(self, _request: web.Request) -> web.Response:
        self.messages.clear()
        self.callback_log.clear()
        self.failures.clear()
        self.to_errors.clear()
        self.undeliverable.clear()
        return web.json_response({"ok": True})

    async def ctl_failures(self, request: web.Request) -> web.Response:
        spec = await request.json()
        self.add_failures(**spec)
        return web.json_response({"pending": len(self.failures), "to": self.to_errors})

    def add_failures(
        self,
        next: int = 0,
        status: int = 500,
        code: int | None = None,
        mode: str = "reject",
        to: Mapping[str, int] | None = None,
        undeliverable: list[str] | None = None,
    ) -> None:
        default_code = {429: 20429, 0: 20500}.get(status, 20500)
        self.failures.extend(Failure(status, code or default_code, mode) for _ in range(next))
        self.to_errors.update(to or {})
        self.undeliverable.update(undeliverable or [])

    async def list_numbers(self, request: web.Request) -> web.Response:
        """The account's incoming numbers matching PhoneNumber (a number not given to another
        account belongs to the stand-in's own)."""
        if not self._authorised(request):
            return _error(20003)
        account = request.match_info["account"]
        number = request.query.get("PhoneNumber", "")
        rows = []
        if number and self.owner_of(number) == account:
            rows.append(
                {
                    "sid": "PN" + hashlib.md5(number.encode()).hexdigest(),
                    "account_sid": account,
                    "phone_number": number,
                    "friendly_name": number,
                    "capabilities": {"sms": True, "mms": False, "voice": True},
                    "sms_url": self.inbound_url or "",
                }
            )
        uri = f"{API}/Accounts/{account}/IncomingPhoneNumbers.json"
        return web.json_response(
            {
                "incoming_phone_numbers": rows,
                "page": 0,
                "page_size": 50,
                "uri": uri,
                "first_page_uri": uri,
                "next_page_uri": None,
                "previous_page_uri": None,
                "start": 0,
                "end": max(len(rows) - 1, 0),
            }
        )

    async def ctl_accounts(self, request: web.Request) -> web.Response:
        spec = await request.json()
        self.add_account(str(spec["sid"]), str(spec["token"]), list(spec.get("numbers") or []))
        return web.json_response({"accounts": sorted(self.accounts)})

    async def ctl_config(self, request: web.Request) -> web.Response:
        spec = await request.json()
        for key in (
            "callbacks",
            "callback_delay",
            "out_of_order",
            "latency",
            "inbound_url",
            "stall_after",
        ):
            if key in spec:
                setattr(self, key, spec[key])
        if "stall" in spec:
            if not spec["stall"]:
                self.stall_after = None
            self.set_stall(bool(spec["stall"]))
        return web.json_response({"ok": True, "stalled": self.stalled})

    async def ctl_inbound(self, request: web.Request) -> web.Response:
        spec = await request.json()
        try:
            result = await self.deliver_inbound(
                spec["from"],
                spec["to"],
                spec["body"],
                url=spec.get("url"),
                messaging_service_sid=spec.get("messaging_service_sid"),
                opt_out_type=spec.get("opt_out_type"),
            )
        except (KeyError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(result)

    async def ctl_callbacks(self, _request: web.Request) -> web.Response:
        return web.json_response({"callbacks": self.callback_log})


def _parse_date(value: str) -> datetime | date:
    value = value.strip()
    if len(value) == 10:
        return date.fromisoformat(value)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _date_matches(sent: datetime | None, op: str, bound: datetime | date) -> bool:
    if sent is None:  # not sent yet: Twilio has no DateSent to filter on
        return False
    left: datetime | date = sent.date() if not isinstance(bound, datetime) else sent
    if op in (">", ">="):
        return left >= bound  # type: ignore[operator]
    if op in ("<", "<="):
        return left <= bound  # type: ignore[operator]
    return left == bound


# ---------------------------------------------------------------------- running it


class Running(StandinServer):
    """The Twilio stand-in served on 127.0.0.1 (the shared stand-in HTTP server); `call` runs
    a coroutine such as `deliver_inbound` on its loop from another thread."""

    thread_name = "twilio-standin"

    def __init__(self, standin: TwilioStandin, *, port: int = 0) -> None:
        super().__init__(port=port)
        self.standin = standin

    def app(self) -> web.Application:
        return self.standin.app()

    @property
    def base_url(self) -> str:
        return self.origin


@contextlib.contextmanager
def serve_in_thread(standin: TwilioStandin | None = None, port: int = 0) -> Iterator[Running]:
    """Serve the stand-in on 127.0.0.1 (ephemeral port by default) in a background thread."""
    with Running(standin or TwilioStandin(), port=port) as running:
        yield running


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local Twilio Messages API stand-in")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--inbound-url", default=None, help="where inbound replies are posted")
    parser.add_argument("--no-callbacks", action="store_true", help="send no status callbacks")
    parser.add_argument("--account-sid", default=LOCAL_ACCOUNT_SID)
    parser.add_argument("--auth-token", default=LOCAL_AUTH_TOKEN)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    standin = TwilioStandin(
        account_sid=args.account_sid,
        auth_token=args.auth_token,
        inbound_url=args.inbound_url,
        callbacks=not args.no_callbacks,
    )
    log.info("Twilio stand-in on http://127.0.0.1:%s (account %s)", args.port, args.account_sid)
    Running(standin, port=args.port).serve_forever()


if __name__ == "__main__":
    main()
