"""The Twilio stand-in speaks the Messages API as the real `twilio` SDK expects it, and calls
webhooks the way Twilio does (form fields, X-Twilio-Signature the SDK's validator accepts)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from dbr.dev import stack
from dbr.dev.standins.twilio import count_segments
from dbr.providers import twilio as provider
from dbr.providers.twilio import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from dbr.settings import Settings
from tests.support import free_port, wait_for

FROM = "+447700900000"


@pytest.fixture
def client(twilio) -> Client:
    return provider.sync_client(Settings(twilio_base_url=twilio.base_url))


class Receiver:
    """A webhook endpoint on loopback that records what it was sent."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                received.append(
                    {
                        "path": self.path,
                        "params": dict(parse_qsl(body, keep_blank_values=True)),
                        "signature": self.headers.get("X-Twilio-Signature"),
                    }
                )
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.end_headers()
                self.wfile.write(b"<Response></Response>")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def valid(self, item: dict[str, Any]) -> bool:
        url = self.url.rsplit("/hook", 1)[0] + item["path"]
        return RequestValidator(LOCAL_AUTH_TOKEN).validate(url, item["params"], item["signature"])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def test_create_fetch_and_list_with_the_real_sdk(client):
    created = client.messages.create(
        to="+447700900101", from_=FROM, body="Hello there", validity_period=600
    )
    assert created.sid.startswith("SM") and len(created.sid) == 34
    assert (created.status, created.num_segments, created.direction) == (
        "queued",
        "1",
        "outbound-api",
    )
    assert created.account_sid == LOCAL_ACCOUNT_SID and created.date_created is not None
    fetched = wait_for(
        lambda: (m := client.messages(created.sid).fetch()).status == "delivered" and m, 10
    )
    assert fetched.date_sent is not None and fetched.body == "Hello there"

    for i in range(5):
        client.messages.create(to="+447700900102", from_=FROM, body=f"n{i}")
    # Paged 2 at a time through next_page_uri, newest first, filtered by To.
    bodies = [m.body for m in client.messages.list(to="+447700900102", page_size=2)]
    assert bodies == ["n4", "n3", "n2", "n1", "n0"]
    wait_for(lambda: all(m.date_sent for m in client.messages.list(to="+447700900102")), 10)
    since = datetime.now(UTC) - timedelta(minutes=5)
    assert len(client.messages.list(to="+447700900102", date_sent_after=since)) == 5
    later = datetime.now(UTC) + timedelta(days=2)
    assert client.messages.list(to="+447700900102", date_sent_after=later) == []


def test_messaging_service_sends_are_accepted(client):
    msg = client.messages.create(
        to="+447700900103", messaging_service_sid="MG" + "a" * 32, body="Via service"
    )
    assert (msg.status, msg.from_, msg.messaging_service_sid) == ("accepted", None, "MG" + "a" * 32)


@pytest.mark.parametrize(
    ("body", "segments", "encoding"),
    [
        ("a" * 160, 1, "GSM-7"),
        ("a" * 161, 2, "GSM-7"),
        ("{" * 80, 1, "GSM-7"),  # extension characters cost two septets
        ("{" * 81, 2, "GSM-7"),
        ("é" * 160, 1, "GSM-7"),  # é is in the GSM basic set
        ("ć" * 70, 1, "UCS-2"),
        ("ć" * 71, 2, "UCS-2"),
        ("😀" * 35, 1, "UCS-2"),  # two UTF-16 units each
    ],
)
def test_segments_are_counted_like_a_carrier(body, segments, encoding):
    assert count_segments(body) == (segments, encoding)


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"to": "07700 900104", "from_": FROM, "body": "x"}, 400, 21211),
        ({"to": "+447700900104", "body": "x"}, 400, 21603),
        ({"to": "+447700900104", "from_": FROM, "body": "x" * 1601}, 400, 21617),
        ({"to": "+447700900104", "from_": FROM, "body": "x", "validity_period": 0}, 400, 21623),
    ],
)
def test_invalid_requests_get_twilio_errors(client, kwargs, status, code):
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(**kwargs)
    assert (err.value.status, err.value.code) == (status, code)


def test_wrong_credentials_are_401(twilio):
    bad = provider.sync_client(
        Settings(
            twilio_base_url=twilio.base_url,
            twilio_account_sid=LOCAL_ACCOUNT_SID,
            twilio_auth_token="wrong",
        )
    )
    with pytest.raises(TwilioRestException) as err:
        bad.messages.create(to="+447700900105", from_=FROM, body="x")
    assert (err.value.status, err.value.code) == (401, 20003)


def test_injected_failures(client, twilio):
    twilio.standin.add_failures(next=1, status=429, to={"+447700900106": 21610})
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to="+447700900107", from_=FROM, body="x")
    assert (err.value.status, err.value.code) == (429, 20429)
    assert twilio.standin.sent() == []  # a 429 stores nothing
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to="+447700900106", from_=FROM, body="x")
    assert err.value.code == 21610
    twilio.standin.add_failures(next=1, status=500, mode="accept")
    with pytest.raises(TwilioRestException):
        client.messages.create(to="+447700900107", from_=FROM, body="kept")
    assert [m["body"] for m in twilio.standin.sent()] == ["kept"]  # Twilio has it all the same


@pytest.mark.parametrize("out_of_order", [False, True])
def test_status_callbacks_are_signed_and_follow_the_lifecycle(
    client, twilio, receiver, out_of_order
):
    twilio.standin.callbacks = True
    twilio.standin.out_of_order = out_of_order
    twilio.standin.add_failures(undeliverable=["+447700900109"])
    ok = client.messages.create(
        to="+447700900108", from_=FROM, body="a", status_callback=receiver.url
    )
    bad = client.messages.create(
        to="+447700900109", from_=FROM, body="b", status_callback=receiver.url
    )
    wait_for(lambda: len(receiver.received) == 6, 10, "six callbacks")
    assert all(receiver.valid(r) for r in receiver.received)
    by_sid: dict[str, list[str]] = {}
    for r in receiver.received:
        by_sid.setdefault(r["params"]["MessageSid"], []).append(r["params"]["MessageStatus"])
    expected_ok, expected_bad = ["queued", "sent", "delivered"], ["queued", "sent", "undelivered"]
    if out_of_order:
        expected_ok.reverse()
        expected_bad.reverse()
    assert by_sid == {ok.sid: expected_ok, bad.sid: expected_bad}
    failed = [r for r in receiver.received if r["params"]["MessageStatus"] == "undelivered"]
    assert failed[0]["params"]["ErrorCode"] == "30003"


def test_inbound_reply_is_delivered_signed(twilio, receiver):
    result = twilio.call(
        twilio.standin.deliver_inbound("+447700900110", FROM, "Hi!", url=receiver.url)
    )
    assert result["status"] == 200
    [got] = receiver.received
    assert receiver.valid(got)
    assert got["params"]["Body"] == "Hi!" and got["params"]["SmsStatus"] == "received"
    assert got["params"]["MessageSid"] == result["params"]["MessageSid"]


def test_factory_uses_the_stand_in_only_without_credentials():
    local = Settings(twilio_account_sid=None, twilio_auth_token=None, twilio_base_url=None)
    assert provider.base_url(local) == provider.standin_base_url(local)
    assert provider.credentials(local) == (LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN)
    real = Settings(twilio_account_sid="AC" + "1" * 32, twilio_auth_token="t" * 32)
    assert provider.base_url(real) is None
    assert provider.sync_client(real).api.base_url == "https://api.twilio.com"
    assert provider.webhook_auth_token(real) == "t" * 32
    assert (
        provider.status_callback_url(
            Settings(public_webhook_base_url="https://x.supabase.co/functions/v1/")
        )
        == "https://x.supabase.co/functions/v1/twilio-webhook"
    )


def test_standalone_stand_in_process_serves_the_api():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dbr.dev.standins.twilio", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert stack.wait_for_port(port, 20)
        c = provider.sync_client(Settings(twilio_base_url=f"http://127.0.0.1:{port}"))
        assert c.messages.create(to="+447700900111", from_=FROM, body="x").status == "queued"
    finally:
        proc.terminate()
        proc.wait(10)
