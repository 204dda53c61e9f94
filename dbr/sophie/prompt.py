"""What Sophie is asked: the review rubric, the client block, the thread, and the patterns prompt.

The request is laid out for the prompt cache (prefix order: tools, system, messages):

  tools      record_review (strict)                         same for every review
  system[0]  the rubric                       cache_control  same for every review
  system[1]  the client: compliance, the prompt the agent used and its lessons, and what
             staff taught Sophie                cache_control  same for a client's reviews
  user       the thread and the message(s) to review              different every time

so a run of reviews pays full price for the rubric once and reads it from the cache after.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from dbr.sophie.findings import PATTERNS_TOOL, REVIEW_TOOL, patterns_tool, review_tool

MAX_TOKENS = 2000

RUBRIC = """You are Sophie, the reviewer of an SMS sales assistant used by UK home-improvement and
service businesses to reactivate old enquiries (people who asked for a quote months or years
ago). The assistant (the "agent") writes first messages (M1), two follow-ups (M2, M3) and
replies to the lead; staff sometimes write messages themselves. You review what was sent, as a
senior sales coach and compliance officer would, and record your review with the
record_review tool exactly once.

What you are given:
- <client>: the business, its opt-out line and compliance settings, the prompt the agent was
  using (with the lessons it was told to apply) and <teachings>: kinds of findings staff have
  told you are wrong for this client. Never raise a finding of a taught kind (same category
  and pattern); follow the teaching's correct approach instead.
- <thread>: the conversation so far, oldest first; each <message> has id, direction
  (outbound = us, inbound = the lead), category (m1, m2, m3, ai_response, human_manual,
  lead_reply, system) and first="true" on our first message to the lead.
- <review_target>: the message(s) you are reviewing. Review only those, using the thread
  for context.

How to review. For each message under review, check in this order:
1. Compliance (category compliance). The first message to a lead must identify the business
   and say how to opt out (for example "Reply STOP to opt out"); no message may continue
   after the lead asked to stop; no misleading claims, no invented prices, no promises the
   business did not make; nothing a regulator (ICO, ASA, Ofcom) would object to. A missing
   opt-out instruction on a first message is critical.
2. Tone (tone). Friendly, plain, British English, no pressure: "act now", "last chance",
   "limited time" and similar pressure language hurt reactivation and trust (warning). No
   sarcasm, no guilt, no excessive exclamation marks.
3. Grammar and spelling (grammar). Misspellings and broken sentences make the business look
   careless (suggestion); quote the misspelt word exactly in original_text.
4. Strategy (strategy). Does the message move the conversation towards a booked call? One
   clear question, no walls of text, no repeating what the lead already answered.
5. Timing (timing). Messages at night, too many in a row without an answer, or a follow-up
   that ignores what the lead said.
6. Personalisation (personalization). Use of the lead's first name and what they enquired
   about; "Dear customer" style greetings are info-level findings.
7. Booking (booking). Offered times must be real, confirmed bookings must match what the
   lead accepted, and a lead who wants a call should be offered one.

Severity:
- critical: a legal or compliance breach, or something that could cause real harm; staff
  are notified at once.
- urgent: likely to lose the lead or upset them; fix today.
- warning: noticeably hurts results; fix soon.
- suggestion: an improvement worth making.
- info: worth knowing, no action needed.

Each finding: a short title (at most 120 characters), a description of what is wrong and
why it matters, a concrete suggestion, the exact original_text at fault, suggested_text to
use instead, and a pattern: a short snake_case name for the kind of issue that stays the
same whenever the same kind comes up (missing_opt_out, pressure_language,
misspelling:<word>, generic_greeting, no_question, too_long, ...). When reviewing a whole
conversation, set message_id to the id of the message the finding is about.

quality_score is 0 to 1: 1 is a message you would not change; a critical finding keeps it
below 0.6. summary is one or two sentences of feedback for staff. Do not invent problems:
when a message is good, say so and record no findings. Never include the lead's phone number
or personal data beyond what is in the thread."""

PATTERNS_RUBRIC = """You are Sophie, the reviewer of an SMS sales assistant. You are given
conversations between the agent and leads of one dataset, each marked with its outcome:
booked (the lead booked a call or converted), cold (no booking yet) or opted_out. Find
recurring, concrete features of the AGENT's messages (not the leads') that may explain the
difference between outcomes - for example mentioning a payment plan, ending with a question,
quoting a price, offering specific call times, messaging late at night. For each pattern give
a stable snake_case pattern_key, a one-sentence pattern_description, a suggested_lesson (what
the agent should do), and the ids of EVERY conversation in this chunk that shows it, whatever
its outcome. Do not compute rates or judge significance; that is done afterwards over all
chunks. Record them with the record_patterns tool exactly once."""


def _cached(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}


def client_block(ctx: dict[str, Any]) -> str:
    client = ctx.get("client") or {}
    prompt = ctx.get("prompt") or {}
    teachings = "\n".join(
        f'<teaching category="{escape(str(t.get("category")))}" '
        f'pattern="{escape(str(t.get("pattern_key") or ""))}">'
        f"Staff disagreed with: {escape(str(t.get('title') or ''))}. Why: "
        f"{escape(str(t.get('teaching_note') or ''))}. Instead: "
        f"{escape(str(t.get('correct_approach') or ''))}</teaching>"
        for t in ctx.get("teachings") or []
    )
    return (
        f'<client name="{escape(str(client.get("name") or ""))}">\n'
        f"Opt-out line: {client.get('opt_out_line') or 'Reply STOP to opt out'}\n"
        f"Compliance settings: {json.dumps(client.get('compliance') or {}, sort_keys=True)}\n"
        f"About the business: {client.get('company_description') or '(not given)'}\n"
        f'<agent_prompt version="{prompt.get("version", "")}">\n'
        f"{prompt.get('system_prompt') or '(no prompt on record)'}\n"
        f"{prompt.get('lessons_context') or ''}\n</agent_prompt>\n"
        f"<teachings>\n{teachings}\n</teachings>\n</client>"
    )


def thread_block(ctx: dict[str, Any]) -> str:
    messages = ctx.get("messages") or []
    first_out = next((m["id"] for m in messages if m.get("direction") == "outbound"), None)
    target = ctx.get("message_id")
    lead = ctx.get("lead") or {}

    def render(m: dict[str, Any]) -> str:
        first = ' first="true"' if m["id"] == first_out else ""
        return (
            f'<message id="{m["id"]}" direction="{m.get("direction")}" '
            f'category="{m.get("category")}" at="{m.get("at")}"{first}>'
            f"{escape(str(m.get('content') or ''), quote=False)}</message>"
        )

    thread = "\n".join(render(m) for m in messages)
    if target:
        reviewed = [m for m in messages if m["id"] == target]
    else:
        reviewed = [m for m in messages if m.get("direction") == "outbound"]
    return (
        f'<lead first_name="{escape(str(lead.get("first_name") or ""))}" '
        f'status="{lead.get("contact_status")}" '
        f'opted_out="{str(lead.get("opted_out")).lower()}"/>\n'
        f"<thread>\n{thread}\n</thread>\n"
        f"<review_target>\n{chr(10).join(render(m) for m in reviewed)}\n</review_target>"
    )


def review_request(ctx: dict[str, Any], *, model: str) -> dict[str, Any]:
    """Messages API parameters for one review (also the `params` of a batch request)."""
    return {
        "model": model,
        "max_tokens": MAX_TOKENS,
        "tools": [review_tool()],
        "tool_choice": {"type": "tool", "name": REVIEW_TOOL},
        "system": [_cached(RUBRIC), _cached(client_block(ctx))],
        "messages": [{"role": "user", "content": thread_block(ctx)}],
    }


def patterns_request(chunk: list[dict[str, Any]], *, model: str) -> dict[str, Any]:
    body = "\n".join(
        f'<conversation id="{c["id"]}" outcome="{c["outcome"]}">'
        + "".join(
            f'<m from="{m["from"]}">{escape(str(m["text"]), quote=False)}</m>'
            for m in c.get("messages") or []
        )
        + "</conversation>"
        for c in chunk
    )
    return {
        "model": model,
        "max_tokens": 4000,
        "tools": [patterns_tool()],
        "tool_choice": {"type": "tool", "name": PATTERNS_TOOL},
        "system": [_cached(PATTERNS_RUBRIC)],
        "messages": [{"role": "user", "content": body}],
    }
