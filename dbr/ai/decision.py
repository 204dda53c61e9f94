"""The structured output of a reply: the strict tool Claude must call, and its validation.

Strict tool use guarantees the *shape* (types, enums, required keys); bounds and cross-field
rules that the strict subset cannot express (confidence 0-1, a reply unless the lead opted out
or needs a person, a booking only for a slot we offered) are checked here with pydantic.
Anything that fails is `MalformedOutput`: the call is retried and the output never sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

TOOL_NAME = "record_reply"
MAX_SMS_CHARS = 640  # four segments: longer answers are not what an SMS agent should send

ContactStatus = Literal["REPLIED", "HOT", "WARM", "COLD", "NOT_INTERESTED"]
Sentiment = Literal["POSITIVE", "NEGATIVE", "NEUTRAL", "HOT", "UNCLEAR"]
BookingIntent = Literal["none", "offer_slots", "book"]


class MalformedOutput(Exception):
    """Claude's answer cannot be used (no tool call, or a decision that fails validation)."""


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def reply_tool() -> dict[str, Any]:
    """The tool definition (strict JSON-schema subset: no bounds, everything required)."""
    properties: dict[str, Any] = {
        "reply_text": {
            "type": "string",
            "description": "The SMS to send to the lead now: plain text, ideally under 300 "
            "characters, never more than 640. Empty only when opt_out_intent is true, or when "
            "handover is true and no holding message is needed.",
        },
        "contact_status": {
            "type": "string",
            "enum": ["REPLIED", "HOT", "WARM", "COLD", "NOT_INTERESTED"],
            "description": "The lead's status after this message (see the classification rules).",
        },
        "lead_sentiment": {
            "type": "string",
            "enum": ["POSITIVE", "NEGATIVE", "NEUTRAL", "HOT", "UNCLEAR"],
            "description": "The lead's mood in their latest messages.",
        },
        "confidence": {
            "type": "number",
            "description": "0 to 1: how sure you are this reply is right to send as is.",
        },
        "reasoning": {
            "type": "string",
            "description": "One or two sentences for staff: why this reply and this status.",
        },
        "lessons_applied": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Ids of the lessons (from <lesson id=...>) that shaped this reply.",
        },
        "booking_intent": {
            "type": "string",
            "enum": ["none", "offer_slots", "book"],
            "description": "offer_slots when reply_text offers times from available_slots; "
            "book when the lead accepted one of them (set chosen_slot); otherwise none.",
        },
        "chosen_slot": _nullable(
            {
                "type": "string",
                "description": "With booking_intent book: the exact ISO start time of the "
                "accepted slot, copied from available_slots.",
            }
        ),
        "opt_out_intent": {
            "type": "boolean",
            "description": "True when the lead asks to stop receiving messages in any words.",
        },
        "handover": {
            "type": "boolean",
            "description": "True when a person should take over this conversation now.",
        },
        "handover_reason": _nullable(
            {"type": "string", "description": "With handover: why a person is needed."}
        ),
    }
    return {
        "name": TOOL_NAME,
        "description": "Record the next SMS to the lead and your assessment of the lead. "
        "Call this exactly once.",
        "strict": True,
        "input_schema": {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        },
    }


class ReplyDecision(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reply_text: str = Field(max_length=MAX_SMS_CHARS)
    contact_status: ContactStatus
    lead_sentiment: Sentiment
    confidence: float = Field(ge=0, le=1)
    reasoning: str = Field(max_length=2000)
    lessons_applied: list[str] = Field(default_factory=list, max_length=50)
    booking_intent: BookingIntent
    chosen_slot: datetime | None = None
    opt_out_intent: bool
    handover: bool
    handover_reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _coherent(self) -> ReplyDecision:
        if not self.reply_text and not (self.opt_out_intent or self.handover):
            raise ValueError(
                "reply_text is empty although the lead neither opted out nor needs a person"
            )
        if self.booking_intent == "book" and self.chosen_slot is None:
            raise ValueError("booking_intent is book but chosen_slot is missing")
        if self.chosen_slot is not None and self.chosen_slot.tzinfo is None:
            raise ValueError("chosen_slot needs a timezone")
        return self

    def for_commit(self) -> dict[str, Any]:
        """The JSON the SQL commit function reads."""
        return self.model_dump(mode="json")


def parse_decision(
    tool_input: Any, *, offered_slots: list[datetime], lesson_ids: list[str]
) -> ReplyDecision:
    """Validate Claude's tool input against the schema rules and this conversation's facts."""
    try:
        decision = ReplyDecision.model_validate(tool_input)
    except ValidationError as exc:
        raise MalformedOutput(_short(exc)) from exc
    if decision.booking_intent == "book":
        assert decision.chosen_slot is not None
        if decision.chosen_slot not in offered_slots:
            # Never book a time we did not find open: that would be a fabricated booking.
            raise MalformedOutput(f"chosen_slot {decision.chosen_slot.isoformat()} was not offered")
    known = set(lesson_ids)
    decision.lessons_applied = [i for i in dict.fromkeys(decision.lessons_applied) if i in known]
    return decision


def _short(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()]
    return "; ".join(parts[:5])
