"""The Sophie flows the workers run. Decisions stay in SQL; this module talks to Claude.

  sophie.analyze   one message or one conversation, one Messages API call (retried on bad
                   output, never stored): private.sophie_analyze_begin (skip / defer for the
                   budget / context) -> Claude -> private.sophie_store_analysis
  sophie.batch     the 15-minute review: private.sophie_batch_begin -> one Message Batch ->
                   poll (the job waits between looks without holding a worker) -> results
                   JSONL -> private.sophie_batch_store (failed items are reviewed next run)
  sophie.patterns  pattern detection: the dataset's conversations in chunks through one
                   Message Batch -> private.sophie_store_patterns (statistics in SQL)

`Wait(until)` asks the caller to run the job again later without spending an attempt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from anthropic import AsyncAnthropic
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from dbr.ai.claude import USAGE_KEYS, usage_of
from dbr.db import call_as
from dbr.settings import Settings
from dbr.sophie.costs import cost_usd
from dbr.sophie.findings import (
    PATTERNS_TOOL,
    REVIEW_TOOL,
    MalformedReview,
    Review,
    parse_patterns,
    parse_review,
)
from dbr.sophie.prompt import patterns_request, review_request

log = logging.getLogger("dbr.sophie")

PATTERN_CHUNK = 40  # conversations per pattern request
QUICK_POLL_SECONDS = 2.0  # a person is waiting (detect-patterns route)


class Wait(Exception):
    """Run the job again at `until` (budget, or a Message Batch still in progress)."""

    def __init__(self, until: datetime, reason: str) -> None:
        super().__init__(reason)
        self.until = until
        self.reason = reason


@dataclass
class SophieDeps:
    pool: AsyncConnectionPool
    settings: Settings
    anthropic: AsyncAnthropic


@dataclass
class ReviewRun:
    review: Review
    model: str
    calls: int
    usage: dict[str, int] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)


async def _sql(pool: AsyncConnectionPool, function: str, /, **args: Any) -> Any:
    """One Sophie SQL function, as the service, in a transaction of its own."""
    return await call_as(pool, None, f"private.{function}", **args)


def model_for(deps: SophieDeps, client: dict[str, Any] | None) -> str:
    return (
        deps.settings.sophie_model
        or (client or {}).get("anthropic_model")
        or deps.settings.anthropic_model
    )


def _tool_input(message: Any, tool: str) -> Any:
    block = next((b for b in message.content if b.type == "tool_use" and b.name == tool), None)
    if block is None:
        raise MalformedReview(f"no {tool} call (stop_reason {message.stop_reason})")
    return block.input


def _ids(ctx: dict[str, Any]) -> tuple[set[str], str | None]:
    return {str(m["id"]) for m in ctx.get("messages") or []}, ctx.get("message_id")


async def review_once(
    client: AsyncAnthropic, params: dict[str, Any], ctx: dict[str, Any], *, attempts: int = 3
) -> ReviewRun:
    """One review: asks again (up to `attempts` calls) while the output fails validation."""
    total = dict.fromkeys(USAGE_KEYS, 0)
    rejected: list[str] = []
    ids, target = _ids(ctx)
    for call in range(1, attempts + 1):
        message = await client.messages.create(**params)
        for k, v in usage_of(message).items():
            total[k] += v
        try:
            review = parse_review(
                _tool_input(message, REVIEW_TOOL), message_ids=ids, target_id=target
            )
        except MalformedReview as exc:
            log.warning("Sophie output rejected (call %s/%s): %s", call, attempts, exc)
            rejected.append(str(exc))
            continue
        return ReviewRun(review, message.model, call, total, rejected)
    raise MalformedReview(f"{attempts} answers rejected: " + " | ".join(rejected))


def _meta(model: str, usage: dict[str, int], *, batch: bool, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "usage": usage,
        "cost_usd": str(cost_usd(model, usage, batch=batch)),
        **extra,
    }


# ---------------------------------------------------------------------- sophie.analyze


async def run_analyze(deps: SophieDeps, *, job_id: int, payload: dict[str, Any]) -> dict[str, Any]:
    begin = await _sql(deps.pool, "sophie_analyze_begin", p_job_id=job_id, p_payload=payload)
    if begin["action"] == "skip":
        return {"status": "skipped", "reason": begin["reason"]}
    if begin["action"] == "defer":
        raise Wait(datetime.fromisoformat(begin["until"]), begin.get("reason", "budget"))
    ctx = begin["context"]
    model = model_for(deps, ctx.get("client"))
    run = await review_once(deps.anthropic, review_request(ctx, model=model), ctx)
    meta = _meta(
        run.model,
        run.usage,
        batch=False,
        via="request",
        job_id=job_id,
        claude_calls=run.calls,
        rejected_outputs=len(run.rejected),
    )
    target = (
        {"message_id": ctx["message_id"]}
        if ctx.get("message_id")
        else {"conversation_id": ctx["conversation_id"]}
    )
    stored = await _sql(
        deps.pool,
        "sophie_store_analysis",
        p_target=target,
        p_result=run.review.for_store(),
        p_meta=meta,
    )
    log.info("sophie.analyze %s: %s", target, stored)
    return {
        **stored,
        "scope": ctx.get("scope"),
        "review": run.review.for_store(),
        "usage": run.usage,
        "cost_usd": meta["cost_usd"],
    }


# ---------------------------------------------------------------------- sophie.batch


def _later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def _batch_results(client: AsyncAnthropic, batch_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async for line in await client.messages.batches.results(batch_id):
        out[line.custom_id] = line.result
    return out


async def _ended(client: AsyncAnthropic, batch_id: str) -> bool:
    batch = await client.messages.batches.retrieve(batch_id)
    return batch.processing_status == "ended"


async def run_batch(deps: SophieDeps, *, batch_id: str) -> dict[str, Any]:
    state = await _sql(deps.pool, "sophie_batch_begin", p_batch_id=batch_id)
    if state is None:
        return {"status": "skipped", "reason": "batch_not_found"}
    poll = deps.settings.sophie_batch_poll_seconds
    if state["status"] == "stored":
        return {"status": "already_stored"}
    if state["status"] == "preparing":
        requests = []
        for item in state["items"]:
            ctx = item.get("context")
            if not ctx:
                continue  # the conversation is gone; storing marks it failed
            model = model_for(deps, ctx.get("client"))
            requests.append(
                {"custom_id": item["custom_id"], "params": review_request(ctx, model=model)}
            )
        if not requests:
            return await _sql(
                deps.pool, "sophie_batch_store", p_batch_id=batch_id, p_results=Jsonb([])
            )
        batch = await deps.anthropic.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        await _sql(
            deps.pool,
            "sophie_batch_submitted",
            p_batch_id=batch_id,
            p_anthropic_batch_id=batch.id,
            p_count=len(requests),
        )
        log.info("sophie.batch %s submitted as %s (%s requests)", batch_id, batch.id, len(requests))
        raise Wait(_later(poll), f"batch {batch.id} submitted")
    anthropic_id = state["anthropic_batch_id"]
    if not await _ended(deps.anthropic, anthropic_id):
        raise Wait(_later(poll), f"batch {anthropic_id} in progress")
    results = await _batch_results(deps.anthropic, anthropic_id)
    rows = []
    kinds: dict[str, int] = {}
    for item in state["items"]:
        cid = item["custom_id"]
        result = results.get(cid)
        kind = getattr(result, "type", "missing")
        row: dict[str, Any] = {"custom_id": cid, "status": "failed", "reason": kind}
        if kind == "succeeded":
            message = result.message  # type: ignore[union-attr]
            try:
                review = parse_review(
                    _tool_input(message, REVIEW_TOOL), message_ids=None, target_id=None
                )
            except MalformedReview as exc:
                kind = "malformed"
                row["reason"] = f"malformed: {exc}"
                log.warning("sophie.batch %s: %s rejected: %s", batch_id, cid, exc)
            else:
                usage = usage_of(message)
                row = {
                    "custom_id": cid,
                    "status": "stored",
                    "result": review.for_store(),
                    "meta": _meta(message.model, usage, batch=True),
                }
        kinds[kind] = kinds.get(kind, 0) + 1
        rows.append(row)
    stored = await _sql(deps.pool, "sophie_batch_store", p_batch_id=batch_id, p_results=Jsonb(rows))
    log.info("sophie.batch %s stored: %s (%s)", batch_id, stored, kinds)
    return {**stored, "anthropic_batch_id": anthropic_id, "results": kinds}


# ---------------------------------------------------------------------- sophie.patterns


async def run_patterns(
    deps: SophieDeps, *, job_id: int, payload: dict[str, Any], final: bool = True
) -> dict[str, Any]:
    """Pattern detection over a dataset. A chunk that errored, expired or came back malformed
    fails the run (MalformedReview) and the next attempt submits every chunk again; only on
    the job's `final` attempt are the patterns of the good chunks stored (`chunks_failed`)."""
    poll = (
        min(QUICK_POLL_SECONDS, deps.settings.sophie_batch_poll_seconds)
        if payload.get("requested_by")
        else deps.settings.sophie_batch_poll_seconds
    )
    state = await _sql(deps.pool, "sophie_patterns_state", p_job_id=job_id)
    if state is None:
        begin = await _sql(deps.pool, "sophie_patterns_begin", p_payload=payload)
        conversations = begin.get("conversations") or []
        if not conversations:
            return await _store_patterns(deps, job_id, payload, [], {"chunks": 0})
        model = model_for(deps, begin.get("dataset"))
        chunks = [
            conversations[i : i + PATTERN_CHUNK]
            for i in range(0, len(conversations), PATTERN_CHUNK)
        ]
        items = [
            {"custom_id": f"p{n}", "conversation_ids": [c["id"] for c in chunk]}
            for n, chunk in enumerate(chunks, 1)
        ]
        batch = await deps.anthropic.messages.batches.create(
            requests=[  # type: ignore[arg-type]
                {"custom_id": item["custom_id"], "params": patterns_request(chunk, model=model)}
                for item, chunk in zip(items, chunks, strict=True)
            ]
        )
        await _sql(
            deps.pool,
            "sophie_patterns_submitted",
            p_job_id=job_id,
            p_anthropic_batch_id=batch.id,
            p_items=Jsonb(items),
        )
        raise Wait(_later(poll), f"pattern batch {batch.id} submitted")
    if state["status"] == "stored":
        return await _store_patterns(deps, job_id, payload, [], {})
    anthropic_id = state["anthropic_batch_id"]
    if not await _ended(deps.anthropic, anthropic_id):
        raise Wait(_later(poll), f"pattern batch {anthropic_id} in progress")
    results = await _batch_results(deps.anthropic, anthropic_id)
    found: list[dict[str, Any]] = []
    failed = 0
    usage = dict.fromkeys(USAGE_KEYS, 0)
    model = deps.settings.anthropic_model
    for item in state["items"]:
        result = results.get(item["custom_id"])
        if getattr(result, "type", None) != "succeeded":
            failed += 1
            continue
        message = result.message  # type: ignore[union-attr]
        model = message.model
        for k, v in usage_of(message).items():
            usage[k] += v
        try:
            patterns = parse_patterns(
                _tool_input(message, PATTERNS_TOOL), conversation_ids=set(item["conversation_ids"])
            )
        except MalformedReview as exc:
            log.warning("sophie.patterns %s: chunk %s rejected: %s", job_id, item["custom_id"], exc)
            failed += 1
            continue
        found.extend(p.model_dump() for p in patterns.patterns)
    if failed and not final:
        await _sql(deps.pool, "sophie_patterns_reset", p_job_id=job_id)
        raise MalformedReview(f"{failed} of {len(state['items'])} pattern chunks failed")
    return await _store_patterns(
        deps,
        job_id,
        payload,
        found,
        {
            "chunks": len(state["items"]),
            "chunks_failed": failed,
            "usage": usage,
            "cost_usd": str(cost_usd(model, usage, batch=True)),
        },
    )


async def _store_patterns(
    deps: SophieDeps,
    job_id: int,
    payload: dict[str, Any],
    found: list[dict[str, Any]],
    extra: dict[str, Any],
) -> dict[str, Any]:
    out = await _sql(
        deps.pool,
        "sophie_store_patterns",
        p_job_id=job_id,
        p_payload=payload,
        p_patterns=Jsonb(found),
    )
    return {**out, **extra}
