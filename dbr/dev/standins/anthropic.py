"""Local stand-in for the Anthropic Messages API: a real HTTP server on 127.0.0.1.

It speaks the wire format the `anthropic` SDK uses for `POST /v1/messages` (headers
`x-api-key` or `Authorization: Bearer`, and `anthropic-version`; the Message response shape;
the error shape `{"type": "error", "error": {"type", "message"}}`) and
`POST /v1/messages/count_tokens`.

What it does like the real API:
- Tools with `strict: true` must use the strict JSON-schema subset (every object has
  `additionalProperties: false` and lists every property in `required`; no numeric or length
  bounds), else 400. `tool_choice: {"type": "tool", "name": ...}` forces that tool: the answer
  is one well-formed `tool_use` block whose input matches the schema.
- Usage counts input tokens with a simple deterministic tokenizer (about 4 characters per
  token) and splits them by the request's `cache_control` breakpoints into
  `cache_read_input_tokens` (longest prefix already cached, looked up at each breakpoint and up
  to 20 blocks before it), `cache_creation_input_tokens` (from there to the last breakpoint)
  and `input_tokens` (after the last breakpoint). Prefix order is tools, system, messages. A
  prefix shorter than the model's minimum (1024 tokens; 2048 for Haiku-class models) is never
  cached. Entries live 5 minutes (1 hour with `"ttl": "1h"`), refreshed on every hit, keyed by
  the model and the exact prefix.

What it answers (deterministic, from the conversation): the text in `<latest_message>` (or the
last user turn) is read with keyword rules: "stop texting me"/"remove my number"/"not interested,
don't text again" -> opt-out (`opt_out_intent`, its own heuristics, not the product's phrase set);
abuse/complaints/"speak to a person" -> handover; "not interested" -> NOT_INTERESTED; interest
with `<available_slots>` listed -> offer slots; acceptance or a named time after slots were
offered (`offered_before="true"`) -> book that slot; else a friendly follow-up question.
Lesson ids found in `<lesson id="...">` are reported as applied. The forced tool
`classify_opt_out` gets {opt_out, confidence, reason} from `opt_out_intent`. Any other forced
tool gets a schema-valid input built from its schema.

Tests start it in-process (`AnthropicStandin().start()`), script failures with `fail_next(...)`
(HTTP status with optional retry-after, a delay longer than the client's timeout, malformed
tool input, or no tool call at all) and read `requests`. `dbr up` runs it as
`python -m dbr.dev.standins.anthropic --port 54341`; `/_standin/*` exposes the controls over HTTP.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from dbr.dev.standins.loopback import LoopbackServer

log = logging.getLogger("dbr.dev.standins.anthropic")

CHARS_PER_TOKEN = 4
CACHE_TTL = {"5m": 300.0, "1h": 3600.0}
LOOKBACK_BLOCKS = 20
MAX_BREAKPOINTS = 4
_UNSUPPORTED_STRICT = {
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "$ref",
    "oneOf",
    "allOf",
    "not",
}


def count_tokens(text: str) -> int:
    """The stand-in's tokenizer: one token per 4 characters, rounded up (0 for '')."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def min_cacheable_tokens(model: str) -> int:
    """Shortest cacheable prefix: 2048 tokens for Haiku-class models, 1024 otherwise."""
    return 2048 if "haiku" in model.lower() else 1024


class ApiError(Exception):
    def __init__(
        self, status: int, type_: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.headers = headers or {}


@dataclass
class Fault:
    """A scripted failure for the next `times` message requests."""

    kind: str  # "status" | "delay" | "malformed" | "no_tool"
    status: int = 500
    retry_after: float | None = None
    delay: float = 0.0
    times: int = 1


@dataclass(frozen=True)
class RecordedRequest:
    headers: dict[str, str]
    body: dict[str, Any]
    usage: dict[str, int] | None = None

    @property
    def system_text(self) -> str:
        return "\n".join(b.get("text", "") for b in _system_blocks(self.body))

    @property
    def user_text(self) -> str:
        return _last_user_text(self.body)


@dataclass
class _State:
    requests: list[RecordedRequest] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    cache: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------- request anatomy


def _system_blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    system = body.get("system")
    if system is None:
        return []
    if isinstance(system, str):
        return [{"type": "text", "text": system}]
    return list(system)


def _message_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content or [])


def _block_text(block: dict[str, Any]) -> str:
    if block.get("type") == "text":
        return str(block.get("text", ""))
    rest = {k: v for k, v in block.items() if k != "cache_control"}
    return json.dumps(rest, sort_keys=True, separators=(",", ":"))


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            return "\n".join(
                b.get("text", "") for b in _message_blocks(message) if b.get("type") == "text"
            )
    return ""


@dataclass(frozen=True)
class _Block:
    text: str  # what is tokenised and hashed
    cache_ttl: str | None  # "5m"/"1h" when this block carries a cache_control breakpoint


def prompt_blocks(body: dict[str, Any]) -> list[_Block]:
    """The request in cache-prefix order (tools, system, messages), one entry per block."""
    out: list[_Block] = []

    def ttl(block: dict[str, Any]) -> str | None:
        cc = block.get("cache_control")
        if not cc:
            return None
        if cc.get("type") != "ephemeral":
            raise ApiError(400, "invalid_request_error", "cache_control.type must be 'ephemeral'")
        value = cc.get("ttl", "5m")
        if value not in CACHE_TTL:
            raise ApiError(400, "invalid_request_error", "cache_control.ttl must be '5m' or '1h'")
        return value

    for tool in body.get("tools") or []:
        out.append(_Block(_block_text(tool), ttl(tool)))
    for block in _system_blocks(body):
        out.append(_Block(_block_text(block), ttl(block)))
    for message in body.get("messages") or []:
        for block in _message_blocks(message):
            out.append(_Block(message.get("role", "") + ":" + _block_text(block), ttl(block)))
    return out


# ---------------------------------------------------------------------- validation


def _check_strict_schema(schema: Any, where: str) -> None:
    if not isinstance(schema, dict):
        return
    bad = _UNSUPPORTED_STRICT.intersection(schema)
    if bad:
        raise ApiError(
            400,
            "invalid_request_error",
            f"{where}: {sorted(bad)[0]} is not supported in strict mode",
        )
    types = schema.get("type")
    is_object = types == "object" or (isinstance(types, list) and "object" in types)
    if is_object:
        props = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False:
            raise ApiError(
                400,
                "invalid_request_error",
                f"{where}: additionalProperties must be false for strict tools",
            )
        missing = set(props) - set(schema.get("required") or [])
        if missing:
            raise ApiError(
                400,
                "invalid_request_error",
                f"{where}: every property must be required in strict mode ({sorted(missing)[0]})",
            )
        for name, sub in props.items():
            _check_strict_schema(sub, f"{where}.{name}")
    if "items" in schema:
        _check_strict_schema(schema["items"], f"{where}[]")
    for i, sub in enumerate(schema.get("anyOf") or []):
        _check_strict_schema(sub, f"{where}.anyOf[{i}]")


def validate_request(headers: dict[str, str], body: Any, api_key: str | None) -> None:
    # The SDK sends the key as x-api-key (or, in recent versions, as a bearer token).
    bearer = headers.get("authorization", "")
    key = headers.get("x-api-key") or (bearer[7:] if bearer.lower().startswith("bearer ") else "")
    if not key or (api_key and key != api_key):
        raise ApiError(401, "authentication_error", "invalid x-api-key")
    if not headers.get("anthropic-version"):
        raise ApiError(400, "invalid_request_error", "anthropic-version: header is required")
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request_error", "body must be a JSON object")
    for name in ("model", "messages"):
        if not body.get(name):
            raise ApiError(400, "invalid_request_error", f"{name}: Field required")
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        raise ApiError(400, "invalid_request_error", "max_tokens: must be a positive integer")
    for i, message in enumerate(body["messages"]):
        if message.get("role") not in ("user", "assistant"):
            raise ApiError(400, "invalid_request_error", f"messages.{i}.role: invalid role")
    if body["messages"][0].get("role") != "user":
        raise ApiError(400, "invalid_request_error", "messages: first message must use user role")
    tools = body.get("tools") or []
    for i, tool in enumerate(tools):
        if not tool.get("name") or not isinstance(tool.get("input_schema"), dict):
            raise ApiError(400, "invalid_request_error", f"tools.{i}: name and input_schema needed")
        if tool.get("strict"):
            _check_strict_schema(tool["input_schema"], f"tools.{i}.input_schema")
    choice = body.get("tool_choice")
    if (
        choice
        and choice.get("type") == "tool"
        and choice.get("name") not in {t.get("name") for t in tools}
    ):
        raise ApiError(400, "invalid_request_error", "tool_choice: unknown tool name")
    marks = sum(1 for b in prompt_blocks(body) if b.cache_ttl)
    if marks > MAX_BREAKPOINTS:
        raise ApiError(
            400,
            "invalid_request_error",
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {marks}.",
        )


# ---------------------------------------------------------------------- the reply "model"

# The stand-in's own reading of opt-out intent: intent words near a contact word, as a model
# reads meaning, not the product's phrase set (private.opt_out_phrases). It catches long polite
# paraphrases the phrase set does not list, misses some terse or foreign forms, and can be wrong.
_CONTACT = r"(text|txt|messag|msg|contact|sms|email|call|ring|hear from|send|receiv|these|spam)"
_OPT_OUT_STRONG = re.compile(
    r"\b(unsubscribe|unsub|opt (me )?out|opt-out|optout|leave (me|us) alone|wrong (number|person)|"
    r"never (enquired|inquired|asked for)|take (me|us|my number) off|gdpr|"
    r"right to (erasure|be forgotten)|(remove|delete|erase|wipe) (me|my|this|all|everything)|"
    r"stop (texting|messaging|contacting|sending)|"
    r"no more (texts|messages|msgs)|(?:^|de )baja|no me (escrib|mand|contact)\w*|"
    r"wypisz|nie piszcie|stopio|"
    r"withdraw (my )?consent|cease (all )?(communication|contact))\b"
)
_OPT_OUT_INTENT = re.compile(
    r"\b(don'?t|do not|never|no longer|rather not|prefer not|not|quit|refrain from|spare me)\b"
    r"(?! mind)[^.?!]{0,40}\b" + _CONTACT
)
_NOT_OPT_OUT = re.compile(
    r"\b(before|after|until|till|instead|at work|on (mon|tue|wed|thu|fri|sat|sun)\w*|"
    r"(stop|drop|pop) (by|round|over|in)|from what|quote|price|how much|interested in|when can|"
    r"prefer|wrong (number|no) (for|of)|unsubscribe (my|the) (old )?(email|address|account))\b"
)
# Intent words must be about contacting this person ("me", "again", "any further"...), not a
# story about someone else ("the old company never stopped calling").
_DIRECTED = re.compile(
    r"\b(me|us|my|this number|again|anymore|any more|further|ever|these|from you|you lot)\b"
)


def opt_out_intent(latest: str) -> tuple[bool, float, str]:
    """The stand-in's deterministic opt-out judgement of one message: (opt_out, confidence,
    reason). Explicit forms are confident; intent-near-contact wording is confident unless the
    message also reads as a time/channel preference or a sales question."""
    text = latest.strip().lower().replace("\u2019", "'")
    bare = re.sub(r"[^a-z ]+", " ", text).split()
    if bare and len(bare) <= 4 and "stop" in bare and "don't" not in text:
        return True, 0.95, "A short message saying stop."
    if _OPT_OUT_STRONG.search(text):
        if _NOT_OPT_OUT.search(text) and len(bare) > 6:
            return True, 0.55, "Opt-out words, but the message also asks about the service."
        return True, 0.95, "The lead asked not to be contacted again."
    if _OPT_OUT_INTENT.search(text) and _DIRECTED.search(text):
        if _NOT_OPT_OUT.search(text):
            return False, 0.6, "A preference about when or how to be contacted, not a revocation."
        return True, 0.85, "The lead asked, in their own words, for no more messages."
    return False, 0.9, "No request to stop messages."


_HANDOVER = re.compile(
    r"\b(idiot|stupid|scam|scammer|harass|complain|complaint|solicitor|lawyer|ombudsman|"
    r"report you|useless|rubbish|f\*+|speak to (a|an|someone|somebody|a real) ?(person|human)?|"
    r"real person|human)\b"
)
_NOT_INTERESTED = re.compile(
    r"\b(not interested|no thanks|no thank you|already (sorted|done|found|have)|"
    r"no longer|not anymore|not any more|not now|not for me)\b"
)
_AFFIRM = re.compile(
    r"\b(yes|yeah|yep|yup|sure|ok|okay|perfect|great|lovely|sounds good|that works|works for me|"
    r"go ahead|book (it|me)|fine|please do)\b"
)
_INTEREST = re.compile(
    r"\b(interested|yes|yeah|sure|tell me more|more info|how much|price|cost|quote|call|chat|"
    r"available|availability|when|book|appointment|still looking|sounds good|keen)\b"
)
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")
_HOUR = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*(am|pm)\b|\b(\d{1,2}):(\d{2})\b")
_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def _tag(text: str, name: str) -> tuple[str, str] | None:
    """(attributes, inner text) of the last <name ...>...</name> in `text`."""
    found = re.findall(rf"<{name}([^>]*)>(.*?)</{name}>", text, flags=re.S)
    return found[-1] if found else None


@dataclass(frozen=True)
class _OfferedSlot:
    iso: str
    label: str
    start: datetime


def _slots(text: str) -> tuple[list[_OfferedSlot], bool]:
    tag = _tag(text, "available_slots")
    if tag is None:
        return [], False
    attrs, inner = tag
    out = []
    for line in inner.splitlines():
        m = _ISO.search(line)
        if not m:
            continue
        label = line[m.end() :].strip(" -()\t") or m.group(0)
        start = datetime.fromisoformat(m.group(0).replace("Z", "+00:00"))
        out.append(_OfferedSlot(m.group(0), label, start))
    return out, 'offered_before="true"' in attrs


def _pick_slot(message: str, slots: list[_OfferedSlot]) -> _OfferedSlot | None:
    """The slot the lead names (weekday and/or hour, in the slot's label), else None."""
    day = next((d for d in _DAYS if d in message or d[:3] + " " in message), None)
    hour: int | None = None
    minute = 0
    m = _HOUR.search(message)
    if m:
        if m.group(3):
            hour = int(m.group(1)) % 12 + (12 if m.group(3) == "pm" else 0)
            minute = int(m.group(2) or 0)
        else:
            hour, minute = int(m.group(4)), int(m.group(5))
    for slot in slots:
        label = slot.label.lower()
        if day and day[:3] not in label:
            continue
        if hour is not None:
            lm = _HOUR.search(label)
            if lm is None:
                continue
            if lm.group(3):
                lh = int(lm.group(1)) % 12 + (12 if lm.group(3) == "pm" else 0)
                lmin = int(lm.group(2) or 0)
            else:
                lh, lmin = int(lm.group(4)), int(lm.group(5))
            if (lh, lmin) != (hour, minute):
                continue
        if day or hour is not None:
            return slot
    return None


def decide_reply(system_text: str, user_text: str) -> dict[str, Any]:
    """The stand-in's deterministic reply decision for a lead conversation."""
    latest_tag = _tag(user_text, "latest_message")
    latest = (latest_tag[1] if latest_tag else user_text).strip().lower()
    slots, offered = _slots(user_text)
    name_match = re.search(r"First name:\s*([^\n]+)", system_text)
    name = name_match.group(1).strip() if name_match else "there"
    lessons = list(dict.fromkeys(re.findall(r'<lesson id="([0-9a-f-]{36})"', system_text)))
    base: dict[str, Any] = {
        "reply_text": "",
        "contact_status": "REPLIED",
        "lead_sentiment": "NEUTRAL",
        "confidence": 0.8,
        "reasoning": "",
        "lessons_applied": lessons[:3],
        "booking_intent": "none",
        "chosen_slot": None,
        "opt_out_intent": False,
        "handover": False,
        "handover_reason": None,
    }
    opt_out, confidence, _why = opt_out_intent(latest)
    if opt_out and confidence >= 0.8:
        # "Not interested, don't text again" included: a revocation, not a polite goodbye.
        return base | {
            "contact_status": "NOT_INTERESTED",
            "lead_sentiment": "NEGATIVE",
            "confidence": 0.97,
            "reasoning": "The lead asked us to stop contacting them.",
            "opt_out_intent": True,
        }
    if _HANDOVER.search(latest):
        return base | {
            "reply_text": "Thanks for letting me know. I'll ask a colleague to pick this up.",
            "lead_sentiment": "NEGATIVE",
            "confidence": 0.6,
            "reasoning": "The lead is upset or asked for a person; a human should take over.",
            "handover": True,
            "handover_reason": "Lead is upset or asked for a person.",
        }
    if _NOT_INTERESTED.search(latest):
        return base | {
            "reply_text": f"No problem at all, {name}. Thanks for letting me know, "
            "and do get in touch if anything changes.",
            "contact_status": "NOT_INTERESTED",
            "lead_sentiment": "NEGATIVE",
            "confidence": 0.9,
            "reasoning": "The lead said they are not interested; closing politely.",
        }
    if slots and offered:
        chosen = _pick_slot(latest, slots)
        if chosen is None and _AFFIRM.search(latest):
            chosen = slots[0]
        if chosen is not None:
            return base | {
                "reply_text": f"Brilliant, you're booked in for {chosen.label}. Speak then!",
                "contact_status": "HOT",
                "lead_sentiment": "HOT",
                "confidence": 0.9,
                "reasoning": "The lead accepted one of the offered times.",
                "booking_intent": "book",
                "chosen_slot": chosen.iso,
            }
    if _INTEREST.search(latest):
        if slots:
            offer = " or ".join(s.label for s in slots[:3])
            return base | {
                "reply_text": f"Great to hear, {name}! Would a quick call suit you at {offer}?",
                "contact_status": "HOT",
                "lead_sentiment": "POSITIVE",
                "confidence": 0.85,
                "reasoning": "The lead is interested; offering open call slots.",
                "booking_intent": "offer_slots",
            }
        return base | {
            "reply_text": f"Great to hear, {name}! What day and time would suit you for a quick "
            "call with the team?",
            "contact_status": "WARM",
            "lead_sentiment": "POSITIVE",
            "confidence": 0.8,
            "reasoning": "The lead is interested but no open slots were given.",
        }
    return base | {
        "reply_text": f"Thanks for getting back to me, {name}! Are you still looking for help "
        "with this?",
        "confidence": 0.7,
        "reasoning": "The lead replied without a clear signal; asking an easy question.",
    }


def _value_for(schema: dict[str, Any], preferred: Any = None, has_preferred: bool = False) -> Any:
    """A schema-valid value, using `preferred` when it fits the schema."""
    options = schema.get("anyOf")
    if options:
        if has_preferred:
            for option in options:
                if _fits(option, preferred):
                    return preferred
        nulls = [o for o in options if o.get("type") == "null"]
        return None if nulls else _value_for(options[0])
    if has_preferred and _fits(schema, preferred):
        if schema.get("type") == "object" and isinstance(preferred, dict):
            return _object_for(schema, preferred)
        return preferred
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = "null" if "null" in kind else kind[0]
    return (
        {
            "string": "",
            "number": 0.5,
            "integer": 0,
            "boolean": False,
            "array": [],
            "null": None,
        }.get(kind)
        if kind != "object"
        else _object_for(schema, {})
    )


def _fits(schema: dict[str, Any], value: Any) -> bool:
    if "enum" in schema:
        return value in schema["enum"]
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    checks = {
        "string": lambda v: isinstance(v, str),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
        "null": lambda v: v is None,
    }
    return any(checks.get(k, lambda v: False)(value) for k in kinds)


def _object_for(schema: dict[str, Any], preferred: dict[str, Any]) -> dict[str, Any]:
    return {
        name: _value_for(sub, preferred.get(name), name in preferred)
        for name, sub in (schema.get("properties") or {}).items()
    }


def _malformed(good: dict[str, Any]) -> dict[str, Any]:
    # Schema-valid for a strict tool, but semantically broken: no reply although nothing
    # justifies silence, an impossible confidence, and a booking without a slot.
    return good | {
        "reply_text": "",
        "confidence": 7,
        "booking_intent": "book",
        "chosen_slot": None,
        "opt_out_intent": False,
        "handover": False,
    }


# ---------------------------------------------------------------------- the server


class AnthropicStandin(LoopbackServer):
    """The stand-in server. Thread-safe; use as a context manager or start()/stop()."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(host=host, port=port)
        self.api_key = api_key
        self.clock = clock
        self._state = _State()
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ lifecycle

    thread_name = "anthropic-standin"

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _Handler

    @property
    def base_url(self) -> str:
        """What to pass as the SDK's `base_url`."""
        return self.origin

    # ------------------------------------------------------------------ test controls

    @property
    def requests(self) -> list[RecordedRequest]:
        """Message requests received (not count_tokens or control calls), oldest first."""
        with self._lock:
            return list(self._state.requests)

    def reset(self, *, keep_cache: bool = False) -> None:
        with self._lock:
            cache = self._state.cache if keep_cache else {}
            self._state = _State(cache=cache)

    def clear_cache(self) -> None:
        with self._lock:
            self._state.cache.clear()

    def fail_next(
        self,
        status: int = 500,
        *,
        times: int = 1,
        retry_after: float | None = None,
    ) -> None:
        """The next `times` message requests fail with `status` (429/529/5xx/...)."""
        self._add(Fault("status", status=status, retry_after=retry_after, times=times))

    def delay_next(self, seconds: float, *, times: int = 1) -> None:
        """The next `times` requests answer only after `seconds` (to trip client timeouts)."""
        self._add(Fault("delay", delay=seconds, times=times))

    def malformed_next(self, *, times: int = 1) -> None:
        """The next `times` forced tool calls carry semantically invalid input."""
        self._add(Fault("malformed", times=times))

    def no_tool_next(self, *, times: int = 1) -> None:
        """The next `times` answers are plain text (no tool call), as at max_tokens."""
        self._add(Fault("no_tool", times=times))

    def _add(self, fault: Fault) -> None:
        with self._lock:
            self._state.faults.append(fault)

    def _take_fault(self) -> Fault | None:
        with self._lock:
            if not self._state.faults:
                return None
            fault = self._state.faults[0]
            fault.times -= 1
            if fault.times <= 0:
                self._state.faults.pop(0)
            return fault

    # ------------------------------------------------------------------ usage

    def usage_for(self, body: dict[str, Any]) -> dict[str, int]:
        """Input token split for a request, updating the prompt cache like the real API."""
        blocks = prompt_blocks(body)
        cumulative: list[int] = []
        total = 0
        digests: list[str] = []
        h = hashlib.sha256(str(body.get("model")).encode())
        for block in blocks:
            total += count_tokens(block.text)
            cumulative.append(total)
            h.update(block.text.encode())
            h.update(b"\x00")
            digests.append(h.hexdigest())
        minimum = min_cacheable_tokens(str(body.get("model")))
        marks = [i for i, b in enumerate(blocks) if b.cache_ttl and cumulative[i] >= minimum]
        now = self.clock()
        read_at: int | None = None
        with self._lock:
            cache = self._state.cache
            for mark in reversed(marks):
                for j in range(mark, max(-1, mark - LOOKBACK_BLOCKS - 1), -1):
                    if cache.get(digests[j], 0) > now and cumulative[j] >= minimum:
                        read_at = j
                        break
                if read_at is not None:
                    break
            read = cumulative[read_at] if read_at is not None else 0
            last = marks[-1] if marks else None
            created = cumulative[last] - read if last is not None and last != read_at else 0
            created = max(created, 0)
            for mark in marks:
                cache[digests[mark]] = now + CACHE_TTL[blocks[mark].cache_ttl or "5m"]
            if read_at is not None:
                ttl = max((blocks[m].cache_ttl or "5m" for m in marks), key=CACHE_TTL.get)
                cache[digests[read_at]] = now + CACHE_TTL[ttl]
        return {
            "input_tokens": total - read - created,
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
        }

    # ------------------------------------------------------------------ dispatch

    def handle(self, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any, dict]:
        if path.startswith("/_standin/"):
            return self._control(path, body)
        if path == "/v1/messages/count_tokens":
            validate_request(headers, {**(body or {}), "max_tokens": 1}, self.api_key)
            total = sum(count_tokens(b.text) for b in prompt_blocks(body))
            return 200, {"input_tokens": total}, {}
        if path != "/v1/messages":
            raise ApiError(404, "not_found_error", f"Not found: {path}")
        validate_request(headers, body, self.api_key)
        if body.get("stream"):
            raise ApiError(400, "invalid_request_error", "the stand-in does not stream")
        fault = self._take_fault()
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.delay)
        if fault is not None and fault.kind == "status":
            with self._lock:
                self._state.requests.append(RecordedRequest(headers, body))
            extra = {} if fault.retry_after is None else {"retry-after": f"{fault.retry_after:g}"}
            raise ApiError(
                fault.status, _error_type(fault.status), _error_text(fault.status), extra
            )
        usage = self.usage_for(body)
        content, stop_reason = self._answer(body, fault)
        output_text = "".join(_block_text(b) for b in content)
        usage_full = {
            **usage,
            "output_tokens": max(1, count_tokens(output_text)),
            "cache_creation": {
                "ephemeral_5m_input_tokens": usage["cache_creation_input_tokens"],
                "ephemeral_1h_input_tokens": 0,
            },
            "service_tier": "standard",
        }
        with self._lock:
            self._state.requests.append(RecordedRequest(headers, body, usage_full))
        message = {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage_full,
        }
        return 200, message, {"request-id": f"req_{uuid.uuid4().hex[:24]}"}

    def _answer(self, body: dict[str, Any], fault: Fault | None) -> tuple[list[dict], str]:
        system_text = "\n".join(b.get("text", "") for b in _system_blocks(body))
        user_text = _last_user_text(body)
        decision = decide_reply(system_text, user_text)
        choice = body.get("tool_choice") or {}
        tools = {t["name"]: t for t in body.get("tools") or []}
        forced = choice.get("name") if choice.get("type") == "tool" else None
        if choice.get("type") == "any" and tools:
            forced = next(iter(tools))
        if forced is None or (fault is not None and fault.kind == "no_tool"):
            text = decision["reply_text"] or "Thanks for your message."
            return [{"type": "text", "text": text}], "end_turn"
        schema = tools[forced]["input_schema"]
        if forced == "classify_opt_out":
            latest_tag = _tag(user_text, "latest_message")
            opt_out, confidence, reason = opt_out_intent(latest_tag[1] if latest_tag else user_text)
            decision = {"opt_out": opt_out, "confidence": confidence, "reason": reason}
        tool_input = _object_for(schema, decision)
        if fault is not None and fault.kind == "malformed":
            tool_input = _malformed(tool_input)
        block = {
            "type": "tool_use",
            "id": f"toolu_{uuid.uuid4().hex[:24]}",
            "name": forced,
            "input": tool_input,
        }
        return [block], "tool_use"

    def _control(self, path: str, body: Any) -> tuple[int, Any, dict]:
        body = body if isinstance(body, dict) else {}
        if path == "/_standin/requests":
            return (
                200,
                {"requests": [{"body": r.body, "usage": r.usage} for r in self.requests]},
                {},
            )
        if path == "/_standin/fail":
            kind = body.get("kind", "status")
            fault = Fault(
                kind,
                status=int(body.get("status", 500)),
                retry_after=body.get("retry_after"),
                delay=float(body.get("delay", 0)),
                times=int(body.get("times", 1)),
            )
            self._add(fault)
            return 200, {"ok": True}, {}
        if path == "/_standin/reset":
            self.reset()
            return 200, {"ok": True}, {}
        raise ApiError(404, "not_found_error", f"Not found: {path}")


def _error_type(status: int) -> str:
    return {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        529: "overloaded_error",
    }.get(status, "api_error")


def _error_text(status: int) -> str:
    return {
        429: "Number of request tokens has exceeded your per-minute rate limit",
        529: "Overloaded",
    }.get(status, "Internal server error")


class _Handler(BaseHTTPRequestHandler):
    owner: AnthropicStandin
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle plus the client's
    # delayed ACK add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            try:
                body = json.loads(raw) if raw else None
            except ValueError as exc:
                raise ApiError(400, "invalid_request_error", "body is not valid JSON") from exc
            status, out, extra = self.owner.handle(path, headers, body)
        except ApiError as exc:
            status, extra = exc.status, exc.headers
            out = {
                "type": "error",
                "error": {"type": exc.type, "message": exc.message},
                "request_id": f"req_{uuid.uuid4().hex[:24]}",
            }
        self._send(status, out, extra)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/_standin/requests":
            status, out, extra = self.owner.handle(path, {}, None)
            self._send(status, out, extra)
            return
        self._send(404, {"type": "error", "error": {"type": "not_found_error", "message": path}})

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): nothing to answer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local stand-in for the Anthropic Messages API.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    standin = AnthropicStandin(host=args.host, port=args.port).start()
    log.info("Anthropic stand-in listening on %s", standin.base_url)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        standin.stop()


if __name__ == "__main__":
    main()
