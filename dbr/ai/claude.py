"""One reply from Claude: the call, the tool output, validation, and retries on bad output.

Transport failures (timeouts, 429, 5xx/529) are retried by the SDK (`max_retries`, backoff
with jitter, `retry-after` honoured) and then raised as `anthropic.APIError` for the job
queue to retry. Output that is not a valid decision is asked for again, up to `attempts`
calls, then raised as `MalformedOutput`; it is never sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from anthropic import AsyncAnthropic

from dbr.ai.decision import TOOL_NAME, MalformedOutput, ReplyDecision, parse_decision

log = logging.getLogger("dbr.ai")

USAGE_KEYS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
)


@dataclass
class Generation:
    decision: ReplyDecision
    model: str
    calls: int
    usage: dict[str, int] = field(default_factory=dict)
    request_ids: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


def usage_of(message: Any) -> dict[str, int]:
    usage = getattr(message, "usage", None)
    return {k: int(getattr(usage, k, 0) or 0) for k in USAGE_KEYS}


async def generate(
    client: AsyncAnthropic,
    params: dict[str, Any],
    *,
    offered: list[datetime],
    lesson_ids: list[str],
    attempts: int = 3,
) -> Generation:
    total = dict.fromkeys(USAGE_KEYS, 0)
    request_ids: list[str] = []
    rejected: list[str] = []
    for call in range(1, attempts + 1):
        message = await client.messages.create(**params)
        for k, v in usage_of(message).items():
            total[k] += v
        if rid := getattr(message, "_request_id", None):
            request_ids.append(rid)
        block = next(
            (b for b in message.content if b.type == "tool_use" and b.name == TOOL_NAME), None
        )
        try:
            if block is None:
                raise MalformedOutput(f"no {TOOL_NAME} call (stop_reason {message.stop_reason})")
            decision = parse_decision(block.input, offered_slots=offered, lesson_ids=lesson_ids)
        except MalformedOutput as exc:
            log.warning("Claude output rejected (call %s/%s): %s", call, attempts, exc)
            rejected.append(str(exc))
            continue
        return Generation(
            decision=decision,
            model=message.model,
            calls=call,
            usage=total,
            request_ids=request_ids,
            rejected=rejected,
        )
    raise MalformedOutput(f"{attempts} answers rejected: " + " | ".join(rejected))
