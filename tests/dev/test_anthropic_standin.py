"""The Anthropic stand-in speaks the real wire format and counts prompt-cache usage the way
the API does (breakpoints, minimum cacheable prefix, 5-minute entries)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from typing import Any

import anthropic
import httpx
import pytest

from dbr.ai.decision import reply_tool
from dbr.dev.standins.anthropic import AnthropicStandin, count_tokens, decide_reply
from dbr.settings import ROOT

HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
LONG = "Rules for the assistant. " * 400  # ~2,400 tokens: cacheable on every model


def _body(system: list[dict[str, Any]], text: str = "hi", model: str = "claude-sonnet-4-6"):
    return {
        "model": model,
        "max_tokens": 100,
        "system": system,
        "messages": [{"role": "user", "content": text}],
    }


def _cached(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}


def _post(standin: AnthropicStandin, body: dict[str, Any], headers: dict[str, str] = HEADERS):
    return httpx.post(f"{standin.base_url}/v1/messages", json=body, headers=headers)


@pytest.fixture
def clock():
    now = [1000.0]
    return now


@pytest.fixture
def standin(clock) -> Any:
    with AnthropicStandin(clock=lambda: clock[0]) as f:
        yield f


def test_usage_splits_cached_written_and_uncached_tokens(standin, clock):
    body = _body([_cached(LONG), {"type": "text", "text": "lead facts"}], "question one")
    first = _post(standin, body).json()["usage"]
    prefix = count_tokens(LONG)
    assert first["cache_creation_input_tokens"] == prefix
    assert first["cache_read_input_tokens"] == 0
    assert first["input_tokens"] == count_tokens("lead facts") + count_tokens("user:question one")

    body["messages"][0]["content"] = "a different question"
    second = _post(standin, body).json()["usage"]
    assert second["cache_read_input_tokens"] == prefix
    assert second["cache_creation_input_tokens"] == 0

    clock[0] += 301  # entries live five minutes
    third = _post(standin, body).json()["usage"]
    assert third["cache_read_input_tokens"] == 0 and third["cache_creation_input_tokens"] == prefix


def test_a_prefix_below_the_minimum_is_never_cached(standin):
    short = "x" * 4000  # 1,000 tokens: under Sonnet's 1,024
    for _ in range(2):
        usage = _post(standin, _body([_cached(short)])).json()["usage"]
        assert usage["cache_creation_input_tokens"] == 0 and usage["cache_read_input_tokens"] == 0
    mid = "y" * 6000  # 1,500 tokens: cacheable for Sonnet, not for Haiku (2,048)
    sonnet = _post(standin, _body([_cached(mid)])).json()["usage"]
    haiku = _post(standin, _body([_cached(mid)], model="claude-haiku-4-5")).json()["usage"]
    assert sonnet["cache_creation_input_tokens"] == 1500
    assert haiku["cache_creation_input_tokens"] == 0 and haiku["input_tokens"] > 1500


def test_a_changed_prefix_misses_and_the_lookback_finds_an_earlier_breakpoint(standin):
    _post(standin, _body([_cached(LONG), _cached("facts of lead A")]))
    other = _post(standin, _body([_cached(LONG), _cached("facts of lead B")])).json()["usage"]
    assert other["cache_read_input_tokens"] == count_tokens(LONG)
    assert other["cache_creation_input_tokens"] == count_tokens("facts of lead B")
    changed = _post(standin, _body([_cached(LONG + "!"), _cached("facts of lead B")])).json()
    assert changed["usage"]["cache_read_input_tokens"] == 0


def test_wire_errors(standin):
    body = _body([{"type": "text", "text": "s"}])
    no_key = _post(standin, body, {"anthropic-version": "2023-06-01"})
    assert no_key.status_code == 401 and no_key.json()["error"]["type"] == "authentication_error"
    no_version = _post(standin, body, {"x-api-key": "k"})
    assert no_version.status_code == 400
    too_many = _body([_cached(f"block {i}") for i in range(5)])
    assert _post(standin, too_many).status_code == 400
    bounded = {**body, "tools": [reply_tool()]}
    bounded["tools"][0]["input_schema"]["properties"]["confidence"]["minimum"] = 0
    refused = _post(standin, bounded)
    assert refused.status_code == 400 and "not supported in strict mode" in refused.text

    standin.fail_next(429, retry_after=7)
    limited = _post(standin, body)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    assert limited.json()["error"]["type"] == "rate_limit_error"
    standin.fail_next(529)
    assert _post(standin, body).json()["error"]["type"] == "overloaded_error"


def test_the_sdk_reads_a_forced_strict_tool_call(standin):
    client = anthropic.Anthropic(api_key="k", base_url=standin.base_url, max_retries=0)
    message = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=200,
        system=[_cached(LONG)],
        tools=[reply_tool()],
        tool_choice={"type": "tool", "name": "record_reply"},
        messages=[{"role": "user", "content": "<latest_message>Yes please</latest_message>"}],
    )
    (block,) = message.content
    assert message.stop_reason == "tool_use" and block.type == "tool_use"
    assert set(block.input) == set(reply_tool()["input_schema"]["properties"])
    # Tools come first in the cached prefix: the tool definition is cached with the system.
    tool_tokens = message.usage.cache_creation_input_tokens - count_tokens(LONG)
    assert 300 < tool_tokens < 1000
    count = client.messages.count_tokens(
        model="claude-sonnet-4-6", messages=[{"role": "user", "content": "abcdefgh"}]
    )
    assert count.input_tokens == count_tokens("user:abcdefgh")


@pytest.mark.parametrize(
    ("latest", "expect"),
    [
        ("please stop texting me", {"opt_out_intent": True}),
        ("Remove my number", {"opt_out_intent": True}),
        # A revocation, not a polite goodbye (it used to get "No problem at all, Sam...").
        ("Not interested, don't text again", {"opt_out_intent": True, "reply_text": ""}),
        ("not interested", {"opt_out_intent": False, "contact_status": "NOT_INTERESTED"}),
        ("this is a scam", {"handover": True}),
        ("no thanks, already sorted", {"contact_status": "NOT_INTERESTED"}),
        ("yes interested!", {"booking_intent": "offer_slots"}),
        ("what's this about?", {"booking_intent": "none", "contact_status": "REPLIED"}),
    ],
)
def test_reply_rules(latest, expect):
    slots = '<available_slots offered_before="false">\n- 2031-01-07T14:00:00Z (Tue 7 Jan at 2pm)\n'
    user = f"<latest_message>\n{latest}\n</latest_message>\n{slots}</available_slots>"
    decision = decide_reply("First name: Sam", user)
    assert {k: decision[k] for k in expect} == expect


def test_booking_picks_the_named_slot_after_an_offer():
    slots = (
        '<available_slots offered_before="true">\n'
        "- 2031-01-07T14:00:00Z (Tue 7 Jan at 2pm)\n"
        "- 2031-01-07T15:30:00Z (Tue 7 Jan at 3:30pm)\n</available_slots>"
    )
    named = decide_reply("", f"<latest_message>3:30pm please</latest_message>\n{slots}")
    assert named["booking_intent"] == "book" and named["chosen_slot"] == "2031-01-07T15:30:00Z"
    yes = decide_reply("", f"<latest_message>yes that works</latest_message>\n{slots}")
    assert yes["chosen_slot"] == "2031-01-07T14:00:00Z"


def test_runs_as_a_process_with_http_controls():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dbr.dev.standins.anthropic", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.post(f"{base}/_standin/reset")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        httpx.post(f"{base}/_standin/fail", json={"status": 503})
        body = _body([{"type": "text", "text": "s"}])
        assert httpx.post(f"{base}/v1/messages", json=body, headers=HEADERS).status_code == 503
        assert httpx.post(f"{base}/v1/messages", json=body, headers=HEADERS).status_code == 200
        assert len(httpx.get(f"{base}/_standin/requests").json()["requests"]) == 2
    finally:
        proc.terminate()
        proc.wait(10)
