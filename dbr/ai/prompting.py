"""The Messages API request for a reply.

Layout, in the API's cache-prefix order (tools -> system -> messages):

    tools    [record_reply (strict)]                        stable for every request
    system   [1] master + reply prompt, company, lessons     <- breakpoint 1: shared by all leads
             [2] lead facts                                 <- breakpoint 2: stable for the lead
    messages [user: reply template with the transcript, the latest message, open slots, time]

Breakpoint 1 closes the prefix every conversation of the client shares (until a prompt is made
live); breakpoint 2 lets a lead's later turns reuse their facts too. Nothing volatile (the
conversation, the time, the slots) sits before a breakpoint, so a new message never
invalidates the cached prefix. Prompt versions carry their own lessons text, so lessons made
live appear in the very next request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dbr.ai.context import ReplyContext, slot_iso, slot_label
from dbr.ai.decision import TOOL_NAME, reply_tool

CACHE = {"type": "ephemeral"}
MAX_OUTPUT_TOKENS = 1024
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


@dataclass(frozen=True)
class OfferedSlot:
    start: datetime
    label: str

    @property
    def iso(self) -> str:
        return slot_iso(self.start)


def render_template(template: str, values: dict[str, str]) -> str:
    """`{{name}}` placeholders; unknown names render empty (a template typo never leaks)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), template)


def slots_block(slots: list[OfferedSlot], *, offered_before: bool) -> str:
    if not slots:
        return '<available_slots offered_before="%s">\nnone\n</available_slots>' % (
            "true" if offered_before else "false"
        )
    lines = "\n".join(f"- {s.iso} ({s.label})" for s in slots)
    flag = "true" if offered_before else "false"
    return f'<available_slots offered_before="{flag}">\n{lines}\n</available_slots>'


def offered_slots(starts: list[datetime], ctx: ReplyContext) -> list[OfferedSlot]:
    return [OfferedSlot(s, slot_label(s, ctx.timezone)) for s in starts]


def user_message(
    ctx: ReplyContext, slots: list[OfferedSlot] | None, now: datetime | None = None
) -> str:
    values = {
        "first_name": ctx.first_name,
        "last_name": ctx.lead.get("last_name") or "",
        "company_name": ctx.company_name,
        "lead_status": ctx.lead.get("contact_status") or "",
        "lead_sentiment": ctx.lead.get("lead_sentiment") or "unknown",
        "conversation": ctx.transcript(),
        "latest_message": ctx.latest_text(),
        "available_slots": ""
        if slots is None
        else slots_block(slots, offered_before=ctx.slots_offered_before),
        "now": ctx.now_text(now),
        "timezone": str(ctx.timezone),
        "inquiry_date": str(ctx.lead.get("inquiry_date") or ""),
        "notes": ctx.lead.get("notes") or "",
    }
    template = ctx.prompt.get("user_prompt_template") or "{{latest_message}}"
    text = render_template(template, values).strip()
    used = set(_PLACEHOLDER.findall(template))
    # A custom template may leave out the essentials: the model must still see them.
    if "latest_message" not in used:
        text += f"\n\n<latest_message>\n{values['latest_message']}\n</latest_message>"
    if slots is not None and "available_slots" not in used:
        text += "\n\n" + values["available_slots"]
    return text


def build_request(
    ctx: ReplyContext,
    *,
    model: str,
    slots: list[OfferedSlot] | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `client.messages.create(...)`."""
    return {
        "model": model,
        "max_tokens": MAX_OUTPUT_TOKENS,
        "tools": [reply_tool()],
        "tool_choice": {"type": "tool", "name": TOOL_NAME},
        "system": [
            {"type": "text", "text": ctx.stable_text(), "cache_control": CACHE},
            {"type": "text", "text": ctx.lead_facts(), "cache_control": CACHE},
        ],
        "messages": [{"role": "user", "content": user_message(ctx, slots, now)}],
    }
