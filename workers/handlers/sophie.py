"""sophie.analyze, sophie.batch and sophie.patterns: Sophie reviews what the agent and staff
sent, in one call per message or through the Message Batches API (flows in dbr.sophie.service).

Failures onto the job queue:

  no Sophie budget / batch in progress   Defer (rescheduled, no attempt spent, never dropped)
  Claude timeout / 429 / 5xx / 529       retried by the SDK, then RetryableError (job backoff,
                                         `retry-after` honoured)
  bad output after every re-ask          RetryableError: asked again later, never stored
  Claude 4xx (our request is wrong)      PermanentError
"""

from __future__ import annotations

from typing import Any

import anthropic

from dbr.providers.anthropic import anthropic_client
from dbr.sophie.findings import MalformedReview
from dbr.sophie.service import SophieDeps, Wait, run_analyze, run_batch, run_patterns
from dbr.team.credentials import ClientCredentials
from workers.jobs import Context, Job, PermanentError, RetryableError, handler
from workers.runtime import Defer

_PERMANENT_STATUSES = {400, 401, 403, 404, 413, 422}


async def _deps(ctx: Context, job: Job) -> SophieDeps:
    """Claude with the job's client's own key when it connected one (one-client jobs), else
    the platform's; the 15-minute batch spans clients and always uses the platform's."""
    creds = ctx.clients.get("credentials")
    if creds is None:
        creds = ctx.clients["credentials"] = ClientCredentials(ctx.pool, ctx.settings)
    if ctx.clients.get("anthropic") is not None:  # a client the worker (or a test) built
        creds.platform.setdefault("anthropic", ctx.clients["anthropic"])
    if job.client_id:
        client = await creds.anthropic(job.client_id)
    else:
        client = ctx.clients.get("anthropic")
        if client is None:
            client = ctx.clients["anthropic"] = anthropic_client(ctx.settings)
    return SophieDeps(pool=ctx.pool, settings=ctx.settings, anthropic=client)


def _retry_after(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return max(1, int(float(value))) if value is not None else None
    except ValueError:
        return None


async def _run(coro: Any) -> dict[str, Any]:
    try:
        return await coro
    except Wait as exc:
        raise Defer(exc.until, exc.reason) from exc
    except anthropic.APIStatusError as exc:
        detail = f"{type(exc).__name__} ({exc.status_code}): {exc}"
        if exc.status_code in _PERMANENT_STATUSES:
            raise PermanentError(detail) from exc
        raise RetryableError(detail, retry_in=_retry_after(exc)) from exc
    except (anthropic.APIError, MalformedReview) as exc:
        raise RetryableError(f"{type(exc).__name__}: {exc}") from exc


@handler("sophie.analyze")
async def sophie_analyze(job: Job, ctx: Context) -> dict[str, Any]:
    return await _run(run_analyze(await _deps(ctx, job), job_id=job.id, payload=job.payload))


@handler("sophie.batch")
async def sophie_batch(job: Job, ctx: Context) -> dict[str, Any]:
    return await _run(run_batch(await _deps(ctx, job), batch_id=str(job.payload["batch_id"])))


@handler("sophie.patterns")
async def sophie_patterns(job: Job, ctx: Context) -> dict[str, Any]:
    return await _run(
        run_patterns(
            await _deps(ctx, job), job_id=job.id, payload=job.payload, final=job.last_attempt
        )
    )
