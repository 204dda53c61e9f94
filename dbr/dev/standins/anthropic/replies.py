"""The stand-in's deterministic "model": what it answers, read from the conversation with
keyword rules (opt-out, handover, not interested, interest with slots, accepting a slot), and
tool inputs that match the request's schema."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dbr.dev.standins.anthropic.wire import last_user_text, system_blocks

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


def answer(
    body: dict[str, Any], fault: str | None = None, *, preferred: dict[str, Any] | None = None
) -> tuple[list[dict], str]:
    """The content blocks and stop reason for a valid request: the forced tool's input built
    from `decide_reply` (or `opt_out_intent` for classify_opt_out, or `preferred` when the
    caller has its own answer, e.g. Sophie's review), else a text answer.
    `fault` "no_tool" answers in text anyway; "malformed" breaks the tool input."""
    system_text = "\n".join(b.get("text", "") for b in system_blocks(body))
    user_text = last_user_text(body)
    decision = decide_reply(system_text, user_text)
    choice = body.get("tool_choice") or {}
    tools = {t["name"]: t for t in body.get("tools") or []}
    forced = choice.get("name") if choice.get("type") == "tool" else None
    if choice.get("type") == "any" and tools:
        forced = next(iter(tools))
    if forced is None or (fault == "no_tool"):
        text = decision["reply_text"] or "Thanks for your message."
        return [{"type": "text", "text": text}], "end_turn"
    schema = tools[forced]["input_schema"]
    if forced == "classify_opt_out":
        latest_tag = _tag(user_text, "latest_message")
        opt_out, confidence, reason = opt_out_intent(latest_tag[1] if latest_tag else user_text)
        decision = {"opt_out": opt_out, "confidence": confidence, "reason": reason}
    if preferred is not None:
        decision = preferred
    tool_input = _object_for(schema, decision)
    if fault == "malformed":
        tool_input = _malformed(tool_input)
    block = {
        "type": "tool_use",
        "id": f"toolu_{uuid.uuid4().hex[:24]}",
        "name": forced,
        "input": tool_input,
    }
    return [block], "tool_use"
