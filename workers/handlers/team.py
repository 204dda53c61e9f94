"""team.test_integrations: check the client's Twilio, Cal.com and Anthropic connections for real
and record the results (the checks live in `dbr.team.integrations`)."""

from __future__ import annotations

from typing import Any

from dbr.team.integrations import check_integrations
from workers.jobs import Context, Job, PermanentError, handler


@handler("team.test_integrations")
async def integration_checks_job(job: Job, ctx: Context) -> dict[str, Any]:
    client_id = job.payload.get("client_id") or job.client_id
    if not client_id:
        raise PermanentError("team.test_integrations needs a client_id")
    checks = await check_integrations(ctx.pool, ctx.settings, client_id)
    return {c.service: {"ok": c.ok, "error": c.error} for c in checks}
