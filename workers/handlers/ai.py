"""ai.reply and ai.draft: Claude answers a lead, or drafts an answer for staff; and
ai.classify_opt_out: Claude reads a reply in manual/off mode for a revocation (no answer).

The flows live in `dbr.ai.service`; this module maps their failures onto the job queue:

  Claude timeout / 429 / 5xx / 529   retried by the SDK (backoff + jitter), then RetryableError
                                     (job backoff, `retry-after` honoured); on the job's last
                                     attempt the conversation is flagged needs_human and staff
                                     are notified before the job dead-letters
  bad output after every re-ask      same as above: never sent
  Claude 4xx (our request is wrong)  PermanentError after flagging the conversation
"""

from __future__ import annotations

import logging
from typing import Any

import anthropic

from dbr.ai.decision import MalformedOutput
from dbr.ai.service import (
    AiDeps,
    Skipped,
    flag_needs_human,
    run_classify_opt_out,
    run_draft,
    run_reply,
)
from dbr.team.credentials import ClientCredentials
from workers.jobs import Context, Job, PermanentError, RetryableError, handler

log = logging.getLogger("workers.ai")

_PERMANENT_STATUSES = {400, 401, 403, 404, 413, 422}


async def _deps(ctx: Context, job: Job) -> AiDeps:
    """Claude and Cal.com with the job's client's own credentials, or the platform's."""
    creds = ctx.clients.get("credentials")
    if creds is None:
        creds = ctx.clients["credentials"] = ClientCredentials(ctx.pool, ctx.settings)
    for name in ("anthropic", "calcom"):  # clients the worker (or a test) already built
        if ctx.clients.get(name) is not None:
            creds.platform.setdefault(name, ctx.clients[name])
    return AiDeps(
        pool=ctx.pool,
        settings=ctx.settings,
        anthropic=await creds.anthropic(job.client_id),
        calcom=await creds.calcom(job.client_id),
    )


def _retry_after(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return max(1, int(float(value))) if value is not None else None
    except ValueError:
        return None


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    kind = type(exc).__name__
    return f"{kind} ({status}): {exc}" if status else f"{kind}: {exc}"


async def _ai_failed(job: Job, ctx: Context, conversation_id: str, exc: BaseException) -> None:
    permanent = isinstance(exc, anthropic.APIStatusError) and exc.status_code in _PERMANENT_STATUSES
    detail = _describe(exc)
    if permanent or job.last_attempt:
        await flag_needs_human(
            ctx.pool,
            conversation_id,
            "ai_unavailable",
            f"The AI could not answer this lead after {job.attempt} attempt(s) ({detail}). "
            "Please reply yourself.",
        )
    if permanent:
        raise PermanentError(detail) from exc
    raise RetryableError(detail, retry_in=_retry_after(exc)) from exc


@handler("ai.reply")
async def ai_reply(job: Job, ctx: Context) -> dict[str, Any]:
    conversation_id = str(job.payload["conversation_id"])
    inbound_message_id = str(job.payload["inbound_message_id"])
    try:
        return await run_reply(
            await _deps(ctx, job),
            conversation_id=conversation_id,
            inbound_message_id=inbound_message_id,
            job_id=job.id,
        )
    except (anthropic.APIError, MalformedOutput) as exc:
        await _ai_failed(job, ctx, conversation_id, exc)
        raise  # unreachable: _ai_failed always raises


@handler("ai.draft")
async def ai_draft(job: Job, ctx: Context) -> dict[str, Any]:
    conversation_id = str(job.payload["conversation_id"])
    try:
        return await run_draft(
            await _deps(ctx, job), conversation_id=conversation_id, job_id=job.id
        )
    except Skipped as exc:
        raise PermanentError(f"no draft: {exc.reason}") from exc
    except anthropic.APIStatusError as exc:
        if exc.status_code in _PERMANENT_STATUSES:
            raise PermanentError(_describe(exc)) from exc
        raise RetryableError(_describe(exc), retry_in=_retry_after(exc)) from exc
    except (anthropic.APIError, MalformedOutput) as exc:
        raise RetryableError(_describe(exc)) from exc


@handler("ai.classify_opt_out")
async def ai_classify_opt_out(job: Job, ctx: Context) -> dict[str, Any]:
    # No conversation to flag: staff were already notified of the reply itself (manual mode).
    # Transient failures retry with the job's backoff; a request we got wrong is permanent.
    try:
        return await run_classify_opt_out(
            await _deps(ctx, job),
            conversation_id=str(job.payload["conversation_id"]),
            inbound_message_id=str(job.payload["inbound_message_id"]),
        )
    except anthropic.APIStatusError as exc:
        if exc.status_code in _PERMANENT_STATUSES:
            raise PermanentError(_describe(exc)) from exc
        raise RetryableError(_describe(exc), retry_in=_retry_after(exc)) from exc
    except (anthropic.APIError, MalformedOutput) as exc:
        raise RetryableError(_describe(exc)) from exc
