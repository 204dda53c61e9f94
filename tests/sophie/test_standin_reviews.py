"""The stand-in's deterministic Sophie, driven through the real SDK: the findings it derives
from the text, teachings it honours, and the strict tool contract it enforces."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import pytest

from dbr.sophie.findings import parse_review
from dbr.sophie.prompt import review_request
from tests.support.ai import claude_client


def _ctx(*texts: str, teachings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "message_id": None,
        "client": {"name": "Acme", "opt_out_line": "Reply STOP to opt out"},
        "lead": {"first_name": "Sam"},
        "teachings": teachings or [],
        "messages": [
            {"id": f"m{i}", "direction": "outbound", "category": "m1", "content": t}
            for i, t in enumerate(texts)
        ],
    }


def _review(claude, ctx: dict[str, Any], **params: Any) -> Any:
    async def main() -> Any:
        client = claude_client(claude)
        try:
            message = await client.messages.create(
                **{**review_request(ctx, model="claude-sonnet-4-6"), **params}
            )
        finally:
            await client.close()
        (block,) = message.content
        return parse_review(
            block.input, message_ids={m["id"] for m in ctx["messages"]}, target_id=None
        )

    return asyncio.run(main())


def test_findings_follow_the_text(claude):
    review = _review(
        claude,
        _ctx(
            "Dear customer, this is Acme Windows.",
            "We definately recieve lots of interest. Act now!",
            "Hi Sam, would Tuesday suit? Reply STOP to opt out",
        ),
    )
    got = sorted((f.message_id, f.category, f.severity, f.pattern) for f in review.findings)
    assert got == [
        ("m0", "compliance", "critical", "missing_opt_out"),
        ("m0", "personalization", "info", "generic_greeting"),
        ("m1", "grammar", "suggestion", "misspelling:definately"),
        ("m1", "grammar", "suggestion", "misspelling:recieve"),
        ("m1", "tone", "warning", "pressure_language"),
    ]
    assert review.quality_score < 0.5
    clean = _review(
        claude, _ctx("Hi Sam, it's Acme. Still keen on new windows? Reply STOP to opt out")
    )
    assert clean.findings == [] and clean.quality_score == 1


def test_a_teaching_in_the_prompt_is_honoured(claude):
    teaching = {
        "category": "tone",
        "pattern_key": "pressure_language",
        "title": "Pushy",
        "teaching_note": "Fine here",
        "correct_approach": "Keep it",
    }
    review = _review(claude, _ctx("Hi Sam. Act now! Reply STOP to opt out", teachings=[teaching]))
    assert review.findings == []


def test_strict_tool_rules_are_enforced(claude):
    async def main() -> None:
        client = claude_client(claude)
        try:
            params = review_request(_ctx("Hi"), model="claude-sonnet-4-6")
            params["tools"][0]["input_schema"]["properties"]["quality_score"]["minimum"] = 0
            with pytest.raises(anthropic.BadRequestError):
                await client.messages.create(**params)
        finally:
            await client.close()

    asyncio.run(main())
