"""The AI's opt-out check: one forced strict tool call that classifies an inbound reply as a
revocation of consent or not. No reply is written.

It is the second layer. The first, deterministic one (`private.opt_out_phrases`, matched in
the ingest) has already opted out every reply it recognises; this call runs for replies in
manual or off mode (where no AI reply reads them) to catch the rest: long, polite or unusual
ways of saying "stop". Only a confident answer (`private.ai_classify_commit`, default 0.8)
opts the lead out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from anthropic import AsyncAnthropic
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dbr.ai.claude import USAGE_KEYS, usage_of
from dbr.ai.decision import MalformedOutput

log = logging.getLogger("dbr.ai")

TOOL_NAME = "classify_opt_out"
MAX_OUTPUT_TOKENS = 256

SYSTEM_PROMPT = """You check text messages that people sent in reply to a business's SMS
campaign. Decide one thing: does the latest message revoke consent to be contacted - does the
person ask, in any words or language, to stop receiving messages?

Counts as a revocation (opt_out true): stop / unsubscribe / opt out in any wording or language;
"no more texts", "don't text or contact me (again)", "leave me alone"; asking to be removed or
for their number, details or data to be deleted (including GDPR requests); "wrong number" or
"I never enquired"; polite forms ("I'd rather not receive these"). "Not interested" together
with any of these is a revocation.

Not a revocation (opt_out false): "not interested", "no thanks", "already sorted" on their own;
questions; preferences about time or channel ("don't text before 5pm", "call instead");
"stop" or "remove" about something else ("stop by at 2", "remove the old windows").

confidence: 0 to 1, how sure you are of opt_out. reason: a few words for staff.
Call the classify_opt_out tool exactly once."""


def classify_tool() -> dict[str, Any]:
    properties: dict[str, Any] = {
        "opt_out": {
            "type": "boolean",
            "description": "True when the latest message asks to stop receiving messages.",
        },
        "confidence": {"type": "number", "description": "0 to 1: how sure you are."},
        "reason": {"type": "string", "description": "A few words for staff: why."},
    }
    return {
        "name": TOOL_NAME,
        "description": "Record whether the latest message revokes consent to be contacted.",
        "strict": True,
        "input_schema": {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        },
    }


class OptOutClassification(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    opt_out: bool
    confidence: float = Field(ge=0, le=1)
    reason: str = Field(max_length=500)


@dataclass
class Classification:
    result: OptOutClassification
    model: str
    calls: int
    usage: dict[str, int] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)


def build_request(message: str, previous: list[dict[str, Any]], *, model: str) -> dict[str, Any]:
    """Keyword arguments for `client.messages.create(...)`."""
    lines = [
        f"{'lead' if m.get('direction') == 'inbound' else 'us'}: {m.get('content') or ''}"
        for m in previous
    ]
    user = (
        "<previous_messages>\n"
        + ("\n".join(lines) or "none")
        + "\n</previous_messages>\n\n<latest_message>\n"
        + message
        + "\n</latest_message>"
    )
    return {
        "model": model,
        "max_tokens": MAX_OUTPUT_TOKENS,
        "tools": [classify_tool()],
        "tool_choice": {"type": "tool", "name": TOOL_NAME},
        "system": SYSTEM_PROMPT,
        "messages": [{"role": "user", "content": user}],
    }


async def classify(
    client: AsyncAnthropic, params: dict[str, Any], *, attempts: int = 3
) -> Classification:
    """Calls Claude until it returns a valid classification (up to `attempts` calls)."""
    total = dict.fromkeys(USAGE_KEYS, 0)
    rejected: list[str] = []
    for call in range(1, attempts + 1):
        message = await client.messages.create(**params)
        for k, v in usage_of(message).items():
            total[k] += v
        block = next(
            (b for b in message.content if b.type == "tool_use" and b.name == TOOL_NAME), None
        )
        try:
            if block is None:
                raise MalformedOutput(f"no {TOOL_NAME} call (stop_reason {message.stop_reason})")
            result = OptOutClassification.model_validate(block.input)
        except ValidationError as exc:
            rejected.append(str(exc.errors()[:3]))
            log.warning("opt-out classification rejected (call %s/%s)", call, attempts)
            continue
        except MalformedOutput as exc:
            rejected.append(str(exc))
            log.warning("opt-out classification rejected (call %s/%s): %s", call, attempts, exc)
            continue
        return Classification(result, message.model, call, total, rejected)
    raise MalformedOutput(f"{attempts} classifications rejected: " + " | ".join(rejected))
