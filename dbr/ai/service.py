"""The AI flows the workers run: `ai.reply` (answer a lead's message) and `ai.draft` (a preview
for staff). Business rules stay in SQL: `private.ai_reply_begin` says whether to answer and
gives the context; `private.ai_reply_commit` re-checks everything under the lead's row lock
and sends, drafts, opts out or hands over in one transaction. Claude and Cal.com are called
between the two, outside any transaction.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anthropic import AsyncAnthropic
from psycopg_pool import AsyncConnectionPool

from dbr.ai import optout
from dbr.ai.claude import Generation, generate
from dbr.ai.context import ReplyContext
from dbr.ai.prompting import OfferedSlot, build_request, offered_slots
from dbr.bookings.errors import BookingError
from dbr.bookings.service import (
    BookingLead,
    book_for_lead,
    booking_fallback_message,
    upcoming_slots,
)
from dbr.db import call_as
from dbr.providers.calcom import CalcomClient, CalcomError
from dbr.settings import Settings

log = logging.getLogger("dbr.ai")


class Skipped(Exception):
    """The job has nothing to do (reason in `reason`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class AiDeps:
    pool: AsyncConnectionPool
    settings: Settings
    anthropic: AsyncAnthropic
    calcom: CalcomClient | None = None  # None: no booking for this worker
    slot_days: int = 3
    slot_limit: int = 6


async def flag_needs_human(
    pool: AsyncConnectionPool, conversation_id: str, reason: str, detail: str
) -> None:
    await call_as(
        pool,
        None,
        "private.ai_flag_needs_human",
        p_conversation_id=conversation_id,
        p_reason=reason,
        p_detail=detail[:1500],
    )


# ---------------------------------------------------------------------- shared steps


async def _open_slots(
    deps: AiDeps, ctx: ReplyContext, calcom_settings: dict[str, Any] | None = None
) -> list[OfferedSlot] | None:
    """Open slots when booking may come up this turn; [] when Cal.com cannot tell us.
    `calcom_settings`: the client's, when ai_reply_begin returned them."""
    if deps.calcom is None or not ctx.wants_slots():
        return None
    try:
        slots = await upcoming_slots(
            deps.pool,
            deps.calcom,
            client_id=uuid.UUID(ctx.client_id),
            time_zone=str(ctx.timezone),
            days=deps.slot_days,
            limit=deps.slot_limit,
            calcom_settings=calcom_settings,
        )
    except Exception as exc:  # Cal.com down or not set up: answer without offering times
        log.warning("no slots for conversation %s: %r", ctx.conversation_id, exc)
        return []
    return offered_slots([s.start for s in slots], ctx)


async def _generate(deps: AiDeps, ctx: ReplyContext, slots: list[OfferedSlot] | None) -> Generation:
    model = ctx.client_model or deps.settings.anthropic_model
    params = build_request(ctx, model=model, slots=slots)
    return await generate(
        deps.anthropic,
        params,
        offered=[s.start for s in slots or []],
        lesson_ids=ctx.lesson_ids,
    )


def ai_record(
    ctx: ReplyContext,
    gen: Generation,
    slots: list[OfferedSlot] | None,
    *,
    job_id: int | None,
    based_on: str | None,
) -> dict[str, Any]:
    """The AI decision as stored on the message (ai_metadata) and handed to queue_sms."""
    d = gen.decision
    record: dict[str, Any] = {
        "confidence": d.confidence,
        "reasoning": d.reasoning,
        "lessons_applied": d.lessons_applied,
        "prompt_version_id": ctx.prompt.get("id"),
        "prompt_version": ctx.prompt.get("version"),
        "master_prompt_id": ctx.prompt.get("master_id"),
        "model": gen.model,
        "usage": gen.usage,
        "claude_calls": gen.calls,
        "rejected_outputs": len(gen.rejected),
        "contact_status": d.contact_status,
        "lead_sentiment": d.lead_sentiment,
        "booking_intent": d.booking_intent,
        "job_id": job_id,
        "based_on_message_id": based_on,
    }
    if d.booking_intent == "offer_slots" and slots:
        record["offered_slots"] = [s.iso for s in slots]
    if d.chosen_slot is not None:
        record["chosen_slot"] = _label_for(d.chosen_slot, slots)
    if d.handover:
        record["handover_reason"] = d.handover_reason
    return {k: v for k, v in record.items() if v is not None}


def _label_for(start: datetime, slots: list[OfferedSlot] | None) -> str:
    for s in slots or []:
        if s.start == start:
            return s.iso
    return start.isoformat()


# ---------------------------------------------------------------------- ai.reply


async def run_reply(
    deps: AiDeps, *, conversation_id: str, inbound_message_id: str, job_id: int | None = None
) -> dict[str, Any]:
    begin = await call_as(
        deps.pool,
        None,
        "private.ai_reply_begin",
        p_conversation_id=conversation_id,
        p_inbound_message_id=inbound_message_id,
    )
    if begin["action"] == "skip":
        reason = begin["reason"]
        status = reason if reason in ("superseded", "already_answered") else "skipped"
        if reason == "safeguard":
            status = "handed_over"
        return {"status": status, "reason": reason}
    ctx = ReplyContext.from_json(begin["context"])
    calcom_settings = begin.get("calcom")
    facts = begin.get("booking")
    lead = BookingLead.from_facts(facts, calcom_settings) if facts else None
    slots = await _open_slots(deps, ctx, calcom_settings)
    gen = await _generate(deps, ctx, slots)
    decision = gen.decision
    record = ai_record(ctx, gen, slots, job_id=job_id, based_on=inbound_message_id)

    if decision.booking_intent == "book" and decision.chosen_slot is not None:
        if ctx.ai_mode == "auto":
            decision, record = await _book(
                deps, ctx, conversation_id, inbound_message_id, gen, record, lead
            )
        else:
            # A person approves suggestions: the booking waits for them, and the draft says so.
            record["booking_pending"] = record.get("chosen_slot")
            decision = decision.model_copy(
                update={
                    "reasoning": "Not booked yet: the lead accepted "
                    f"{record.get('chosen_slot')}; book it before approving. " + decision.reasoning
                }
            )
            record["reasoning"] = decision.reasoning

    result = await call_as(
        deps.pool,
        None,
        "private.ai_reply_commit",
        p_conversation_id=conversation_id,
        p_inbound_message_id=inbound_message_id,
        p_decision=decision.for_commit(),
        p_ai=record,
    )
    log.info("ai.reply %s for conversation %s: %s", inbound_message_id, conversation_id, result)
    return {**result, "usage": gen.usage, "claude_calls": gen.calls}


async def _book(
    deps: AiDeps,
    ctx: ReplyContext,
    conversation_id: str,
    inbound_message_id: str,
    gen: Generation,
    record: dict[str, Any],
    lead: BookingLead | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Books the accepted slot; on failure the reply becomes a polite fallback (never a
    confirmation of a booking that does not exist)."""
    decision = gen.decision
    # Do not book for a stale or no longer automatic conversation: same checks as the commit.
    reason = await call_as(
        deps.pool,
        None,
        "private.ai_reply_blocker",
        p_conversation_id=conversation_id,
        p_inbound_message_id=inbound_message_id,
    )
    if reason is not None:
        return decision, record  # the commit re-checks, reports why, and sends nothing
    try:
        booking = await book_for_lead(
            deps.pool,
            deps.calcom,
            lead_id=ctx.lead_id,
            start_time=decision.chosen_slot,
            notes="Booked by the SMS assistant after the lead accepted this time.",
            lead=lead,
        )
    except (CalcomError, BookingError) as exc:
        log.warning("AI booking failed for lead %s: %r", ctx.lead_id, exc)
        fallback = decision.model_copy(
            update={
                "reply_text": booking_fallback_message(exc, first_name=ctx.first_name),
                "booking_intent": "none",
            }
        )
        return fallback, {
            **record,
            "booking_intent": "none",
            "booking_error": getattr(exc, "message", None) or str(exc) or type(exc).__name__,
        }
    return decision, {
        **record,
        "booking": {
            "booking_id": booking.id,
            "start_time": booking.start_time.isoformat(),
            "booking_url": booking.booking_url,
        },
    }


# ---------------------------------------------------------------------- ai.draft


async def run_draft(
    deps: AiDeps, *, conversation_id: str, job_id: int | None = None
) -> dict[str, Any]:
    begin = await call_as(
        deps.pool, None, "private.ai_draft_begin", p_conversation_id=conversation_id
    )
    if begin["action"] == "skip":
        raise Skipped(begin["reason"])
    ctx = ReplyContext.from_json(begin["context"])
    slots = await _open_slots(deps, ctx)
    gen = await _generate(deps, ctx, slots)
    decision = gen.decision
    record = ai_record(ctx, gen, slots, job_id=job_id, based_on=begin.get("based_on_message_id"))
    record["draft_requested"] = True
    if decision.booking_intent == "book":
        record["booking_pending"] = record.get("chosen_slot")
        record["reasoning"] = (
            f"Not booked yet: the lead accepted {record.get('chosen_slot')}; book it before "
            "approving. " + decision.reasoning
        )
    if decision.opt_out_intent:
        record["reasoning"] = "The lead asked not to be contacted again. " + record["reasoning"]
    result = await call_as(
        deps.pool,
        None,
        "private.ai_draft_commit",
        p_conversation_id=conversation_id,
        p_content=decision.reply_text,
        p_ai=record,
    )
    return {**result, "usage": gen.usage}


# ---------------------------------------------------------------------- ai.classify_opt_out


async def run_classify_opt_out(
    deps: AiDeps, *, conversation_id: str, inbound_message_id: str
) -> dict[str, Any]:
    """The AI's opt-out check of one inbound reply (manual/off mode): classify, then commit
    (a confident revocation opts the lead out and notifies staff). No reply is generated."""
    begin = await call_as(
        deps.pool,
        None,
        "private.ai_classify_begin",
        p_conversation_id=conversation_id,
        p_inbound_message_id=inbound_message_id,
    )
    if begin["action"] == "skip":
        return {"status": "skipped", "reason": begin["reason"]}
    model = (begin.get("client") or {}).get("anthropic_model") or deps.settings.anthropic_model
    params = optout.build_request(begin["message"], begin.get("previous") or [], model=model)
    got = await optout.classify(deps.anthropic, params)
    record = {**got.result.model_dump(), "model": got.model, "claude_calls": got.calls}
    result = await call_as(
        deps.pool,
        None,
        "private.ai_classify_commit",
        p_conversation_id=conversation_id,
        p_inbound_message_id=inbound_message_id,
        p_result=record,
    )
    log.info("ai.classify_opt_out %s: %s", inbound_message_id, result)
    return {**result, "classification": record, "usage": got.usage}
