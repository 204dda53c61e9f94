"""The Anthropic stand-in's deterministic Sophie: reviews and pattern detection from the text.

When a request forces the tool `record_review` (Sophie reviewing a message or a thread) the
stand-in reads the outbound messages in `<review_target>` and finds, by fixed rules:

- compliance / critical `missing_opt_out`: the first message to a lead (`first="true"`) does
  not say how to opt out (Reply STOP, opt out, unsubscribe);
- grammar / suggestion `misspelling:<word>`: a known misspelling (definately, recieve, ...);
- tone / warning `pressure_language`: pressure words (act now, last chance, hurry, ...);
- personalization / info `generic_greeting`: "Dear customer", "Hi there", "Dear sir/madam".

Like a model told so in its prompt, it does not raise a kind of finding listed in
`<teaching category=".." pattern="..">` (unless `ignore_teachings` is set, so tests can prove
the database's own guard). The quality score falls with each finding's severity.

When a request forces `record_patterns`, it reads `<conversation id=".." outcome="..">` blocks
and reports which conversations show each of a few fixed features of the agent's messages
(payment plans, a question, a price, call times) - the counting and the statistics are the
product's job, not the model's.
"""

from __future__ import annotations

import re
from typing import Any

REVIEW_TOOL = "record_review"
PATTERNS_TOOL = "record_patterns"
TOOLS = (REVIEW_TOOL, PATTERNS_TOOL)

MISSPELLINGS = {
    "definately": "definitely",
    "recieve": "receive",
    "seperate": "separate",
    "accomodate": "accommodate",
    "untill": "until",
    "tommorow": "tomorrow",
    "wich": "which",
    "occured": "occurred",
    "garantee": "guarantee",
    "apparantly": "apparently",
}
_OPT_OUT = re.compile(
    r"(reply|text|txt|send)\s+(with\s+)?[\"']?(stop|end)|opt[- ]?out|unsubscribe", re.I
)
_PRESSURE = re.compile(
    r"\b(act now|last chance|limited time|hurry|don'?t miss out|final offer|only today|"
    r"expires? (today|tonight)|before it'?s too late|urgent(ly)?)\b",
    re.I,
)
_GENERIC = re.compile(
    r"^\s*(dear (customer|sir|madam|sir/madam|client)|hi there|hello there)\b", re.I
)
_MESSAGE = re.compile(r"<message ([^>]*)>(.*?)</message>", re.S)
_ATTR = re.compile(r'(\w+)="([^"]*)"')
_TEACHING = re.compile(r'<teaching category="([^"]*)" pattern="([^"]*)"')


def _attrs(text: str) -> dict[str, str]:
    return dict(_ATTR.findall(text))


def _target(user_text: str) -> str:
    m = re.search(r"<review_target>(.*?)</review_target>", user_text, re.S)
    return m.group(1) if m else user_text


def review(system_text: str, user_text: str, *, ignore_teachings: bool = False) -> dict[str, Any]:
    """The stand-in's review: {quality_score, summary, findings[]} in record_review's shape."""
    taught = set() if ignore_teachings else set(_TEACHING.findall(system_text))
    findings: list[dict[str, Any]] = []
    for attrs_text, body in _MESSAGE.findall(_target(user_text)):
        attrs = _attrs(attrs_text)
        if attrs.get("direction") != "outbound":
            continue
        text = body.strip()
        mid = attrs.get("id")
        if attrs.get("first") == "true" and not _OPT_OUT.search(text):
            findings.append(
                _finding(
                    "critical",
                    "compliance",
                    "First message has no opt-out instruction",
                    "The first message to a lead must tell them how to stop messages.",
                    "Add the client's opt-out line, e.g. 'Reply STOP to opt out'.",
                    text[:200],
                    (text + " Reply STOP to opt out.")[:300],
                    "missing_opt_out",
                    mid,
                )
            )
        for word in re.findall(r"[A-Za-z]+", text):
            fix = MISSPELLINGS.get(word.lower())
            if fix:
                findings.append(
                    _finding(
                        "suggestion",
                        "grammar",
                        f"Misspelling: {word.lower()}",
                        f"'{word}' is misspelt; it should be '{fix}'.",
                        f"Write '{fix}'.",
                        word,
                        fix,
                        f"misspelling:{word.lower()}",
                        mid,
                    )
                )
        pressure = _PRESSURE.search(text)
        if pressure:
            findings.append(
                _finding(
                    "warning",
                    "tone",
                    "Pressure language",
                    f"'{pressure.group(0)}' pressures the lead; reactivation works better relaxed.",
                    "Invite rather than push.",
                    pressure.group(0),
                    "whenever suits you",
                    "pressure_language",
                    mid,
                )
            )
        generic = _GENERIC.search(text)
        if generic:
            findings.append(
                _finding(
                    "info",
                    "personalization",
                    "Generic greeting",
                    "The message does not greet the lead by name.",
                    "Use the lead's first name.",
                    generic.group(0).strip(),
                    "Hi {first_name}",
                    "generic_greeting",
                    mid,
                )
            )
    findings = [f for f in findings if (f["category"], f["pattern"]) not in taught]
    weight = {"critical": 0.35, "urgent": 0.2, "warning": 0.12, "suggestion": 0.05, "info": 0.02}
    score = max(0.05, 1 - sum(weight[f["severity"]] for f in findings))
    summary = (
        "; ".join(f["title"] for f in findings)
        if findings
        else "Clear, friendly and compliant; nothing to change."
    )
    return {"quality_score": round(score, 3), "summary": summary[:500], "findings": findings}


def _finding(
    severity: str,
    category: str,
    title: str,
    description: str,
    suggestion: str,
    original: str,
    suggested: str,
    pattern: str,
    message_id: str | None,
) -> dict[str, Any]:
    return {
        "severity": severity,
        "category": category,
        "title": title,
        "description": description,
        "suggestion": suggestion,
        "original_text": original,
        "suggested_text": suggested,
        "pattern": pattern,
        "message_id": message_id,
    }


_FEATURES: list[tuple[str, str, str, re.Pattern[str]]] = [
    (
        "payment_plan",
        "The agent mentions a payment plan or monthly payments",
        "Mention the monthly payment plan when price comes up.",
        re.compile(r"payment plan|monthly|finance|spread the cost", re.I),
    ),
    (
        "asks_question",
        "The agent ends a message with a question",
        "End messages with one easy question.",
        re.compile(r"\?\s*$", re.M),
    ),
    (
        "mentions_price",
        "The agent quotes a price",
        "Quote prices only on a call.",
        re.compile(r"£\s?\d|\bprice\b|\bcosts?\b", re.I),
    ),
    (
        "offers_call_times",
        "The agent offers specific call times",
        "Offer two concrete call times.",
        re.compile(r"\b\d{1,2}(:\d{2})?\s?(am|pm)\b", re.I),
    ),
]
_CONVERSATION = re.compile(r'<conversation id="([^"]+)"[^>]*>(.*?)</conversation>', re.S)
_AGENT = re.compile(r'<m from="agent">(.*?)</m>', re.S)


def patterns(user_text: str) -> dict[str, Any]:
    """The stand-in's pattern detection: each feature with the conversations showing it."""
    found: dict[str, list[str]] = {key: [] for key, *_ in _FEATURES}
    for cid, body in _CONVERSATION.findall(user_text):
        agent = "\n".join(m.strip() for m in _AGENT.findall(body))
        for key, _desc, _lesson, rx in _FEATURES:
            if rx.search(agent):
                found[key].append(cid)
    return {
        "patterns": [
            {
                "pattern_key": key,
                "pattern_description": desc,
                "suggested_lesson": lesson,
                "conversation_ids": found[key],
            }
            for key, desc, lesson, _rx in _FEATURES
            if found[key]
        ]
    }


def answer(tool: str, system_text: str, user_text: str, *, ignore_teachings: bool = False) -> dict:
    """The preferred tool input for a forced Sophie tool."""
    if tool == REVIEW_TOOL:
        return review(system_text, user_text, ignore_teachings=ignore_teachings)
    return patterns(user_text)
