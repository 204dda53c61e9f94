"""Sophie's structured output: the strict tools she must call, and their validation.

Strict tool use fixes the shape (types, enums, required keys); what the strict subset cannot
say (a score between 0 and 1, a finding that quotes the message it is about, a message id
that belongs to the reviewed thread) is checked here with pydantic. Output that fails is
`MalformedReview`: the call is asked again and the output is never stored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

REVIEW_TOOL = "record_review"
PATTERNS_TOOL = "record_patterns"

Severity = Literal["critical", "urgent", "warning", "suggestion", "info"]
Category = Literal[
    "compliance", "tone", "grammar", "strategy", "timing", "personalization", "booking", "other"
]
SEVERITIES: tuple[str, ...] = ("critical", "urgent", "warning", "suggestion", "info")
CATEGORIES: tuple[str, ...] = (
    "compliance",
    "tone",
    "grammar",
    "strategy",
    "timing",
    "personalization",
    "booking",
    "other",
)


class MalformedReview(Exception):
    """Claude's answer cannot be stored (no tool call, or one that fails validation)."""


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _strict_object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def review_tool() -> dict[str, Any]:
    finding = _strict_object(
        {
            "severity": {"type": "string", "enum": list(SEVERITIES)},
            "category": {"type": "string", "enum": list(CATEGORIES)},
            "title": {"type": "string", "description": "At most 120 characters."},
            "description": {"type": "string", "description": "What is wrong and why it matters."},
            "suggestion": {"type": "string", "description": "What to do instead."},
            "original_text": {"type": "string", "description": "The exact words at fault."},
            "suggested_text": {"type": "string", "description": "Replacement wording."},
            "pattern": {
                "type": "string",
                "description": "A short snake_case name for the kind of issue, the same every "
                "time the same kind comes up (e.g. missing_opt_out, pressure_language, "
                "misspelling:definately).",
            },
            "message_id": _nullable(
                {"type": "string", "description": "Id of the message the finding is about."}
            ),
        }
    )
    return {
        "name": REVIEW_TOOL,
        "description": "Record your review of the agent's message(s). Call this exactly once.",
        "strict": True,
        "input_schema": _strict_object(
            {
                "quality_score": {
                    "type": "number",
                    "description": "0 to 1: how good the reviewed message(s) are as sent.",
                },
                "summary": {
                    "type": "string",
                    "description": "One or two sentences of feedback for staff.",
                },
                "findings": {"type": "array", "items": finding},
            }
        ),
    }


def patterns_tool() -> dict[str, Any]:
    pattern = _strict_object(
        {
            "pattern_key": {"type": "string", "description": "short snake_case name"},
            "pattern_description": {"type": "string"},
            "suggested_lesson": {"type": "string"},
            "conversation_ids": {"type": "array", "items": {"type": "string"}},
        }
    )
    return {
        "name": PATTERNS_TOOL,
        "description": "Record the patterns you found and which conversations show each one. "
        "Call this exactly once.",
        "strict": True,
        "input_schema": _strict_object({"patterns": {"type": "array", "items": pattern}}),
    }


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    severity: Severity
    category: Category
    title: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=4000)
    suggestion: str = Field(default="", max_length=4000)
    original_text: str = Field(default="", max_length=2000)
    suggested_text: str = Field(default="", max_length=2000)
    pattern: str = Field(min_length=1, max_length=120)
    message_id: str | None = None


class Review(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quality_score: float = Field(ge=0, le=1)
    summary: str = Field(max_length=2000)
    findings: list[Finding] = Field(default_factory=list, max_length=30)

    def for_store(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Pattern(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    pattern_key: str = Field(min_length=1, max_length=80)
    pattern_description: str = Field(min_length=1, max_length=1000)
    suggested_lesson: str = Field(default="", max_length=2000)
    conversation_ids: list[str] = Field(default_factory=list)

    @field_validator("conversation_ids")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(v))


class Patterns(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patterns: list[Pattern] = Field(default_factory=list, max_length=50)


def parse_review(tool_input: Any, *, message_ids: set[str] | None, target_id: str | None) -> Review:
    """Validate a review against the schema and the thread it is about (`message_ids` None:
    the thread is not at hand; the database then ignores ids outside the conversation)."""
    try:
        review = Review.model_validate(tool_input)
    except ValidationError as exc:
        raise MalformedReview(_short(exc)) from exc
    for f in review.findings:
        if f.message_id is not None and message_ids is not None and f.message_id not in message_ids:
            raise MalformedReview(f"finding {f.title!r} names a message outside the thread")
        if target_id is not None:
            f.message_id = target_id  # a message review is about that message only
    return review


def parse_patterns(tool_input: Any, *, conversation_ids: set[str]) -> Patterns:
    """Validate patterns; conversations outside the chunk are dropped (never counted)."""
    try:
        found = Patterns.model_validate(tool_input)
    except ValidationError as exc:
        raise MalformedReview(_short(exc)) from exc
    for p in found.patterns:
        p.conversation_ids = [c for c in p.conversation_ids if c in conversation_ids]
    return found


def _short(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()]
    return "; ".join(parts[:5])
